"""Questions acknowledged and not answered yet, so that a process dying in between loses none.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "pending_answers",
        sa.Column("claim_key", sa.String(64), primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("lang_hint", sa.String(8), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_pending_answers_lease_until", "pending_answers", ["lease_until"])
    # Event ids were stored as they came (`slack-mention:<channel>:<ts>`): from now on they are keyed
    # hashes, so the old rows can never match again. They expire within a week; drop them now.
    op.execute("DELETE FROM processed_events")


def downgrade() -> None:
    op.drop_table("pending_answers")

"""Routes for relaying HR's replies to "Ask HR" escalations back to the employee.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_routes",
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("thread_id", sa.String(512), primary_key=True),
        sa.Column("route", sa.JSON(), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_escalation_routes_expires_at", "escalation_routes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("escalation_routes")

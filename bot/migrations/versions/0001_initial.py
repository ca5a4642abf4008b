"""The first schema: event dedupe, conversation references, feedback, questions, tips.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_processed_events_expires_at", "processed_events", ["expires_at"])
    op.create_table(
        "conversation_references",
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(512), primary_key=True),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(255), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
    )
    op.create_index("ix_feedback_entry_id", "feedback", ["entry_id"])
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("asked_at", sa.DateTime(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("entry_id", sa.String(255), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
    )
    op.create_index("ix_questions_asked_at", "questions", ["asked_at"])
    op.create_table(
        "suggestion_picks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.String(255), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
    )
    op.create_index("ix_suggestion_picks_at", "suggestion_picks", ["at"])
    op.create_table(
        "tip_posts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(512), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("slot", sa.String(64), nullable=False),
        sa.Column("tip_id", sa.String(255), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("platform", "target_id", "slot", name="uq_tip_posts_target_slot"),
    )
    op.create_index("ix_tip_posts_status", "tip_posts", ["status"])


def downgrade() -> None:
    for table in (
        "tip_posts",
        "suggestion_picks",
        "questions",
        "feedback",
        "conversation_references",
        "processed_events",
    ):
        op.drop_table(table)

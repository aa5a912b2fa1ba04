"""reflection prompts and reflections

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-29 03:30:00
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - column types
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reflection_prompt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("cohort", sa.Integer(), nullable=False),
        sa.Column("slot", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("week", sa.Integer(), nullable=True),
        sa.Column("prompt_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("thread_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("community_id", "slot", name="uq_reflection_prompt_slot"),
    )
    with op.batch_alter_table("reflection_prompt", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reflection_prompt_status", ["community_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_reflection_prompt_thread", ["community_id", "thread_id"], unique=False
        )

    op.create_table(
        "reflection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("responded", sa.Boolean(), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("community_id", "message_id", name="uq_reflection_message"),
    )
    with op.batch_alter_table("reflection", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reflection_member", ["community_id", "member_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_reflection_prompt", ["community_id", "prompt_id", "member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reflection", schema=None) as batch_op:
        batch_op.drop_index("ix_reflection_prompt")
        batch_op.drop_index("ix_reflection_member")
    op.drop_table("reflection")
    with op.batch_alter_table("reflection_prompt", schema=None) as batch_op:
        batch_op.drop_index("ix_reflection_prompt_thread")
        batch_op.drop_index("ix_reflection_prompt_status")
    op.drop_table("reflection_prompt")

"""nudges, kudos and facilitator alerts

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-29 03:20:00
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - column types
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def _str(length: int | None = None):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "nudge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", _str(200), nullable=False),
        sa.Column("member_id", _str(100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("state", _str(20), nullable=False),
        sa.Column("episode", _str(40), nullable=False),
        sa.Column("hook_kind", _str(20), nullable=False),
        sa.Column("hook_ref", _str(100), nullable=True),
        sa.Column("peer_id", _str(100), nullable=True),
        sa.Column("text", _str(), nullable=True),
        sa.Column("status", _str(20), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", _str(40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("community_id", "member_id", "episode", "step", name="uq_nudge_step"),
    )
    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.create_index(
            "ix_nudge_member", ["community_id", "member_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_nudge_status", ["community_id", "status", "due_at"], unique=False)

    op.create_table(
        "kudos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", _str(200), nullable=False),
        sa.Column("giver_id", _str(100), nullable=False),
        sa.Column("receiver_id", _str(100), nullable=False),
        sa.Column("reason", _str(), nullable=True),
        sa.Column("credited", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kudos", schema=None) as batch_op:
        batch_op.create_index(
            "ix_kudos_giver", ["community_id", "giver_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_kudos_receiver", ["community_id", "receiver_id", "created_at"], unique=False
        )

    op.create_table(
        "nudge_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", _str(200), nullable=False),
        sa.Column("kind", _str(30), nullable=False),
        sa.Column("ref", _str(200), nullable=False),
        sa.Column("member_id", _str(100), nullable=True),
        sa.Column("detail", _str(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("community_id", "kind", "ref", name="uq_nudge_alert"),
    )
    with op.batch_alter_table("nudge_alert", schema=None) as batch_op:
        batch_op.create_index(
            "ix_nudge_alert_pending", ["community_id", "notified_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("nudge_alert", schema=None) as batch_op:
        batch_op.drop_index("ix_nudge_alert_pending")
    op.drop_table("nudge_alert")
    with op.batch_alter_table("kudos", schema=None) as batch_op:
        batch_op.drop_index("ix_kudos_receiver")
        batch_op.drop_index("ix_kudos_giver")
    op.drop_table("kudos")
    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.drop_index("ix_nudge_status")
        batch_op.drop_index("ix_nudge_member")
    op.drop_table("nudge")

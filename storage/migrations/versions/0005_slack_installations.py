"""Slack OAuth installations and states

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-30 10:00:00
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - column types
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("app_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("enterprise_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("enterprise_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("team_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("bot_token", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("bot_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("bot_user_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("bot_scopes", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("bot_refresh_token", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("bot_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("installer_user_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "enterprise_id", "team_id", name="uq_slack_installation"),
    )
    with op.batch_alter_table("slack_installation", schema=None) as batch_op:
        batch_op.create_index("ix_slack_installation_community", ["community_id"], unique=False)

    op.create_table(
        "slack_oauth_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("state", name="uq_slack_oauth_state"),
    )


def downgrade() -> None:
    op.drop_table("slack_oauth_state")
    with op.batch_alter_table("slack_installation", schema=None) as batch_op:
        batch_op.drop_index("ix_slack_installation_community")
    op.drop_table("slack_installation")

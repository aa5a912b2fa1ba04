"""The conversation a contribution belongs to, stored when it is written

Revision ID: 0007
Revises: 0006

Nullable and not backfilled: a NULL key is resolved when it is read, through the parent
message (``storage.queries.conversation_key``), exactly as every key was before, so rows
written by an older Hearth keep their conversations.
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - column types
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contribution") as batch:
        batch.add_column(
            sa.Column(
                "conversation_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("contribution") as batch:
        batch.drop_column("conversation_id")

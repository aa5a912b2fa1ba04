"""The time index covers the columns the weekly numbers read

Revision ID: 0009
Revises: 0008

Every weekly number (the days, the week before, the busiest conversations, the open
questions) is a scan of the week's range of ``(community_id, created_at)``. With only those
two columns in the index, each of the week's rows was also looked up in the table, once per
scan. With the columns those scans read added to the index, they read the index alone. On a
million contributions (a hundred thousand in the week), SQLite: the days 45 ms against 35,
the week before 39 against 31, the busiest conversations 84 against 70, the open questions
83 against 72. The database grows by about 29 bytes a contribution, and inserting costs no
more (200,000 rows: 40,000-45,000 a second either way). The same columns on PostgreSQL (one
definition for both databases) let it answer these scans from the index alone once vacuum
has marked the pages visible.

Rebuilding the index took SQLite 2.4 s on a million contributions; on PostgreSQL it blocks
writes meanwhile, so run ``hearth db upgrade`` while the bot is stopped.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COVERED = [
    "kinds",
    "word_count",
    "member_id",
    "conversation_id",
    "thread_id",
    "reply_to_id",
    "reply_to_member_id",
    "message_id",
    "channel_id",
]


def upgrade() -> None:
    op.drop_index("ix_contribution_time", table_name="contribution")
    op.create_index(
        "ix_contribution_time", "contribution", ["community_id", "created_at", *COVERED]
    )


def downgrade() -> None:
    op.drop_index("ix_contribution_time", table_name="contribution")
    op.create_index("ix_contribution_time", "contribution", ["community_id", "created_at"])

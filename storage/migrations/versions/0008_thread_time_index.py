"""The thread index also orders by time and holds only the rows in a thread

Revision ID: 0008
Revises: 0007

``ix_contribution_thread`` was ``(community_id, thread_id)`` over every row. The open-questions
query asks, per question, whether someone else posted in its thread after it; with a time
condition and no time in the thread index, SQLite walked the time index over every later
message of the community for each question asked inside a thread. On a million contributions
with a quarter of them in threads (as on Slack, where every reply is), the weekly summary did
not finish in two minutes; with this index it takes 73 ms. Rows outside threads (``thread_id``
NULL) are left out: no query looks them up by thread, and once SQLite had statistics
(``ANALYZE``) they made every thread look huge, so it scanned the whole table for each
question instead.

The new index is built before the old one is dropped, so no query is left without one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

IN_THREAD = sa.text("thread_id IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_contribution_thread_time",
        "contribution",
        ["community_id", "thread_id", "created_at"],
        sqlite_where=IN_THREAD,
        postgresql_where=IN_THREAD,
    )
    op.drop_index("ix_contribution_thread", table_name="contribution")


def downgrade() -> None:
    op.create_index("ix_contribution_thread", "contribution", ["community_id", "thread_id"])
    op.drop_index("ix_contribution_thread_time", table_name="contribution")

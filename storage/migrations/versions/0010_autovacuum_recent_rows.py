"""PostgreSQL vacuums the contribution table after fewer inserts

Revision ID: 0010
Revises: 0009

The weekly numbers read the week from the covering time index alone (migration 0009), but
PostgreSQL can skip the table only on pages vacuum has marked all-visible. By default
autovacuum vacuums an insert-only table once inserts reach 20% of it: on a million
contributions, two weeks of a busy course, so the week a summary reads was never all-visible
and every scan of it fetched its rows from the table. Measured on a million contributions with
the last two weeks not yet vacuumed, against the same rows vacuumed, in turns
(``bench/visibility.py``, three runs on a machine whose speed drifted threefold): the open
questions read 250,000 rows from the table instead of none and took 1.2-1.7 times as long,
the weekly summary 1.0-1.2 times.

With 1% of the table (plus the default 1,000 rows), at most about a day of such a course
waits for vacuum. Each of those vacuums reads only the pages written since the last one (the
visibility map says which) and, with nothing deleted, normally leaves the indexes alone.

The setting came with PostgreSQL 13: on an older server this migration changes nothing
(autovacuum keeps the server's rule there). SQLite has no vacuum of this kind: nothing
changes there either.

The edge table keeps the server's rule: Hearth's scans of it need who and to whom, which its
time index does not hold, so they read the table anyway and a current visibility map would
not spare them anything.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("contribution",)
INSERT_SCALE_FACTOR = 0.01


def _applies() -> bool:
    dialect = op.get_bind().dialect
    return dialect.name == "postgresql" and (dialect.server_version_info or (0,)) >= (13,)


def upgrade() -> None:
    if not _applies():
        return
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} SET "
            f"(autovacuum_vacuum_insert_scale_factor = {INSERT_SCALE_FACTOR})"
        )


def downgrade() -> None:
    if not _applies():
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (autovacuum_vacuum_insert_scale_factor)")

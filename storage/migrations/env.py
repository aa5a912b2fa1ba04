"""Alembic environment: Hearth runs migrations in-process on a connection it passes in
(``hearth db upgrade`` and at start), so there is no alembic.ini with a URL to keep in sync."""

from alembic import context

from storage.schema import metadata

target_metadata = metadata()
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` CLI call
    raise RuntimeError("run migrations through `hearth db upgrade`")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic's entry point for Veille: runs on the connection core.migrations passes in.

There is no offline (``--sql``) mode and no alembic.ini: migrations run through the store,
``veille db upgrade`` or ``python -m core.migrations``, inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

from core.migrations import include_name
from core.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Veille's migrations run on a connection given by core.migrations.upgrade "
        "(the store on open, or `veille db upgrade`), not from the alembic command"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot alter most of a table in place: batch operations copy it instead.
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=include_name,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

"""Schema migrations: Alembic, driven from code (no alembic.ini), run by the store on open.

``Store(url)`` calls :func:`upgrade` when the database is not at the newest revision; that is
also what ``veille db upgrade`` does. Each revision is a file in ``versions/``; the tables
they build are declared in :mod:`core.schema`, and a test checks that the two agree.

Three kinds of database reach :func:`upgrade`:

* empty: every revision runs, 0001 creates the tables;
* made by a release before migrations (Veille's tables, no ``alembic_version``): 0001 runs on
  it too. That release created most tables on first use, so such a database may lack some;
  0001 creates only what is missing and brings older layouts up to it, then Alembic records
  it at 0001 and the later revisions run;
* already versioned: the revisions after its own run; a revision this Veille does not know
  (the database was upgraded by a newer Veille) stops with a message.

Everything happens in the caller's transaction (the store's write lock on SQLite, an
advisory lock on PostgreSQL), so two processes opening the same new database cannot both
migrate it.

    with store.write() as conn:
        before, after = upgrade(conn)    # (None, '0002') on an empty database
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.schema import LIBRARY_TABLES

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
# The tables every database made by the release before migrations has (the store made them
# on open); finding one without a version table means "adopt it", not "create everything".
PREVIOUS_RELEASE_CORE = frozenset({"documents", "duplicates", "crawl_runs", "meta", "counters"})
_PG_LOCK = 0x5645494C  # "VEIL": the advisory lock two PostgreSQL migrators take in turn


class SchemaTooNew(RuntimeError):
    """The database is at a revision this Veille does not know: a newer Veille upgraded it."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands: its revision (None: not versioned), the newest revision this
    Veille knows, and whether it was made by the release before migrations."""

    revision: str | None
    head: str
    previous_release: bool
    empty: bool

    @property
    def current(self) -> bool:
        return self.revision == self.head

    def text(self) -> str:
        if self.current:
            return f"at revision {self.head} (the newest)"
        if self.empty:
            return f"empty: `veille db upgrade` creates the tables (revision {self.head})"
        if self.previous_release:
            return (
                "made by a release before migrations (no alembic_version): `veille db upgrade` "
                f"adopts it and brings it to revision {self.head}"
            )
        return f"at revision {self.revision}; `veille db upgrade` brings it to {self.head}"


def include_name(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
    """What Alembic compares: everything but the tables a library manages itself."""
    return not (type_ == "table" and name in LIBRARY_TABLES)


def config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for this package, bound to ``connection``."""
    from alembic.config import Config  # noqa: PLC0415 - only when a migration may run

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision this Veille knows."""
    found = scripts().get_current_head()
    assert found is not None, "no migration in core/migrations/versions"
    return found


def current(conn: sa.Connection) -> str | None:
    """The revision recorded in the database, or None when it has no version table."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def state(conn: sa.Connection) -> SchemaState:
    revision = current(conn)
    tables = set(sa.inspect(conn).get_table_names()) - LIBRARY_TABLES
    previous = revision is None and bool(tables & PREVIOUS_RELEASE_CORE)
    return SchemaState(revision, head(), previous, empty=revision is None and not tables)


def upgrade(conn: sa.Connection, target: str = "head") -> tuple[str | None, str]:
    """Bring the database on ``conn`` (inside a transaction the caller commits) to ``target``.
    Returns (revision before, revision after). SchemaTooNew for an unknown revision."""
    from alembic import command  # noqa: PLC0415

    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    found = state(conn)
    known = {script.revision for script in scripts().walk_revisions()}
    if found.revision is not None and found.revision not in known:
        raise SchemaTooNew(
            f"the database is at schema revision {found.revision}, newer than this Veille "
            f"(whose newest is {found.head}): a newer Veille upgraded it; upgrade Veille"
        )
    if found.previous_release:
        log.warning(
            "database made by a release before migrations (no %s table): adopting it at "
            "revision 0001, then upgrading to %s",
            VERSION_TABLE,
            found.head if target == "head" else target,
        )
    command.upgrade(config(conn), target)
    after = current(conn)
    assert after is not None
    if after != found.revision:
        log.info("database schema upgraded from %s to %s", found.revision or "nothing", after)
    return found.revision, after


def differences(conn: sa.Connection) -> list[Any]:
    """What Alembic's autogenerate finds between the database and core.schema (empty when
    the migrations and the declarations agree)."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.migration import MigrationContext  # noqa: PLC0415

    from core.schema import metadata  # noqa: PLC0415

    context = MigrationContext.configure(
        conn, opts={"include_name": include_name, "compare_type": True}
    )
    return compare_metadata(context, metadata)

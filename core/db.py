"""The database engine: SQLite tuned for one writer and many readers, or any SQLAlchemy URL;
a retry for a database that stays busy, and URLs safe to print.

    engine = make_engine("sqlite:////var/lib/veille/veille.db", busy_timeout=60)
    retry_busy(lambda: write_something(engine), "recording the run")
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from core.fsutil import make_private_file

log = logging.getLogger(__name__)


class DatabaseBusy(RuntimeError):
    """The database stayed locked (or unreachable) through every try; the message says
    what was being done."""


BUSY_TRIES = 3  # each try already waits up to the busy timeout inside SQLite


def retry_busy(action: Callable[[], Any], what: str, *, tries: int = BUSY_TRIES) -> Any:
    """``action()``, tried again when the database is locked by another writer or the
    connection dropped (OperationalError); then DatabaseBusy naming ``what``."""
    for attempt in range(1, tries + 1):
        try:
            return action()
        except sa.exc.OperationalError as exc:
            detail = " ".join(str(exc.orig).split())[:160]
            if attempt == tries:
                raise DatabaseBusy(
                    f"{what}: database busy (locked by another writer) or unreachable "
                    f"after {tries} tries ({detail}); tried again later"
                ) from exc
            log.warning("%s: database busy (try %d of %d): %s", what, attempt, tries, detail)
    raise AssertionError("unreachable")


def safe_url(url: str) -> str:
    """A database URL with its password masked (``postgresql://ana:***@db/veille``)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases, memory and URI forms)."""
    if not url.startswith("sqlite"):
        return None
    path = sa.engine.make_url(url).database or ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def make_engine(url: str, *, busy_timeout: float = 60.0) -> sa.Engine:
    """An engine; for SQLite: WAL, a busy timeout (seconds), and immediate write transactions."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            # The file holds subscribers' addresses: owner-only, and so are the -wal and -shm
            # files SQLite creates beside it (it gives them the database file's mode).
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            make_private_file(path)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten, not just unlinked: an erased subscriber's address
            # must not stay readable in free pages of the file.
            cur.execute("PRAGMA secure_delete=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # noqa: ANN001
            # IMMEDIATE takes the write lock up front, so a reader never fails to upgrade.
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    # hide_parameters: an error's text never carries the values of a statement (addresses
    # of subscribers) into logs or the job_runs table.
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)

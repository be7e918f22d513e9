"""Crawl runs: one row per crawl (source, start, end, counts, status), kept by the store.

``Store`` takes these methods from ``CrawlRuns``; this module is the owner of the
``crawl_runs`` table. A run left "running" by a process that died is closed at the next start
with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.children import dead_process, process_tag
from core.models import CrawlRun, from_row, naive_now, naive_utc
from core.schema import crawl_runs

log = logging.getLogger(__name__)

_COUNTS = frozenset({"pages", "fetched", "new", "updated", "errors", "last_error"})


def _check_counts(counts: dict[str, Any]) -> None:
    unknown = set(counts) - _COUNTS
    if unknown:
        raise ValueError(f"unknown crawl-run fields: {sorted(unknown)}")


class CrawlRuns:
    """The crawl-run methods of the store (it provides ``engine`` and ``write()``)."""

    engine: sa.Engine
    write: Callable[[], Any]  # Store.write: a write transaction

    def start_run(self, source: str, *, now: datetime | None = None) -> int:
        started = naive_utc(now) if now else naive_now()
        with self.write() as conn:
            res = conn.execute(
                crawl_runs.insert().values(source=source, started=started, owner=process_tag())
            )
            return int(res.inserted_primary_key[0])

    def close_dead_runs(self, *, now: datetime | None = None) -> list[CrawlRun]:
        """Close the crawl runs left "running" by a process of this host that is gone
        (killed, crashed), with that reason: "partial" with the counts it had recorded when
        it had read something, else "error". Returns them. Runs of other hosts are left
        (their process cannot be checked from here)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(crawl_runs).where(
                    crawl_runs.c.status == "running", crawl_runs.c.owner != ""
                )
            ).all()
        closed = []
        for row in rows:
            pid = dead_process(row.owner)
            if pid is None:
                continue
            reason = (
                f"stopped: its process ({pid} on this host) died before the crawl ended "
                "(killed or crashed); closed at the next start"
            )
            if row.fetched or row.new or row.updated:
                reason += f"; {row.new} new and {row.updated} updated were stored"
            status = "partial" if row.fetched or row.new or row.updated else "error"
            with self.write() as conn:
                changed = conn.execute(
                    crawl_runs.update()
                    .where(crawl_runs.c.id == row.id, crawl_runs.c.status == "running")
                    .values(
                        status=status,
                        finished=naive_utc(now) if now else naive_now(),
                        last_error=reason,
                    )
                ).rowcount
            if changed:
                log.warning("crawl run %d (%s) %s", row.id, row.source, reason)
                closed.append(row.id)
        if not closed:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(crawl_runs).where(crawl_runs.c.id.in_(closed))).all()
        return [_crawl_run(r) for r in rows]

    def finish_run(
        self,
        run_id: int,
        *,
        status: str = "ok",
        now: datetime | None = None,
        **counts: Any,
    ) -> None:
        """Close a run; ``counts`` may set pages, fetched, new, updated, errors, last_error."""
        _check_counts(counts)
        values = dict(counts, status=status, finished=naive_utc(now) if now else naive_now())
        with self.write() as conn:
            conn.execute(crawl_runs.update().where(crawl_runs.c.id == run_id).values(**values))

    def progress_run(self, run_id: int, **counts: Any) -> None:
        """Record a running crawl's counts so far; the run stays open ("running").

        A crawl that is stopped midway then still shows what it had done.
        """
        _check_counts(counts)
        with self.write() as conn:
            conn.execute(
                crawl_runs.update()
                .where(crawl_runs.c.id == run_id, crawl_runs.c.status == "running")
                .values(**counts)
            )

    def get_run(self, run_id: int) -> CrawlRun:
        """One crawl run by its id (KeyError if there is none)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(crawl_runs).where(crawl_runs.c.id == run_id)).first()
        if row is None:
            raise KeyError(f"no crawl run {run_id}")
        return _crawl_run(row)

    def recent_runs(self, limit: int = 20, *, source: str | None = None) -> list[CrawlRun]:
        query = sa.select(crawl_runs).order_by(crawl_runs.c.id.desc()).limit(limit)
        if source:
            query = query.where(crawl_runs.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_crawl_run(r) for r in rows]


def _crawl_run(r: sa.Row) -> CrawlRun:
    return from_row(CrawlRun, r)

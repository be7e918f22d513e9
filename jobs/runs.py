"""What the scheduled jobs leave in the database: the record of their runs, and their leases.

Each job runs at most once at a time across processes: its *lease* row in ``job_leases``
(owner and expiry, taken atomically, renewed while the job runs, released at the end; a
crashed holder's lease expires). Every run is recorded in ``job_runs`` (job, started,
finished, outcome, message), read by :func:`recent_job_runs` for ``veille jobs`` and the
dashboard. Outcomes: ok, error, skipped (nothing to do, a missing crawler, or the job already
running elsewhere), cancelled (it lost its lease and was stopped), timeout (it ran past its
deadline and was stopped), abandoned (its holder died; closed at the next start).

This module owns both tables (declared in core/schema.py). Running a job under its lease is
:mod:`jobs.runner`; the APScheduler side (cron triggers, the job store, start and stop) is
:mod:`jobs.cron`.

Example::

    if acquire_lease(store, "digest", owner_id()):
        ...
        release_lease(store, "digest", owner)
    recent_job_runs(store, 5, job="digest")
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from core.children import dead_process
from core.db import retry_busy
from core.models import as_utc, from_row, naive_utc
from core.schema import job_leases, job_runs
from core.store import Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 600  # renewed every LEASE_SECONDS / 3 while the job runs


@dataclass(slots=True)
class JobRun:
    id: int
    job: str
    started: datetime
    finished: datetime | None
    outcome: str
    message: str  # what the run did, or why it failed or was skipped
    owner: str = ""

    @property
    def seconds(self) -> float | None:
        return (self.finished - self.started).total_seconds() if self.finished else None


def _utc(now: datetime | None = None) -> datetime:
    """``now`` (default: the current time) as the naive UTC value the database stores."""
    return naive_utc(now or datetime.now(UTC))


def owner_id() -> str:
    """Who holds a lease: host, process, thread and a random part (one per run)."""
    return (f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}")[
        :200
    ]


# -- the cross-process lock --------------------------------------------------------------


def acquire_lease(
    store: Store, job: str, owner: str, *, ttl: float = LEASE_SECONDS, now: datetime | None = None
) -> bool:
    """Take the lease of ``job`` for ``owner`` unless someone holds an unexpired one.

    Atomic: a conditional UPDATE of an expired row, else an INSERT that the primary key
    refuses when another process got there first.
    """
    moment = _utc(now)
    expires = moment + timedelta(seconds=ttl)
    with store.write() as conn:
        taken = conn.execute(
            job_leases.update()
            .where(job_leases.c.job == job, job_leases.c.expires <= moment)
            .values(owner=owner, acquired=moment, expires=expires)
        ).rowcount
    if taken == 1:
        return True
    try:
        with store.write() as conn:
            conn.execute(
                job_leases.insert().values(job=job, owner=owner, acquired=moment, expires=expires)
            )
        return True
    except sa.exc.IntegrityError:
        return False


def renew_lease(
    store: Store, job: str, owner: str, *, ttl: float = LEASE_SECONDS, now: datetime | None = None
) -> bool:
    with store.write() as conn:
        return (
            conn.execute(
                job_leases.update()
                .where(job_leases.c.job == job, job_leases.c.owner == owner)
                .values(expires=_utc(now) + timedelta(seconds=ttl))
            ).rowcount
            == 1
        )


def release_lease(store: Store, job: str, owner: str) -> None:
    with store.write() as conn:
        conn.execute(
            job_leases.delete().where(job_leases.c.job == job, job_leases.c.owner == owner)
        )


def lease_holder(store: Store, job: str) -> tuple[str, datetime] | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(job_leases.c.owner, job_leases.c.expires).where(job_leases.c.job == job)
        ).first()
    return (row[0], as_utc(row[1])) if row is not None else None


class LeaseRenewer(threading.Thread):
    """Renews a lease every ``ttl / 3`` seconds; calls ``on_lost`` once when another owner
    holds it (it expired while this one could not renew, and was taken)."""

    def __init__(
        self,
        store: Store,
        job: str,
        owner: str,
        ttl: float,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name=f"lease-{job}", daemon=True)
        self.store, self.job, self.owner, self.ttl = store, job, owner, ttl
        self.on_lost = on_lost
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.ttl / 3):
            try:
                if renew_lease(self.store, self.job, self.owner, ttl=self.ttl):
                    continue
            except Exception:  # the next renewal may succeed; expiry is the safety net
                log.warning("could not renew the lease of job %s", self.job, exc_info=True)
                continue
            holder = lease_holder(self.store, self.job)
            who = holder[0] if holder else "nobody"
            log.warning("job %s lost its lease (now held by %s); stopping it", self.job, who)
            if self.on_lost is not None:
                self.on_lost(who)
            return


def close_abandoned_runs(store: Store, *, now: datetime | None = None) -> list[JobRun]:
    """Close the runs left ``running`` by a holder that died (killed, crashed, machine
    restarted), with the reason; free the leases of holders known dead. Returns them.

    A run is dead when its owner no longer holds an unexpired lease of its job (a live run
    renews it every few minutes), or when the owner was a process of this host that is gone.
    """
    moment = _utc(now)
    with store.engine.connect() as conn:
        running = conn.execute(sa.select(job_runs).where(job_runs.c.outcome == "running")).all()
        leases = {r.job: r for r in conn.execute(sa.select(job_leases)).all()}
    closed = []
    for row in running:
        lease = leases.get(row.job)
        holds = lease is not None and lease.owner == row.owner and lease.expires > moment
        pid = dead_process(row.owner)
        if holds and pid is None:
            continue
        if pid is not None:
            reason = f"its process ({pid} on this host) stopped before the run ended"
        else:
            reason = "its holder stopped renewing the lease before the run ended"
        reason = f"abandoned: {reason} (killed or crashed); closed at the next start"
        with store.write() as conn:
            changed = conn.execute(
                job_runs.update()
                .where(job_runs.c.id == row.id, job_runs.c.outcome == "running")
                .values(outcome="abandoned", finished=moment, message=reason)
            ).rowcount
        if pid is not None:
            release_lease(store, row.job, row.owner)
        if changed:
            log.warning("job %s run %d %s", row.job, row.id, reason)
            closed.append(get_run(store, row.id))
    return closed


# -- the record of runs ------------------------------------------------------------------


def record_start(store: Store, job: str, owner: str, outcome: str = "running") -> int:
    """Record that ``owner`` started ``job`` now; returns the run's id for :func:`record_end`."""
    with store.write() as conn:
        res = conn.execute(
            job_runs.insert().values(
                job=job, started=_utc(), outcome=outcome, message="", owner=owner
            )
        )
        return int(res.inserted_primary_key[0])


def record_end(store: Store, run_id: int, outcome: str, message: str) -> None:
    """Close a run, waiting out a locked database. If it stays locked the run stays
    ``running`` and the next start closes it as abandoned."""

    def close() -> None:
        with store.write() as conn:
            conn.execute(
                job_runs.update()
                .where(job_runs.c.id == run_id)
                .values(finished=_utc(), outcome=outcome, message=message[:2000])
            )

    retry_busy(close, f"recording the end of run {run_id}")


def get_run(store: Store, run_id: int) -> JobRun:
    """The run ``run_id`` as recorded."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(job_runs).where(job_runs.c.id == run_id)).one()
    return _to_run(row)


def _to_run(row: sa.Row) -> JobRun:
    return from_row(JobRun, row)


def recent_job_runs(store: Store, limit: int = 20, *, job: str | None = None) -> list[JobRun]:
    """The latest runs, newest first (optionally of one job)."""
    query = sa.select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
    if job:
        query = query.where(job_runs.c.job == job)
    with store.engine.connect() as conn:
        return [_to_run(r) for r in conn.execute(query)]


def scrub_job_runs(store: Store, text: str, replacement: str) -> int:
    """Replace ``text`` (case-insensitive) in the messages of recorded runs, e.g. an erased
    subscriber's address; returns how many runs changed."""
    pattern = re.compile(re.escape(text), re.IGNORECASE)
    changed = 0
    with store.write() as conn:
        rows = conn.execute(
            sa.select(job_runs.c.id, job_runs.c.message).where(
                job_runs.c.message.ilike(f"%{text}%")
            )
        ).all()
        for run_id, message in rows:
            scrubbed, count = pattern.subn(replacement, message or "")
            if count:
                conn.execute(
                    job_runs.update().where(job_runs.c.id == run_id).values(message=scrubbed)
                )
                changed += 1
    return changed

"""Scheduled jobs: crawls, re-indexing, trends and the weekly digest, on APScheduler 3.

Schedules are cron strings from settings (``schedule_*``), read in ``settings.timezone``.
Jobs live in the store's database (SQLAlchemy job store), so they survive a restart; on
start the configured ones replace what is stored (a changed schedule takes effect, a removed
one is dropped). Each job runs at most once at a time: ``max_instances=1`` inside a process,
and across processes a *lease* row in ``job_leases`` (owner and expiry, taken atomically,
renewed while the job runs, released at the end; a crashed holder's lease expires).

Every run is recorded in ``job_runs`` (job, started, finished, outcome, error), read by
:func:`recent_job_runs` for ``veille jobs`` and the dashboard. Outcomes: ok, error,
skipped (nothing to do, a missing crawler, or the job already running elsewhere), cancelled
(it lost its lease and was stopped), timeout (it ran past its deadline, ``job_timeout`` or
``job_timeouts``, and was stopped), abandoned (its holder died; closed at the next start).
A job runs in a worker thread under :mod:`jobs.control`, so it can be stopped.

Example::

    scheduler = start_background(settings)   # returns at once; jobs run in threads
    ...
    stop(scheduler)
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from core.children import dead_process, stopping_signals
from core.models import as_utc, naive_utc
from core.settings import ConfigError, Settings, load_settings
from core.store import DatabaseBusy, Store, retry_busy
from jobs.control import STOP_GRACE, JobCancelled, JobControl, run_controlled

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
JOB_PREFIX = "veille:"
MISFIRE_GRACE = 6 * 3600  # a run missed by less than this (e.g. a restart) still happens
DIGEST_GRACE = 24 * 3600  # a Monday digest missed in the morning still goes out that day
LEASE_SECONDS = 600  # renewed every LEASE_SECONDS / 3 while the job runs

_meta = sa.MetaData()
job_runs = sa.Table(
    "job_runs",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(64), nullable=False, index=True),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),  # running, ok, error, skipped
    sa.Column("error", sa.Text, nullable=False, default=""),  # error, or what was done
    sa.Column("owner", sa.String(200), nullable=False, default=""),
)
job_leases = sa.Table(
    "job_leases",
    _meta,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("acquired", sa.DateTime, nullable=False),
    sa.Column("expires", sa.DateTime, nullable=False),
)


class JobSkipped(Exception):
    """Raised by a job that had nothing to do or cannot run yet; recorded as skipped."""


@dataclass(slots=True)
class JobRun:
    id: int
    job: str
    started: datetime
    finished: datetime | None
    outcome: str
    error: str
    owner: str = ""

    @property
    def seconds(self) -> float | None:
        return (self.finished - self.started).total_seconds() if self.finished else None


def ensure_tables(store: Store) -> None:
    store.ensure_tables(_meta)


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
    ensure_tables(store)
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
    ensure_tables(store)
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(job_leases.c.owner, job_leases.c.expires).where(job_leases.c.job == job)
        ).first()
    return (row[0], as_utc(row[1])) if row is not None else None


class _Renewer(threading.Thread):
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
    ensure_tables(store)
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
                .values(outcome="abandoned", finished=moment, error=reason)
            ).rowcount
        if pid is not None:
            release_lease(store, row.job, row.owner)
        if changed:
            log.warning("job %s run %d %s", row.job, row.id, reason)
            closed.append(_get_run(store, row.id))
    return closed


# -- the jobs ------------------------------------------------------------------------------

JobFunc = Callable[[Store, Settings, "datetime | None"], str]


def _reindex_after(store: Store, settings: Settings, changed: int) -> str:
    if not changed:
        return "nothing new to index"
    run = run_job("reindex", settings, store=store)
    return f"re-index {run.outcome}"


def _job_arxiv(store: Store, settings: Settings, now: datetime | None) -> str:
    from crawler.arxiv_crawl import crawl_arxiv  # noqa: PLC0415

    run = crawl_arxiv(store, settings)
    done = f"{run.fetched} fetched, {run.new} new, {run.updated} updated"
    return f"{done}; {_reindex_after(store, settings, run.new + run.updated)}"


def _job_news(store: Store, settings: Settings, now: datetime | None) -> str:
    from crawler.news_crawl import crawl_news  # noqa: PLC0415

    result = crawl_news(store, settings)
    done = f"{len(result.runs)} source(s), {result.new} new, {result.updated} updated"
    if result.failing:
        done += f"; failing: {', '.join(result.failing)}"
    return f"{done}; {_reindex_after(store, settings, result.new + result.updated)}"


def _job_reindex(store: Store, settings: Settings, now: datetime | None) -> str:
    from index.pipeline import index_and_match  # noqa: PLC0415
    from index.story import refresh_evidence  # noqa: PLC0415

    report = index_and_match(store, settings)
    done = f"{report.embedded} embedded, {report.indexed} indexed, {report.matched} matched" + (
        " (up to date)" if report.up_to_date else ""
    )
    # Every crawl ends with this job: what it brought about shortlisted innovations (a new
    # version, code, a news mention) is recorded now, for their pages and the next digest.
    try:
        found = refresh_evidence(store, now=now)
    except Exception:  # the index is up to date; the evidence is looked at again next time
        log.warning("shortlist evidence not refreshed after the re-index", exc_info=True)
        return f"{done}; shortlist evidence not refreshed (see the log)"
    return f"{done}; {found} new piece(s) of shortlist evidence"


def _job_digest(store: Store, settings: Settings, now: datetime | None) -> str:
    from jobs.digest import send_digests  # noqa: PLC0415

    report = send_digests(store, settings, now=now)
    if not report.ok:
        raise RuntimeError(report.summary())
    return report.summary()


def _weekly_run_incomplete(store: Store, settings: Settings, now: datetime | None) -> bool:
    """True when this week's scheduled digest run ended in error: the retry job then goes
    through every subscriber still without this week's digest, not only the failed sends
    (a database locked during the whole run leaves nothing recorded to retry)."""
    from jobs.digest import iso_week  # noqa: PLC0415

    moment = now or datetime.now(UTC)
    last = recent_job_runs(store, 1, job="digest")
    return bool(
        last
        and last[0].outcome in ("error", "cancelled", "timeout", "abandoned")
        and iso_week(last[0].started, settings) == iso_week(moment, settings)
    )


def _job_digest_retry(store: Store, settings: Settings, now: datetime | None) -> str:
    from jobs.digest import send_digests  # noqa: PLC0415

    retry_only = not _weekly_run_incomplete(store, settings, now)
    report = send_digests(store, settings, now=now, retry_only=retry_only)
    if not report.ok:
        raise RuntimeError(report.summary())
    if not (report.sent or report.gave_up):
        raise JobSkipped("no failed send to retry this week")
    return report.summary()


def _job_matcher(store: Store, settings: Settings, now: datetime | None) -> str:
    from index.learner import needs_training  # noqa: PLC0415
    from index.matching import retrain_matcher  # noqa: PLC0415
    from index.taxonomy import load_taxonomy  # noqa: PLC0415

    if not needs_training(store, settings, load_taxonomy(settings)):
        raise JobSkipped("no new feedback since the last training")
    model, matched = retrain_matcher(store, settings)
    return f"trained in {model.seconds:.1f}s; {matched} document(s) re-matched"


@dataclass(frozen=True, slots=True)
class JobSpec:
    func: JobFunc
    setting: str
    description: str


JOBS: dict[str, JobSpec] = {
    "arxiv": JobSpec(_job_arxiv, "schedule_arxiv", "arXiv crawl, then re-index"),
    "news": JobSpec(_job_news, "schedule_news", "news crawl, then re-index"),
    "reindex": JobSpec(_job_reindex, "schedule_reindex", "embed, index and match new documents"),
    "matcher": JobSpec(
        _job_matcher, "schedule_matcher", "retrain the sector matcher after new feedback"
    ),
    "digest": JobSpec(_job_digest, "schedule_digest", "weekly email digest"),
    "digest_retry": JobSpec(
        _job_digest_retry, "schedule_digest_retry", "retry this week's failed digest sends"
    ),
}


def _record_start(store: Store, job: str, owner: str, outcome: str = "running") -> int:
    with store.write() as conn:
        res = conn.execute(
            job_runs.insert().values(
                job=job, started=_utc(), outcome=outcome, error="", owner=owner
            )
        )
        return int(res.inserted_primary_key[0])


def _record_end(store: Store, run_id: int, outcome: str, error: str) -> None:
    """Close a run, waiting out a locked database. If it stays locked the run stays
    ``running`` and the next start closes it as abandoned."""

    def close() -> None:
        with store.write() as conn:
            conn.execute(
                job_runs.update()
                .where(job_runs.c.id == run_id)
                .values(finished=_utc(), outcome=outcome, error=error[:2000])
            )

    retry_busy(close, f"recording the end of run {run_id}")


def _get_run(store: Store, run_id: int) -> JobRun:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(job_runs).where(job_runs.c.id == run_id)).one()
    return _to_run(row)


def _to_run(row: sa.Row) -> JobRun:
    return JobRun(
        id=row.id,
        job=row.job,
        started=as_utc(row.started),
        finished=as_utc(row.finished),
        outcome=row.outcome,
        error=row.error,
        owner=row.owner,
    )


def job_timeout(settings: Settings, name: str) -> float:
    """The deadline of job ``name`` in seconds (``job_timeouts``, else ``job_timeout``)."""
    return float(settings.job_timeouts.get(name, settings.job_timeout))


def run_job(
    name: str,
    settings: Settings,
    *,
    store: Store | None = None,
    now: datetime | None = None,
    lease_seconds: float = LEASE_SECONDS,
    stop_grace: float = STOP_GRACE,
) -> JobRun:
    """Run one job now, under its lease and its deadline, and record the run. Never raises
    for a job error (it is recorded); ValueError for an unknown job name; DatabaseBusy when
    another writer kept the database locked through every try, so nothing could start.

    Outcomes: ok; error (the job failed, with the error); skipped (nothing to do, or
    already running elsewhere); cancelled (the job lost its lease and was stopped);
    timeout (it ran past ``job_timeout`` / ``job_timeouts`` and was stopped, children
    killed); abandoned (set by :func:`close_abandoned_runs` for a holder that died).
    """
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}; jobs: {', '.join(JOBS)}")
    own = store is None
    store = store or Store.from_settings(settings)
    try:
        ensure_tables(store)
        owner = owner_id()

        def start() -> bool:
            close_abandoned_runs(store)
            return acquire_lease(store, name, owner, ttl=lease_seconds)

        # Another writer holding the database: wait (busy timeout), try again, then say so.
        if not retry_busy(start, f"starting job {name}"):
            holder = lease_holder(store, name)
            who = f"{holder[0]} until {holder[1]:%Y-%m-%d %H:%M:%S} UTC" if holder else "another"
            run_id = _record_start(store, name, owner, outcome="skipped")
            _record_end(store, run_id, "skipped", f"already running elsewhere ({who})")
            log.info("job %s skipped: already running (%s)", name, who)
            return _get_run(store, run_id)
        try:
            run_id = retry_busy(
                lambda: _record_start(store, name, owner), f"recording the start of job {name}"
            )
        except BaseException:
            release_lease(store, name, owner)
            raise
        control = JobControl(name)
        renewer = _Renewer(
            store,
            name,
            owner,
            lease_seconds,
            on_lost=lambda who: control.cancel(
                "cancelled", f"lost its lease to {who} and was stopped"
            ),
        )
        renewer.start()
        outcome, message = "ok", ""
        try:
            log.info("job %s started", name)
            message = (
                run_controlled(
                    lambda: JOBS[name].func(store, settings, now),
                    control,
                    timeout=job_timeout(settings, name),
                    grace=stop_grace,
                )
                or ""
            )
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP in `veille jobs run`
            outcome, message = "cancelled", "interrupted (Ctrl-C or a stop signal) and stopped"
            control.cancel(outcome, message)
            control.kill_children()
            raise
        except JobSkipped as exc:
            outcome, message = "skipped", str(exc)
        except JobCancelled as exc:
            outcome, message = exc.outcome, exc.reason or str(exc)
            if outcome == "timeout":
                setting = "job_timeouts" if name in settings.job_timeouts else "job_timeout"
                message += f" (deadline from {setting})"
            log.error("job %s %s: %s", name, outcome, message)
        except Exception as exc:  # noqa: BLE001 - recorded and shown; the scheduler goes on
            log.exception("job %s failed", name)
            outcome, message = "error", f"{type(exc).__name__}: {exc}"
        finally:
            renewer.done.set()
            try:
                _record_end(store, run_id, outcome, message)
                if "abandoned" not in message:  # a job still running keeps its lease
                    retry_busy(lambda: release_lease(store, name, owner), "releasing the lease")
            except DatabaseBusy as exc:  # closed as abandoned at the next start; say why now
                log.error("job %s %s (%s), but %s", name, outcome, message, exc)
        log.info("job %s %s: %s", name, outcome, message)
        return _get_run(store, run_id)
    finally:
        if own:
            store.close()


def recent_job_runs(store: Store, limit: int = 20, *, job: str | None = None) -> list[JobRun]:
    """The latest runs, newest first (optionally of one job)."""
    ensure_tables(store)
    query = sa.select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
    if job:
        query = query.where(job_runs.c.job == job)
    with store.engine.connect() as conn:
        return [_to_run(r) for r in conn.execute(query)]


def scrub_job_runs(store: Store, text: str, replacement: str) -> int:
    """Replace ``text`` (case-insensitive) in the messages of recorded runs, e.g. an erased
    subscriber's address; returns how many runs changed."""
    ensure_tables(store)
    pattern = re.compile(re.escape(text), re.IGNORECASE)
    changed = 0
    with store.write() as conn:
        rows = conn.execute(
            sa.select(job_runs.c.id, job_runs.c.error).where(job_runs.c.error.ilike(f"%{text}%"))
        ).all()
        for run_id, message in rows:
            scrubbed, count = pattern.subn(replacement, message or "")
            if count:
                conn.execute(
                    job_runs.update().where(job_runs.c.id == run_id).values(error=scrubbed)
                )
                changed += 1
    return changed


# -- the scheduler -------------------------------------------------------------------------

_context: dict[str, Any] = {}
_context_lock = threading.Lock()


def run_scheduled(name: str) -> None:
    """What APScheduler calls (by reference, so it can be stored): settings and store come
    from the process that started the scheduler, never from the job store."""
    with _context_lock:
        settings = _context.get("settings")
        if settings is None:
            settings = _context["settings"] = load_settings()
        store = _context.get("store")
        if store is None or store.url != settings.sqlalchemy_url:
            store = _context["store"] = Store.from_settings(settings)
    try:
        run_job(name, settings, store=store)
    except DatabaseBusy as exc:  # nothing could be recorded: the log is the only place left
        log.error("job %s not run: %s", name, exc)


def configured_triggers(settings: Settings) -> dict[str, BaseTrigger]:
    """The cron trigger of each job with a non-empty schedule (ConfigError naming a bad one)."""
    try:
        tz = ZoneInfo(settings.timezone)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"timezone {settings.timezone!r} is not a known time zone") from exc
    triggers: dict[str, BaseTrigger] = {}
    for name, spec in JOBS.items():
        expr = str(getattr(settings, spec.setting) or "").strip()
        if not expr:
            continue
        try:
            triggers[name] = CronTrigger.from_crontab(expr, timezone=tz)
        except ValueError as exc:
            raise ConfigError(
                f"{spec.setting} = {expr!r} is not a cron expression "
                f"(minute hour day month weekday): {exc}"
            ) from exc
    return triggers


def build_scheduler(
    settings: Settings,
    *,
    background: bool = True,
    store: Store | None = None,
    triggers: dict[str, BaseTrigger] | None = None,
) -> BaseScheduler:
    """A scheduler on the store's database with the configured jobs added (not started).

    ``triggers`` replaces the cron triggers from settings (tests use short intervals).
    """
    store = store or Store.from_settings(settings)
    ensure_tables(store)
    for run in close_abandoned_runs(store):  # runs of a scheduler that died, closed with why
        log.warning("closed run %d of job %s: %s", run.id, run.job, run.error)
    store.close_dead_runs()  # and the crawl runs its dead crawls left open
    triggers = configured_triggers(settings) if triggers is None else triggers
    tz = ZoneInfo(settings.timezone)
    cls = BackgroundScheduler if background else BlockingScheduler
    jobstore = SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)
    with store.write() as conn:  # created here, under the write lock, rather than at start
        jobstore.jobs_t.create(conn, checkfirst=True)
    scheduler = cls(
        jobstores={"default": jobstore},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
        timezone=tz,
    )
    _drop_stale_jobs(store, set(triggers))
    pending = _stored_next_runs(store)
    for name, trigger in triggers.items():
        job_id = f"{JOB_PREFIX}{name}"
        extra: dict[str, Any] = {}
        # Same schedule as stored: keep the stored next run, so a run missed while no
        # scheduler was up still happens (once, coalesced) within the grace time.
        stored = pending.get(job_id)
        if stored is not None and stored[0] == repr(trigger) and stored[1] is not None:
            extra["next_run_time"] = stored[1]
        scheduler.add_job(
            run_scheduled,
            trigger=trigger,
            args=[name],
            id=job_id,
            name=f"{name}: {JOBS[name].description}",
            replace_existing=True,
            misfire_grace_time=DIGEST_GRACE if name == "digest" else MISFIRE_GRACE,
            **extra,
        )
    with _context_lock:
        _context["settings"] = settings
        _context["store"] = store
    return scheduler


def _stored_next_runs(store: Store) -> dict[str, tuple[str, datetime | None]]:
    """Stored Veille jobs: their trigger (as repr) and next run time."""
    if not sa.inspect(store.engine).has_table(JOBSTORE_TABLE):
        return {}
    table = sa.Table(JOBSTORE_TABLE, sa.MetaData(), autoload_with=store.engine)
    out = {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.id, table.c.job_state).where(table.c.id.like(f"{JOB_PREFIX}%"))
        )
        for job_id, state in rows:
            try:
                job = pickle.loads(state)  # written by APScheduler into our own database
                out[job_id] = (repr(job["trigger"]), job.get("next_run_time"))
            except Exception:  # an unreadable row is simply replaced
                log.warning("stored job %s could not be read; it is replaced", job_id)
    return out


def _drop_stale_jobs(store: Store, keep: set[str]) -> None:
    """Remove stored Veille jobs whose schedule was removed from the settings."""
    if not sa.inspect(store.engine).has_table(JOBSTORE_TABLE):
        return
    table = sa.Table(JOBSTORE_TABLE, sa.MetaData(), autoload_with=store.engine)
    wanted = [f"{JOB_PREFIX}{n}" for n in keep]
    with store.write() as conn:
        conn.execute(
            table.delete().where(table.c.id.like(f"{JOB_PREFIX}%"), table.c.id.not_in(wanted))
        )


def start_background(settings: Settings, *, store: Store | None = None) -> BaseScheduler:
    """Start the scheduler in background threads and return it (for `veille up`)."""
    scheduler = build_scheduler(settings, background=True, store=store)
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("scheduled %s, next run %s", job.id, job.next_run_time)
    return scheduler


def stop(scheduler: BaseScheduler, *, wait: bool = True) -> None:
    """Stop scheduling; with ``wait``, let running jobs finish (their leases are released)."""
    if scheduler.running:
        scheduler.shutdown(wait=wait)


def run_foreground(settings: Settings, *, store: Store | None = None) -> None:
    """Run the scheduler in this thread until Ctrl-C or SIGTERM, then stop cleanly."""
    scheduler = build_scheduler(settings, background=False, store=store)

    def _terminate(signum: int, _frame: object) -> None:
        log.info("stopping the scheduler (%s)", signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    on_main = threading.current_thread() is threading.main_thread()
    try:
        with stopping_signals(_terminate) if on_main else nullcontext():
            scheduler.start()
    except KeyboardInterrupt:
        log.info("stopping the scheduler; waiting for running jobs (Ctrl-C again to abort)")
        stop(scheduler, wait=True)


def job_overview(settings: Settings, store: Store, *, now: datetime | None = None) -> list[dict]:
    """Each job: schedule, next run (from the job store when a scheduler has saved it,
    else computed from the settings), and its last run."""
    moment = now or datetime.now(UTC)
    triggers = configured_triggers(settings)
    stored: dict[str, float | None] = {}
    if sa.inspect(store.engine).has_table(JOBSTORE_TABLE):
        table = sa.Table(JOBSTORE_TABLE, sa.MetaData(), autoload_with=store.engine)
        with store.engine.connect() as conn:
            stored = dict(conn.execute(sa.select(table.c.id, table.c.next_run_time)).all())
    out = []
    for name, spec in JOBS.items():
        key = f"{JOB_PREFIX}{name}"
        if key in stored and stored[key] is not None:
            next_run: datetime | None = datetime.fromtimestamp(stored[key], UTC)
        elif name in triggers:
            next_run = triggers[name].get_next_fire_time(None, moment)
        else:
            next_run = None
        last = recent_job_runs(store, 1, job=name)
        out.append(
            {
                "job": name,
                "description": spec.description,
                "schedule": getattr(settings, spec.setting) or "",
                "setting": spec.setting,
                "next_run": next_run.astimezone(UTC).isoformat() if next_run else None,
                "last_outcome": last[0].outcome if last else None,
                "last_started": last[0].started.isoformat() if last else None,
                "last_message": last[0].error if last else None,
            }
        )
    return out


def job_tables(store: Store, settings: Settings, *, limit: int = 30) -> dict[str, list[dict]]:
    """Schedules (next run, last outcome) and recent runs, as rows for the dashboard."""
    runs = [
        {
            "job": r.job,
            "started": r.started.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": round(r.seconds, 1) if r.seconds is not None else None,
            "outcome": r.outcome,
            "error": r.error,
        }
        for r in recent_job_runs(store, limit)
    ]
    schedules = [
        {
            "job": row["job"],
            "schedule": row["schedule"],
            "next run": row["next_run"] or "",
            "last outcome": row["last_outcome"] or "",
            "what": row["description"],
        }
        for row in job_overview(settings, store)
    ]
    return {"schedules": schedules, "runs": runs}

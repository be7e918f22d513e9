"""Scheduled jobs on APScheduler 3: crawls, re-indexing, the matcher and the weekly digest.

Schedules are cron strings from settings (``schedule_*``), read in ``settings.timezone``.
Jobs live in the store's database (SQLAlchemy job store), so they survive a restart; on
start the configured ones replace what is stored (a changed schedule takes effect, a removed
one is dropped). Each job runs at most once at a time: ``max_instances=1`` inside a process,
and across processes the job's lease (:mod:`jobs.runs`), taken by :func:`run_job`.
APScheduler stores only a reference to :func:`run_scheduled` and the job's name; settings
and store come from the process that started the scheduler.

Example::

    scheduler = start_background(settings)   # returns at once; jobs run in threads
    ...
    stop(scheduler)
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from core.children import stopping_signals
from core.db import DatabaseBusy
from core.schema import JOBSTORE_TABLE
from core.settings import ConfigError, Settings, load_settings
from core.store import Store
from jobs.runner import JOBS, run_job
from jobs.runs import close_abandoned_runs, recent_job_runs

log = logging.getLogger(__name__)

JOB_PREFIX = "veille:"
MISFIRE_GRACE = 6 * 3600  # a run missed by less than this (e.g. a restart) still happens
DIGEST_GRACE = 24 * 3600  # a Monday digest missed in the morning still goes out that day

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
    store: Store | None = None,
    triggers: dict[str, BaseTrigger] | None = None,
) -> BaseScheduler:
    """A scheduler (in background threads) on the store's database with the configured jobs
    added (not started).

    ``triggers`` replaces the cron triggers from settings (tests use short intervals).
    """
    store = store or Store.from_settings(settings)
    for run in close_abandoned_runs(store):  # runs of a scheduler that died, closed with why
        log.warning("closed run %d of job %s: %s", run.id, run.job, run.message)
    store.close_dead_runs()  # and the crawl runs its dead crawls left open
    triggers = configured_triggers(settings) if triggers is None else triggers
    tz = ZoneInfo(settings.timezone)
    jobstore = SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)
    with store.write() as conn:  # created here, under the write lock, rather than at start
        jobstore.jobs_t.create(conn, checkfirst=True)
    scheduler = BackgroundScheduler(
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
    scheduler = build_scheduler(settings, store=store)
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("scheduled %s, next run %s", job.id, job.next_run_time)
    return scheduler


def stop(scheduler: BaseScheduler, *, wait: bool = True) -> None:
    """Stop scheduling; with ``wait``, let running jobs finish (their leases are released)."""
    if scheduler.running:
        scheduler.shutdown(wait=wait)


def run_foreground(
    settings: Settings,
    *,
    store: Store | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run the scheduler until Ctrl-C or SIGTERM, then stop cleanly.

    The scheduler runs in its own threads; this one waits to be asked to stop. Ctrl-C,
    SIGTERM and SIGHUP only say so (no KeyboardInterrupt is raised while the scheduler
    starts: inside APScheduler's start it could leave a lock taken, and the stop would wait
    for it forever). Ctrl-C then lets running jobs finish, and a second Ctrl-C aborts them;
    SIGTERM and SIGHUP stop at once. ``ready`` (the "press Ctrl-C" line) is called once the
    signals are caught."""
    asked: list[int] = []
    stop_asked = threading.Event()

    def _ask(signum: int, _frame: object) -> None:
        asked.append(signum)
        stop_asked.set()

    on_main = threading.current_thread() is threading.main_thread()
    with stopping_signals(_ask, ctrl_c=True) if on_main else nullcontext():
        if ready is not None:
            ready()
        scheduler = build_scheduler(settings, store=store)
        scheduler.start()
        stop_asked.wait()
    if asked and asked[0] == signal.SIGINT:
        log.info("stopping the scheduler; waiting for running jobs (Ctrl-C again to abort)")
        stop(scheduler, wait=True)
    else:
        log.info("stopping the scheduler (%s)", signal.Signals(asked[0]).name if asked else "")
        stop(scheduler, wait=False)


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
                "last_message": last[0].message if last else None,
            }
        )
    return out


def job_tables(store: Store, settings: Settings, *, limit: int = 30) -> dict[str, list[dict]]:
    """Schedules (next run, last outcome) and recent runs, as rows for the dashboard."""
    runs = [
        {
            "job": r.job,
            "started": r.started.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": f"{r.seconds:.1f}" if r.seconds is not None else "still running",
            "outcome": r.outcome,
            "message": r.message,
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

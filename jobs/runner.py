"""Running one job now: the job bodies, their registry, and :func:`run_job`.

:func:`run_job` is what every trigger ends in (a schedule, ``veille jobs run``, the
dashboard's Sources page): it takes the job's lease, records the run, runs the body in a
worker thread under :mod:`jobs.control` (so a lost lease or the deadline, ``job_timeout`` or
``job_timeouts``, stops it and kills its children), and records how it ended. A crawl job
runs the re-index job after it when it brought something new, under that job's own lease.
The leases and the record of runs are :mod:`jobs.runs`'s.

Example::

    run = run_job("reindex", settings)
    run.outcome, run.message
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.db import DatabaseBusy, retry_busy
from core.markup import counted
from core.settings import Settings
from core.store import Store
from jobs.control import STOP_GRACE, JobCancelled, JobControl, run_controlled
from jobs.runs import (
    LEASE_SECONDS,
    JobRun,
    LeaseRenewer,
    acquire_lease,
    close_abandoned_runs,
    get_run,
    lease_holder,
    owner_id,
    recent_job_runs,
    record_end,
    record_start,
    release_lease,
)

log = logging.getLogger(__name__)


class JobSkipped(Exception):
    """Raised by a job that had nothing to do or cannot run yet; recorded as skipped."""


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
    failed = [r for r in result.runs if r.status == "error"]
    if result.runs and len(failed) == len(result.runs):
        # Nothing was reached (offline, or every feed broke): an error, not "ok".
        first = failed[0].last_error or "no reason recorded"
        raise RuntimeError(
            f"every news source failed ({len(failed)}); the first said: {first[:300]}"
        )
    done = f"{counted(len(result.runs), 'source')}, {result.new} new, {result.updated} updated"
    if failed:
        done += f"; {len(failed)} failed this time"
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
    return f"{done}; {counted(found, 'new piece')} of shortlist evidence"


def _job_digest(store: Store, settings: Settings, now: datetime | None) -> str:
    from jobs.digest_delivery import send_digests  # noqa: PLC0415

    report = send_digests(store, settings, now=now)
    if not report.ok:
        raise RuntimeError(report.summary())
    return report.summary()


def _weekly_run_incomplete(store: Store, settings: Settings, now: datetime | None) -> bool:
    """True when this week's scheduled digest run ended in error: the retry job then goes
    through every subscriber still without this week's digest, not only the failed sends
    (a database locked during the whole run leaves nothing recorded to retry)."""
    from jobs.digest_week import iso_week  # noqa: PLC0415

    moment = now or datetime.now(UTC)
    last = recent_job_runs(store, 1, job="digest")
    return bool(
        last
        and last[0].outcome in ("error", "cancelled", "timeout", "abandoned")
        and iso_week(last[0].started, settings) == iso_week(moment, settings)
    )


def _job_digest_retry(store: Store, settings: Settings, now: datetime | None) -> str:
    from jobs.digest_delivery import send_digests  # noqa: PLC0415

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
    return f"trained in {model.seconds:.1f}s; {counted(matched, 'document')} re-matched"


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
        owner = owner_id()

        def start() -> bool:
            close_abandoned_runs(store)
            return acquire_lease(store, name, owner, ttl=lease_seconds)

        # Another writer holding the database: wait (busy timeout), try again, then say so.
        if not retry_busy(start, f"starting job {name}"):
            holder = lease_holder(store, name)
            who = f"{holder[0]} until {holder[1]:%Y-%m-%d %H:%M:%S} UTC" if holder else "another"
            run_id = record_start(store, name, owner, outcome="skipped")
            record_end(store, run_id, "skipped", f"already running elsewhere ({who})")
            log.info("job %s skipped: already running (%s)", name, who)
            return get_run(store, run_id)
        try:
            run_id = retry_busy(
                lambda: record_start(store, name, owner), f"recording the start of job {name}"
            )
        except BaseException:
            release_lease(store, name, owner)
            raise
        control = JobControl(name)
        renewer = LeaseRenewer(
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
                record_end(store, run_id, outcome, message)
                if "abandoned" not in message:  # a job still running keeps its lease
                    retry_busy(lambda: release_lease(store, name, owner), "releasing the lease")
            except DatabaseBusy as exc:  # closed as abandoned at the next start; say why now
                log.error("job %s %s (%s), but %s", name, outcome, message, exc)
        log.info("job %s %s: %s", name, outcome, message)
        return get_run(store, run_id)
    finally:
        if own:
            store.close()

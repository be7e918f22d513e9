"""Scheduled jobs: the database lease, run records, persistence, two schedulers on one DB."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner

from core.models import CrawlRun, Document
from core.settings import ConfigError, load_settings
from core.store import Store
from jobs.cli import cli
from jobs.cron import JOBSTORE_TABLE, build_scheduler, configured_triggers
from jobs.runner import JOBS, JobSpec, run_job
from jobs.runs import acquire_lease, lease_holder, recent_job_runs, release_lease
from tests.pg import find_pg_bin, postgres_server


@pytest.fixture
def cheap(monkeypatch):
    """Settings with the hashing embedder (index mechanics only) and a store."""
    monkeypatch.setenv("VEILLE_MODEL", "hash:64")
    settings = load_settings()
    store = Store.from_settings(settings)
    yield settings, store
    store.close()


def test_lease_is_exclusive_expires_and_only_its_owner_releases(cheap) -> None:
    _, store = cheap
    t0 = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
    assert acquire_lease(store, "digest", "A", ttl=60, now=t0)
    assert not acquire_lease(store, "digest", "B", ttl=60, now=t0 + timedelta(seconds=30))
    assert not acquire_lease(store, "digest", "A", ttl=60, now=t0 + timedelta(seconds=30))
    release_lease(store, "digest", "B")  # not B's: nothing happens
    assert lease_holder(store, "digest")[0] == "A"
    # A died without releasing: after expiry, B takes over
    assert acquire_lease(store, "digest", "B", ttl=60, now=t0 + timedelta(seconds=61))
    assert lease_holder(store, "digest")[0] == "B"
    release_lease(store, "digest", "B")
    assert lease_holder(store, "digest") is None


def test_two_processes_worth_of_runners_run_a_job_once(cheap, monkeypatch) -> None:
    settings, _ = cheap
    calls: list[float] = []
    gate = threading.Barrier(2)
    other_done = threading.Event()  # the job runs until the other runner has been turned away

    def slow(store, settings, now):
        calls.append(time.monotonic())
        other_done.wait(30)
        return "done"

    monkeypatch.setitem(JOBS, "slow", JobSpec(slow, "schedule_reindex", "test job"))
    results = []

    def runner() -> None:
        own = Store.from_settings(settings)  # its own engine, as another process would have
        gate.wait()
        results.append(run_job("slow", settings, store=own))
        own.close()

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not results:  # the second runner's answer
        time.sleep(0.02)
    other_done.set()
    for t in threads:
        t.join(30)
    assert len(calls) == 1
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["ok", "skipped"]
    skipped = next(r for r in results if r.outcome == "skipped")
    assert "already running elsewhere" in skipped.message


def test_runs_are_recorded_with_outcome_and_error(cheap, monkeypatch) -> None:
    settings, store = cheap

    def broken(store, settings, now):
        raise RuntimeError("source answered 503")

    monkeypatch.setitem(JOBS, "broken", JobSpec(broken, "schedule_reindex", "test job"))
    run = run_job("broken", settings, store=store)
    assert run.outcome == "error" and "source answered 503" in run.message
    assert run.finished is not None and run.finished >= run.started
    assert lease_holder(store, "broken") is None  # released even after an error

    reindex = run_job("reindex", settings, store=store, now=datetime(2026, 3, 11, tzinfo=UTC))
    assert reindex.outcome == "ok", reindex.message
    assert [r.job for r in recent_job_runs(store, 5)] == ["reindex", "broken"]
    with pytest.raises(ValueError, match="unknown job 'nope'; jobs: arxiv, news"):
        run_job("nope", settings, store=store)


def test_news_job_reports_the_crawl_then_reindexes(cheap, monkeypatch):
    settings, store = cheap

    def crawl_news(store, settings):
        result = store.upsert(
            [Document("https://news.example/a", "Robots pick parts", "A factory robot.")]
        )
        run = CrawlRun(id=1, source="news:Example", started=datetime.now(UTC), new=result.new)
        # the shape of crawler.news_crawl.NewsCrawlReport
        return types.SimpleNamespace(runs=[run], new=run.new, updated=0, failing=["Gone feed"])

    fake = types.ModuleType("crawler.news_crawl")
    fake.crawl_news = crawl_news
    monkeypatch.setitem(sys.modules, "crawler.news_crawl", fake)
    run = run_job("news", settings, store=store)
    assert run.outcome == "ok" and "1 source, 1 new" in run.message, run.message
    assert "failing: Gone feed" in run.message and "re-index ok" in run.message
    reindex = recent_job_runs(store, 1, job="reindex")[0]
    assert reindex.outcome == "ok" and "1 embedded" in reindex.message


def test_a_crawl_records_new_evidence_about_shortlisted_items(cheap, monkeypatch):
    from index.shortlists import add_entry
    from index.story import recent_evidence

    settings, store = cheap
    store.upsert([Document("2601.00077", "Robot arms learn to grasp", "A robot policy.")])
    add_entry(store, settings, "2601.00077", "industry/robotics", by="ana")
    assert run_job("reindex", settings, store=store).outcome == "ok"  # the first look
    since = datetime.now(UTC) - timedelta(minutes=5)
    assert recent_evidence(store, since) == []

    def crawl_news(store, settings):
        result = store.upsert(
            [
                Document(
                    "https://news.example/grasp",
                    "A carmaker pilots learned grasping",
                    "The plant tests the policy of arXiv 2601.00077 on its line.",
                    kind="news",
                    url="https://news.example/grasp",
                )
            ]
        )
        run = CrawlRun(id=1, source="news:Example", started=datetime.now(UTC), new=result.new)
        return types.SimpleNamespace(runs=[run], new=run.new, updated=0, failing=[])

    fake = types.ModuleType("crawler.news_crawl")
    fake.crawl_news = crawl_news
    monkeypatch.setitem(sys.modules, "crawler.news_crawl", fake)
    assert run_job("news", settings, store=store).outcome == "ok"
    reindex = recent_job_runs(store, 1, job="reindex")[0]
    assert "1 new piece of shortlist evidence" in reindex.message, reindex.message
    [found] = recent_evidence(store, since)
    assert found.text == "cited by a news item: A carmaker pilots learned grasping"


def test_cron_settings_are_checked(monkeypatch) -> None:
    settings = load_settings(schedule_digest="0 7 * * mon", timezone="Europe/Paris")
    triggers = configured_triggers(settings)
    assert "reindex" not in triggers  # empty schedule: only after crawls
    monday = triggers["digest"].get_next_fire_time(None, datetime(2026, 3, 11, tzinfo=UTC))
    assert monday.isoformat() == "2026-03-16T07:00:00+01:00"
    with pytest.raises(ConfigError, match="schedule_news = 'every two hours'"):
        configured_triggers(load_settings(schedule_news="every two hours"))


def test_jobs_persist_across_a_restart_and_follow_the_settings(cheap) -> None:
    settings, store = cheap
    first = build_scheduler(settings, store=store)
    first.start()
    before = {j.id: j.next_run_time for j in first.get_jobs()}
    job = first.get_job("veille:digest")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 86400)
    first.shutdown()
    assert set(before) == {f"veille:{n}" for n in ("arxiv", "news", "matcher", "digest")} | {
        "veille:digest_retry"
    }

    # a brand-new scheduler that adds nothing finds the jobs in the database
    bare = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=store.url)})
    bare.start(paused=True)
    found = {j.id: j.next_run_time for j in bare.get_jobs()}
    bare.shutdown()
    assert found == before

    # restarting with changed settings replaces the stored schedules and drops removed ones
    changed = load_settings(schedule_digest="30 8 * * tue", schedule_digest_retry="")
    second = build_scheduler(changed, store=store)
    second.start(paused=True)
    ids = {j.id for j in second.get_jobs()}
    trigger = str(second.get_job("veille:digest").trigger)
    second.shutdown()
    assert "veille:digest_retry" not in ids and "veille:arxiv" in ids
    assert "day_of_week='tue'" in trigger and "hour='8'" in trigger


def test_a_run_missed_while_down_happens_once_after_restart(cheap) -> None:
    settings, store = cheap
    first = build_scheduler(settings, store=store)
    first.start(paused=True)
    first.shutdown()
    # the machine was off when the run was due: its stored next run is now in the past
    jobstore = SQLAlchemyJobStore(engine=store.engine)
    jobstore.start(BackgroundScheduler(), "default")
    job = jobstore.lookup_job("veille:matcher")
    job._modify(next_run_time=datetime.now(UTC) - timedelta(minutes=30))
    jobstore.update_job(job)

    second = build_scheduler(settings, store=store)
    second.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not recent_job_runs(store, 5, job="matcher"):
        time.sleep(0.2)
    while (
        time.monotonic() < deadline and recent_job_runs(store, 1, job="matcher")[0].finished is None
    ):
        time.sleep(0.2)
    upcoming = second.get_job("veille:matcher").next_run_time
    second.shutdown()
    runs = recent_job_runs(store, 5, job="matcher")
    assert [r.outcome for r in runs] == ["ok"]  # once, not once per missed run
    assert upcoming > datetime.now(UTC)


def test_two_schedulers_on_one_database_never_overlap(cheap, monkeypatch) -> None:
    settings, _ = cheap
    lock = threading.Lock()
    running = [0]
    overlaps = [0]

    def slow(store, settings, now):
        with lock:
            running[0] += 1
            overlaps[0] += running[0] > 1
        time.sleep(1.2)
        with lock:
            running[0] -= 1
        return "done"

    monkeypatch.setitem(JOBS, "slow", JobSpec(slow, "schedule_reindex", "test job"))
    stores = [Store.from_settings(settings) for _ in range(2)]
    schedulers = []
    for store in stores:
        trigger = IntervalTrigger(seconds=1, start_date=datetime.now(UTC) + timedelta(seconds=1))
        s = build_scheduler(settings, store=store, triggers={"slow": trigger})
        s.start()
        schedulers.append(s)

    def finished() -> int:
        return sum(r.outcome == "ok" for r in recent_job_runs(stores[0], 100, job="slow"))

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and finished() < 2:  # two runs, however slow the host
        time.sleep(0.1)
    for s in schedulers:
        s.shutdown(wait=True)
    runs = recent_job_runs(stores[0], 100, job="slow")
    for store in stores:
        store.close()
    done = sorted((r for r in runs if r.outcome == "ok"), key=lambda r: r.started)
    assert overlaps[0] == 0
    assert len(done) >= 2
    for a, b in zip(done, done[1:], strict=False):
        assert a.finished <= b.started  # one at a time across both schedulers


def test_cli_jobs_listing_and_run(cheap) -> None:
    runner = CliRunner()
    ran = runner.invoke(cli, ["jobs", "run", "reindex"], catch_exceptions=False)
    assert ran.exit_code == 0 and ran.output.startswith("reindex: ok")
    listed = runner.invoke(cli, ["jobs", "--json"], catch_exceptions=False)
    data = json.loads(listed.output)
    by_job = {j["job"]: j for j in data["jobs"]}
    assert by_job["digest"]["schedule"] == "0 7 * * mon" and by_job["digest"]["next_run"]
    assert by_job["reindex"]["last_outcome"] == "ok"
    assert data["runs"][0]["job"] == "reindex"
    text = runner.invoke(cli, ["jobs"], catch_exceptions=False).output
    assert "digest" in text and "0 7 * * mon" in text and "Recent runs" in text


def _ignore_ctrl_c() -> None:  # as a shell starts a background command (`cmd &`)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("sig", "started_ignoring_it"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["ctrl-c", "sigterm", "ctrl-c-to-a-background-command"],
)
def test_scheduler_command_stops_cleanly_even_when_asked_while_starting(
    cheap, tmp_path: Path, sig: signal.Signals, started_ignoring_it: bool
) -> None:
    settings, store = cheap
    env = {**os.environ, "VEILLE_DATA_DIR": str(settings.data_dir), "VEILLE_MODEL": "hash:64"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from jobs.cli import main; main()", "scheduler"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=str(Path(__file__).resolve().parents[1]),
        preexec_fn=_ignore_ctrl_c if started_ignoring_it else None,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "press Ctrl-C" in line:
            break
    # At once, while the scheduler is still starting: the signal waits for the start to
    # end (a Ctrl-C inside APScheduler's start could leave a lock taken and the stop hang).
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + out
    assert "Scheduler stopped." in out and "Traceback" not in out
    # It had started: its jobs are in the job store, for the next scheduler to take over.
    table = sa.Table(JOBSTORE_TABLE, sa.MetaData(), autoload_with=store.engine)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() > 0


@pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server not installed")
def test_leases_job_store_and_digest_claims_on_postgres(monkeypatch) -> None:
    """The same lock, job store and once-a-week guarantee on a real PostgreSQL server."""
    from core.subscribers import add_subscriber, claim_send, export_subscriber, remove_subscriber
    from index.taxonomy import load_taxonomy
    from jobs.digest_delivery import send_digests

    class Outbox:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, message) -> None:
            self.sent.append(message["To"])

        def close(self) -> None:
            pass

    with postgres_server() as url:
        monkeypatch.setenv("VEILLE_DATABASE_URL", url)
        monkeypatch.setenv("VEILLE_MODEL", "hash:64")
        monkeypatch.setenv("VEILLE_ALLOW_LOOPBACK_PUBLIC_URL", "true")
        settings = load_settings()
        store = Store.from_settings(settings)
        try:
            assert store.engine.dialect.name == "postgresql"
            assert acquire_lease(store, "arxiv", "A", ttl=60)
            assert not acquire_lease(store, "arxiv", "B", ttl=60)
            release_lease(store, "arxiv", "A")
            assert acquire_lease(store, "arxiv", "B", ttl=60)
            release_lease(store, "arxiv", "B")

            first = build_scheduler(settings, store=store)
            first.start(paused=True)
            before = {j.id: j.next_run_time for j in first.get_jobs()}
            first.shutdown()
            bare = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)})
            bare.start(paused=True)
            assert {j.id: j.next_run_time for j in bare.get_jobs()} == before
            bare.shutdown()

            now = datetime(2026, 3, 11, 10, tzinfo=UTC)
            taxonomy = load_taxonomy(settings)
            add_subscriber(
                store, "pg@example.com", sectors="legal", consent=True, taxonomy=taxonomy
            )
            outbox = Outbox()
            assert send_digests(store, settings, now=now, mailer=outbox).sent == ["pg@example.com"]
            again = send_digests(store, settings, now=now, mailer=outbox)
            assert again.already_sent == ["pg@example.com"] and outbox.sent == ["pg@example.com"]
            # a second claim of the same (address, week) is refused
            moment = now.replace(tzinfo=None) + timedelta(days=7)
            assert claim_send(store, "pg@example.com", "2026-W12", moment, 5) == (True, "new")
            assert claim_send(store, "pg@example.com", "2026-W12", moment, 5) == (False, "sending")
            assert len(export_subscriber(store, "pg@example.com")["digests"]) == 2
            assert remove_subscriber(store, "pg@example.com")
            assert run_job("reindex", settings, store=store, now=now).outcome == "ok"
        finally:
            store.close()


def _steal_lease(store: Store, job: str, thief: str) -> None:
    from jobs.runs import job_leases

    with store.write() as conn:
        conn.execute(job_leases.update().where(job_leases.c.job == job).values(owner=thief))


def test_a_job_that_loses_its_lease_is_stopped(cheap, monkeypatch) -> None:
    settings, store = cheap
    started, stopped = threading.Event(), threading.Event()

    def endless(store, settings, now):
        started.set()
        try:
            while True:  # never calls checkpoint(): stopped from outside
                stopped.wait(0.02)
        finally:
            stopped.set()

    monkeypatch.setitem(JOBS, "endless", JobSpec(endless, "schedule_reindex", "test job"))
    box = []
    runner = threading.Thread(
        target=lambda: box.append(run_job("endless", settings, store=store, lease_seconds=0.3))
    )
    runner.start()
    assert started.wait(30)
    _steal_lease(store, "endless", "other-host:1:1:thief")
    runner.join(30)
    assert not runner.is_alive() and stopped.is_set()  # the job itself stopped
    [run] = box
    assert run.outcome == "cancelled", run
    assert "lost its lease to other-host:1:1:thief and was stopped" in run.message
    assert lease_holder(store, "endless")[0] == "other-host:1:1:thief"  # not released by us


def test_a_job_past_its_deadline_is_stopped_and_its_child_killed(cheap, monkeypatch) -> None:
    from jobs.control import add_child, checkpoint

    monkeypatch.setenv("VEILLE_JOB_TIMEOUTS", '{"stuck": 0.5}')
    settings = load_settings()
    store = cheap[1]
    children: list[subprocess.Popen] = []

    def stuck(store, settings, now):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        children.append(child)
        add_child(child)
        pause = threading.Event()
        while True:  # a job that looks up between units of work
            checkpoint()
            pause.wait(0.05)

    monkeypatch.setitem(JOBS, "stuck", JobSpec(stuck, "schedule_reindex", "test job"))
    run = run_job("stuck", settings, store=store)
    try:
        assert run.outcome == "timeout", run
        assert "ran past its deadline of 0.5 s" in run.message and "job_timeouts" in run.message
        assert "1 child process killed" in run.message
        assert children[0].wait(30) is not None  # the child is gone
        assert lease_holder(store, "stuck") is None
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    with pytest.raises(ConfigError, match="job_timeouts"):
        load_settings(job_timeouts={"x": "soon"})


def test_runs_of_a_dead_holder_are_closed_at_start_with_the_reason(cheap) -> None:
    from jobs.runs import close_abandoned_runs, job_runs, record_start

    settings, store = cheap
    here = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process of this host that is gone
    now = datetime.now(UTC)
    later = now + timedelta(minutes=5)
    # 1. killed on this host, lease not yet expired; 2. another host, lease expired;
    # 3. another host, lease still renewed: alive, left alone
    assert acquire_lease(store, "arxiv", f"{here}:{dead.pid}:1:a", ttl=600, now=now)
    killed = record_start(store, "arxiv", f"{here}:{dead.pid}:1:a")
    assert acquire_lease(store, "news", "far:42:1:b", ttl=60, now=now - timedelta(hours=1))
    expired = record_start(store, "news", "far:42:1:b")
    assert acquire_lease(store, "reindex", "far:43:1:c", ttl=3600, now=now)
    alive = record_start(store, "reindex", "far:43:1:c")

    closed = close_abandoned_runs(store, now=later)
    assert sorted(r.id for r in closed) == [killed, expired]
    by_id = {r.id: r for r in recent_job_runs(store, 10)}
    assert by_id[killed].outcome == "abandoned" and by_id[killed].finished is not None
    assert f"its process ({dead.pid} on this host) stopped" in by_id[killed].message
    assert "stopped renewing the lease" in by_id[expired].message
    assert by_id[alive].outcome == "running"
    assert lease_holder(store, "arxiv") is None  # a dead local holder's lease is freed
    # the scheduler does this when it starts
    with store.write() as conn:
        conn.execute(
            job_runs.update().where(job_runs.c.id == alive).values(owner=f"{here}:{dead.pid}:1:c")
        )
    build_scheduler(settings, store=store)
    assert recent_job_runs(store, 1, job="reindex")[0].outcome == "abandoned"


def test_cli_run_exits_1_when_the_job_is_stopped_at_its_deadline(cheap, monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_JOB_TIMEOUTS", '{"reindex": 0.000001}')
    result = CliRunner().invoke(cli, ["jobs", "run", "reindex"])
    assert result.exit_code == 1, result.output
    assert "reindex: timeout - ran past its deadline" in result.output
    listing = CliRunner().invoke(cli, ["jobs"], catch_exceptions=False).output
    assert "reindex       timeout" in listing


def test_jobs_stored_by_the_previous_release_are_taken_over(cheap) -> None:
    """Before jobs/cron.py, the stored jobs called ``jobs.scheduler:run_scheduled``. A start
    replaces every Veille job, so none is left naming a function that moved."""
    settings, store = cheap
    first = build_scheduler(settings, store=store)
    first.start(paused=True)
    first.shutdown()
    table = sa.Table(JOBSTORE_TABLE, sa.MetaData(), autoload_with=store.engine)
    with store.write() as conn:
        for job_id, state in conn.execute(sa.select(table.c.id, table.c.job_state)).all():
            old = pickle.loads(state)
            old["func"] = "jobs.scheduler:run_scheduled"
            conn.execute(
                table.update().where(table.c.id == job_id).values(job_state=pickle.dumps(old))
            )

    second = build_scheduler(settings, store=store)
    second.start(paused=True)
    refs = {job.func_ref for job in second.get_jobs()}
    second.shutdown()
    assert refs == {"jobs.cron:run_scheduled"}

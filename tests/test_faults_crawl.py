"""Fault injection for crawling and indexing: kill -9 in the middle of a news crawl, an arXiv
crawl and a re-index job, then a restart; a disk that fills up under `veille index`; and a
soak of 50 scheduler job runs with faults injected all along.

Real child processes, real loopback servers (tests/loopback.py), real SQLite. No fixed sleep:
every wait polls a condition (the store, /proc, an event) with a bound. Each test prints one
``FIGURES {...}`` line; RELIABILITY.md ("Crawling and indexing") quotes them.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.markup import counted
from core.models import Document
from core.settings import load_settings
from core.store import Store, documents
from index.indexer import index_folder, read_manifest
from index.search import Searcher
from jobs.runner import run_job
from jobs.runs import recent_job_runs
from tests.conftest import leftover_processes, proc_stat, processes, sample_records
from tests.loopback import LoopbackServer, Request, Response
from tests.test_arxiv_crawl import BASE, FakeArxiv
from tests.test_news_crawl import HTML, RSS, article, rss_feed
from tests.test_news_reliability import STORY, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc").is_dir(), reason="/proc")]

VEILLE = str(Path(sys.executable).parent / "veille")


def figures(name: str, **values: object) -> None:
    print(f"FIGURES {json.dumps({'test': name, **values})}")  # noqa: T201 - the test's report


def alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    procs = processes()
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child, (_state, ppid, _start) in procs.items():
            if ppid == parent and child not in found:
                found.append(child)
                todo.append(child)
    return found


def kill_9(child: subprocess.Popen) -> list[int]:
    """kill -9 ``child``; wait until it and every process it had started are gone (they
    ask for SIGTERM when their parent dies: core.children). Returns those processes."""
    under = descendants(child.pid)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    wait_until(lambda: not any(alive(p) for p in under), timeout=60, what="the children to end")
    return under


def ids_and_urls(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(sa.select(documents.c.canonical_id, documents.c.url))
        ]


def running(store: Store) -> int:
    """Job runs and crawl runs still marked running."""
    jobs = [r for r in recent_job_runs(store, 1000) if r.outcome == "running"]
    crawls = [r for r in store.recent_runs(1000) if r.status == "running"]
    return len(jobs) + len(crawls)


def check_no_loss_no_duplicate(store: Store, before: list[tuple[str, str]]) -> dict:
    after = ids_and_urls(store)
    lost = len(set(before) - set(after))
    duplicated = (
        len(after) - len({cid for cid, _ in after}) + len(after) - len({u for _, u in after})
    )
    return {"lost": lost, "duplicated": duplicated, "left_running": running(store)}


@pytest.fixture
def env(monkeypatch, isolated_settings):
    monkeypatch.setenv("VEILLE_MODEL", "hash:64")
    monkeypatch.setenv("VEILLE_CRAWL_ALLOWED_NETWORKS", '["127.0.0.1/32"]')
    monkeypatch.setenv("VEILLE_NEWS_DEFAULT_SOURCES", "false")
    monkeypatch.setenv("VEILLE_NEWS_DOWNLOAD_DELAY", "0")
    monkeypatch.setenv("VEILLE_NEWS_CONCURRENCY_PER_DOMAIN", "8")
    monkeypatch.setenv("VEILLE_NEWS_TIMEOUT", "10")
    monkeypatch.setenv("VEILLE_NEWS_RETRY_TIMES", "1")
    monkeypatch.setenv("VEILLE_NEWS_STORE_EVERY", "0.1")
    monkeypatch.setenv("VEILLE_ARXIV_DELAY", "0")
    monkeypatch.setenv("VEILLE_ARXIV_BACKOFF", "0.01")
    monkeypatch.setenv("VEILLE_ARXIV_PAGE_SIZE", "5")
    monkeypatch.setenv("VEILLE_ARXIV_TIMEOUT", "10")
    monkeypatch.setenv("VEILLE_ARXIV_CATEGORIES", '["cs.LG"]')
    monkeypatch.setenv("VEILLE_ARXIV_INITIAL_DAYS", "36500")
    return isolated_settings


def veille(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [VEILLE, *args],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


# -- kill -9 mid-crawl, then restart ---------------------------------------------------------


def test_kill_9_during_a_news_crawl_job_then_restart(env, monkeypatch) -> None:
    release = threading.Event()

    def stuck(request: Request) -> Response:  # two pages that hang until after the kill
        release.wait(60)
        return Response(article(f"Late {request.path}. " + STORY), headers={"Content-Type": HTML})

    with LoopbackServer() as server:
        items = [(f"Story {i}", server.url(f"/s/{i}"), f"Summary {i}.") for i in range(12)]
        server.route("/feed.xml", Response(rss_feed(items), headers={"Content-Type": RSS}))
        for i in range(10):
            server.route(f"/s/{i}", Response(article(f"Story {i}. " + STORY), headers={}))
        server.route("/s/10", stuck)
        server.route("/s/11", stuck)
        monkeypatch.setenv(
            "VEILLE_NEWS_SOURCES",
            json.dumps([{"name": "Wire", "feed_url": server.url("/feed.xml")}]),
        )
        settings = load_settings()
        store = Store.from_settings(settings)
        job = veille("jobs", "run", "news")
        try:
            wait_until(lambda: store.count() == 10, what="10 items stored by the crawl")
            before = ids_and_urls(store)
            children = kill_9(job)
        finally:
            release.set()
            if job.poll() is None:
                job.kill()
                job.wait()
        killed = recent_job_runs(store, 1, job="news")[0]
        run = run_job("news", settings, store=store)  # the restart
    jobs = {r.id: r for r in recent_job_runs(store, 10, job="news")}
    assert jobs[killed.id].outcome == "abandoned", jobs[killed.id]
    assert f"its process ({job.pid} on this host) stopped" in jobs[killed.id].message
    assert run.outcome == "ok", run.message
    crawls = store.recent_runs(10, source="news:Wire")
    first = crawls[-1]  # the killed crawl: closed, with what it had stored and why
    assert first.status == "partial" and first.new >= 10, first
    assert "stopped" in first.last_error
    assert store.count() == 12
    result = check_no_loss_no_duplicate(store, before)
    assert result == {"lost": 0, "duplicated": 0, "left_running": 0}
    figures("news kill -9", faults=1, children_ended=len(children), stored_before=10, **result)
    store.close()


def test_kill_9_during_an_arxiv_crawl_job_then_restart(env, monkeypatch) -> None:
    fake = FakeArxiv(sample_records(25))
    stalled, release = threading.Event(), threading.Event()

    def gated(request: Request) -> Response:  # the third page hangs until after the kill
        if int(request.query["start"][0]) >= 10 and not release.is_set():
            stalled.set()
            release.wait(60)
        return fake(request)

    with LoopbackServer() as server:
        server.route("/api/query", gated)
        monkeypatch.setenv("VEILLE_ARXIV_API_URL", server.url("/api/query"))
        settings = load_settings()
        store = Store.from_settings(settings)
        job = veille("jobs", "run", "arxiv")
        try:
            assert stalled.wait(90), "the crawl never reached its third page"
            wait_until(lambda: store.count() == 10, what="two pages stored")
            before = ids_and_urls(store)
            kill_9(job)
        finally:
            release.set()
            if job.poll() is None:
                job.kill()
                job.wait()
        killed = recent_job_runs(store, 1, job="arxiv")[0]
        assert store.recent_runs(1, source="arxiv")[0].status == "running"  # as it was left
        run = run_job("arxiv", settings, store=store)  # the restart resumes at result 10
    assert run.outcome == "ok", run.message
    jobs = {r.id: r for r in recent_job_runs(store, 10, job="arxiv")}
    assert jobs[killed.id].outcome == "abandoned"
    first, second = store.recent_runs(2, source="arxiv")[::-1]
    assert (first.status, first.new, first.pages) == ("partial", 10, 2), first
    assert f"its process ({job.pid} on this host) died" in first.last_error
    assert (second.status, second.new) == ("ok", 15), second  # only what was left
    assert store.count() == 25
    result = check_no_loss_no_duplicate(store, before)
    assert result == {"lost": 0, "duplicated": 0, "left_running": 0}
    figures("arxiv kill -9", faults=1, stored_before=10, **result)
    store.close()


def _documents(n: int, *, start: int = 0) -> list[Document]:
    return [
        Document(canonical_id=r["id"], title=r["title"], text=r["abstract"], source="arxiv")
        for r in sample_records(n, start=start)
    ]


def _embedded(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("select count(*) from embeddings").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_during_a_reindex_job_then_restart(env, monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_EMBED_CHUNK", "1")  # one commit per text: many kill points
    settings = load_settings()
    store = Store.from_settings(settings)
    store.upsert(_documents(1500))
    job = veille("jobs", "run", "reindex")
    try:
        db = settings.data_dir / "veille.db"
        wait_until(lambda: _embedded(db) >= 20 or job.poll() is not None, what="embedding")
        assert job.poll() is None, "the job ended before it could be killed"
        kill_9(job)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    partial = _embedded(settings.data_dir / "veille.db")
    assert 20 <= partial < 1500
    killed = recent_job_runs(store, 1, job="reindex")[0]
    run = run_job("reindex", settings, store=store)
    assert run.outcome == "ok" and run.message.startswith(f"{1500 - partial} embedded"), run.message
    assert recent_job_runs(store, 5, job="reindex")[1].outcome == "abandoned"
    assert killed.outcome == "running"
    with store.engine.connect() as conn:
        rows, distinct = conn.execute(
            sa.text("select count(*), count(distinct content_hash || model) from embeddings")
        ).one()
    assert rows == distinct == 1500  # nothing embedded twice, nothing missing
    hit = Searcher.open(settings, store=store).search(_documents(1, start=700)[0].title, k=1)
    assert hit and hit[0].canonical_id == _documents(1, start=700)[0].canonical_id
    figures(
        "reindex kill -9",
        faults=1,
        embedded_before=partial,
        lost=0,
        duplicated=rows - distinct,
        left_running=running(store),
    )
    store.close()


# -- disk full -------------------------------------------------------------------------------


def test_a_disk_that_fills_up_under_veille_index(env, monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_MODEL", "hash:384")  # bigger vectors: the database must grow
    monkeypatch.setenv("VEILLE_EMBED_CHUNK", "50")  # committed 50 at a time
    settings = load_settings()
    store = Store.from_settings(settings)
    store.upsert(_documents(150))
    assert veille("index").wait(120) == 0
    store.upsert(_documents(450, start=150))
    db = settings.data_dir / "veille.db"
    # No file may grow past this: 256 KiB more than the largest (the WAL), less than the
    # 450 new vectors need, so the disk is "full" midway through the run.
    largest = max(p.stat().st_size for p in settings.data_dir.iterdir() if p.is_file())
    limit = largest + 256 * 1024

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    job = veille("index", preexec_fn=full_disk)
    out, _ = job.communicate(timeout=180)
    assert job.returncode == 1, out
    assert "Error: out of disk space, or over a file-size limit" in out, out
    assert "Traceback" not in out and out.count("\n") < 12, out  # one clear line, no wall

    # the store and the index in use are intact; what was embedded before is kept
    kept = _embedded(db) - 150
    assert store.count() == 600 and 0 < kept < 450, kept
    manifest = read_manifest(index_folder(settings, settings.model))
    assert manifest is not None and manifest.count == 150  # the previous index, whole
    # with space again, the next run carries on and completes
    again = veille("index")
    out, _ = again.communicate(timeout=180)
    assert again.returncode == 0, out
    assert f"Embedded {counted(450 - kept, 'new text')};" in out, out  # nothing embedded twice
    target = _documents(1, start=500)[0]
    hits = Searcher.open(settings, store=store).search(target.title, k=1)
    assert hits[0].canonical_id == target.canonical_id
    figures(
        "disk full under veille index",
        faults=1,
        limit_bytes=limit,
        embedded_and_kept_before_the_failure=kept,
        lost=0,
        search_ok=True,
    )
    store.close()


# -- soak ------------------------------------------------------------------------------------


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_files() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return sorted(found)


def _measure(started: set[tuple[int, int]], basetemp: str) -> dict[str, int]:
    return {
        "rss_mib": round(_rss_kib() / 1024),
        "fds": len(os.listdir("/proc/self/fd")),
        "processes": len(leftover_processes(started, basetemp)),
    }


CYCLES = 50
ROTATION = ("arxiv", "reindex", "news", "reindex", "matcher")


def test_soak_50_job_runs_with_faults(env, monkeypatch, tmp_path) -> None:
    faults = {"arxiv_http_500": 0, "news_http_500": 0, "database_locked": 0}
    counter = {"arxiv": 0, "news": 0}
    lock = threading.Lock()
    records = sample_records(60)
    fake = FakeArxiv(records[:10])
    cycle = {"n": 0}

    def every_third(kind: str, answer):
        def handler(request: Request) -> Response:
            with lock:
                counter[kind] += 1
                failing = counter[kind] % 3 == 0
                if failing:
                    faults[f"{kind}_http_500"] += 1
            return Response(b"overloaded", status=500) if failing else answer(request)

        return handler

    def feed(_request: Request) -> Response:  # ten items, two new ones each cycle
        n = cycle["n"]
        items = [(f"Story {i}", server.url(f"/s/{i}"), f"Summary {i}.") for i in range(n, n + 10)]
        return Response(rss_feed(items), headers={"Content-Type": RSS})

    def page(request: Request) -> Response:
        return Response(article(f"Story {request.path}. " + STORY), headers={"Content-Type": HTML})

    with LoopbackServer() as server:
        server.route("/api/query", every_third("arxiv", fake))
        server.route("/feed.xml", every_third("news", feed))
        for i in range(CYCLES + 12):
            server.route(f"/s/{i}", every_third("news", page))
        monkeypatch.setenv("VEILLE_ARXIV_API_URL", server.url("/api/query"))
        monkeypatch.setenv("VEILLE_ARXIV_MAX_RETRIES", "3")
        monkeypatch.setenv("VEILLE_DB_BUSY_TIMEOUT", "0.2")
        monkeypatch.setenv(
            "VEILLE_NEWS_SOURCES",
            json.dumps([{"name": "Wire", "feed_url": server.url("/feed.xml")}]),
        )
        settings = load_settings()
        store = Store.from_settings(settings)
        store.upsert(_documents(40, start=100))
        started = {(pid, s[2]) for pid, s in processes().items()}
        basetemp = f"{tmp_path.parent}/"
        outcomes: dict[str, int] = {}
        marks: dict[str, dict[str, int]] = {"first": _measure(started, basetemp)}
        holder: list[sqlite3.Connection] = []

        class ReleaseOnWait(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "database busy (try 1" in record.getMessage() and holder:
                    other = holder.pop()
                    other.rollback()
                    other.close()

        waiter = ReleaseOnWait()
        logging.getLogger("core.db").addHandler(waiter)
        try:
            for n in range(CYCLES):
                cycle["n"] = n
                name = ROTATION[n % len(ROTATION)]
                if name == "arxiv":  # five new papers a day on the fake arXiv
                    for i, rec in enumerate(records[10 + n : 15 + n]):
                        fake.records.append(rec)
                        fake.updated[rec["id"]] = BASE + timedelta(hours=n + i / 10)
                        fake.versions[rec["id"]] = 1
                if n % 10 == 7:  # another writer holds the database as the job starts
                    conn = sqlite3.connect(
                        settings.data_dir / "veille.db",
                        isolation_level=None,
                        check_same_thread=False,
                    )
                    conn.execute("BEGIN IMMEDIATE")
                    holder.append(conn)
                    faults["database_locked"] += 1
                run = run_job(name, settings, store=store)
                assert not holder, "the job never waited for the locked database"
                outcomes[run.outcome] = outcomes.get(run.outcome, 0) + 1
                if n == len(ROTATION) - 1:  # after one of each: modules loaded, caches warm
                    marks["start"] = _measure(started, basetemp)
                    files = {"start": open_files()}
                if n == CYCLES // 2 - 1:
                    marks["middle"] = _measure(started, basetemp)
        finally:
            logging.getLogger("core.db").removeHandler(waiter)
            for conn in holder:
                conn.rollback()
                conn.close()
        marks["end"] = _measure(started, basetemp)
        files["end"] = open_files()

    after = ids_and_urls(store)
    duplicated = len(after) - len({c for c, _ in after})
    left = running(store)
    figures(
        "soak",
        cycles=CYCLES,
        faults=faults,
        outcomes=outcomes,
        documents=len(after),
        duplicated=duplicated,
        left_running=left,
        **marks,
    )
    assert sum(outcomes.values()) == CYCLES and "running" not in outcomes
    assert outcomes.get("ok", 0) >= CYCLES * 0.8, outcomes  # faults are retried, not fatal
    assert duplicated == 0 and left == 0
    assert sum(faults.values()) >= 20, faults
    start, end = marks["start"], marks["end"]
    assert end["rss_mib"] - start["rss_mib"] <= 32, marks
    # SQLAlchemy's pool keeps up to 5 idle SQLite connections (a database and a WAL descriptor
    # each): it fills as jobs, their lease renewers and the tests' reads overlap, then stays.
    grown = sorted(set(files["end"]) ^ set(files["start"])) or files["end"]
    assert end["fds"] - start["fds"] <= 10, (marks, grown)
    assert end["fds"] - marks["middle"]["fds"] <= 2, (marks, grown)
    assert end["processes"] == 0, marks  # every crawl child ended
    store.close()

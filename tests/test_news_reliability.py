"""A news crawl that is stopped midway, dead hosts, and sources that fell silent."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from core.store import Store
from crawler.news_crawl import crawl_news
from crawler.news_health import source_alerts
from crawler.news_sources import FeedState, feed_states, save_feed_state
from jobs.cli import cli
from tests.loopback import LoopbackServer, Request, Response
from tests.test_news_crawl import HTML, NOW, RSS, article, rss_feed, run_for, use_sources

STORY = "A long enough article about graph neural networks for fraud detection. " * 8


def wait_until(condition, *, timeout: float = 60.0, what: str = "") -> None:
    """Wait for a condition another process brings about (checked every 50 ms, bounded)."""
    ready = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        ready.wait(0.05)


def crawl_child() -> multiprocessing.Process:
    children = [p for p in multiprocessing.active_children() if p.name == "veille-news-crawl"]
    assert len(children) == 1
    return children[0]


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_crawl_stopped_midway_keeps_what_it_read_and_records_a_partial_run(
    monkeypatch, store: Store, stop: str
) -> None:
    release = threading.Event()
    blocked = threading.Semaphore(0)

    def stuck(request: Request) -> Response:  # a page that never answers while we look
        blocked.release()
        release.wait(60)
        return Response(article(STORY), headers={"Content-Type": HTML})

    with LoopbackServer() as server:
        items = [(f"Story {i}", server.url(f"/s/{i}"), f"Summary {i}.") for i in range(12)]
        server.route("/feed.xml", Response(rss_feed(items), headers={"Content-Type": RSS}))
        for i in range(10):
            server.route(f"/s/{i}", Response(article(f"Story {i}. " + STORY), headers={}))
        server.route("/s/10", stuck)
        server.route("/s/11", stuck)
        settings = use_sources(
            monkeypatch,
            [{"name": "Wire", "feed_url": server.url("/feed.xml")}],
            news_store_every="0.1",
        )
        result: dict = {}
        crawler = threading.Thread(
            target=lambda: result.setdefault("report", crawl_news(store, settings, now=NOW))
        )
        try:
            crawler.start()
            wait_until(lambda: store.count() == 10, what="the 10 answered items to be stored")
            # the counts are recorded every news_store_every seconds, just after the items
            wait_until(
                lambda: store.recent_runs(1, source="news:Wire")[0].new == 10,
                what="the run's counts to be recorded",
            )
            run = store.recent_runs(1, source="news:Wire")[0]
            assert run.status == "running" and run.new == 10  # counts recorded on the way
            # SIGKILL: as hard a stop as there is. SIGTERM: what Ctrl-C or a scheduler
            # shutdown sends; Scrapy then stops gracefully and the child closes the runs.
            os.kill(crawl_child().pid, getattr(signal, stop))
            if stop == "SIGTERM":
                release.set()  # the pages in flight may end; nothing new is requested
            crawler.join(60)
        finally:
            release.set()
        assert not crawler.is_alive()

        run = run_for(result["report"], "Wire")
        assert (run.status, run.fetched) == ("partial", 12) and run.new >= 10
        assert "stopped" in run.last_error and "stored" in run.last_error
        state = feed_states(store)["Wire"]
        assert state.status == "partial" and state.last_crawl == NOW and state.etag == ""
        listing = CliRunner().invoke(cli, ["sources"]).output
        assert "Wire  [last crawl stopped midway" in listing and "not crawled yet" not in listing

        # The next crawl reads the two items left over, and only them.
        again = crawl_news(store, settings, now=NOW)
    assert run_for(again, "Wire").status == "ok" and again.new == 12 - run.new
    assert store.count() == 12
    assert feed_states(store)["Wire"].status == "ok"


def test_a_dead_host_is_reported_once_and_its_other_pages_are_skipped(monkeypatch, capfd) -> None:
    with LoopbackServer() as server:
        # Nothing listens on 127.0.0.2 (the server is bound to 127.0.0.1 only): every
        # connection there is refused, as with a site that is down.
        dead = [
            (f"Down {i}", f"http://127.0.0.2:{server.port}/d/{i}", f"Kept {i}.") for i in range(30)
        ]
        alive = [("Alive", server.url("/alive"), "Alive summary.")]
        server.route("/feed.xml", Response(rss_feed(dead + alive), headers={"Content-Type": RSS}))
        server.route("/alive", Response(article(STORY), headers={"Content-Type": HTML}))
        settings = use_sources(
            monkeypatch,
            [{"name": "Wire", "feed_url": server.url("/feed.xml")}],
            crawl_allowed_networks='["127.0.0.0/8"]',
            news_follow_hosts='["127.0.0.2"]',
        )
        capfd.readouterr()
        result = CliRunner().invoke(cli, ["crawl", "news", "--no-index"])
        console = result.output + "".join(capfd.readouterr())

    assert result.exit_code == 0, result.output
    host_lines = [line for line in console.splitlines() if line.strip().startswith("host ")]
    assert len(host_lines) == 1, console
    assert "host 127.0.0.2: not answering (connection refused)" in host_lines[0]
    skipped = re.search(r"; (\d+) (requests?) to it not made", host_lines[0])
    assert skipped and (skipped[2] == "request") == (skipped[1] == "1"), host_lines[0]
    assert "Traceback" not in console and "Gave up retrying" not in console
    log_file = settings.data_dir / "logs" / "news-crawl.log"
    assert f"Full log: {log_file}" in console
    assert "127.0.0.2" in log_file.read_text()

    store = Store.from_settings(settings)
    try:
        assert store.count() == 31
        for i in range(30):
            doc = store.resolve(f"http://127.0.0.2:{server.port}/d/{i}")
            assert doc.text == f"Kept {i}." and "page_host_unreachable" in doc.extra["flags"]
        assert store.resolve(server.url("/alive")).extra["text_from"] == "page"
    finally:
        store.close()


def test_a_news_job_that_reaches_no_source_is_an_error_not_ok(monkeypatch) -> None:
    from jobs.runner import run_job

    with LoopbackServer() as server:
        # Both feeds sit on 127.0.0.2, where nothing listens: every source fails.
        settings = use_sources(
            monkeypatch,
            [
                {"name": "Down A", "feed_url": f"http://127.0.0.2:{server.port}/a.xml"},
                {"name": "Down B", "feed_url": f"http://127.0.0.2:{server.port}/b.xml"},
            ],
            crawl_allowed_networks='["127.0.0.0/8"]',
        )
        store = Store.from_settings(settings)
        try:
            run = run_job("news", settings, store=store)
        finally:
            store.close()
    assert run.outcome == "error", run.message
    assert "every news source failed (2)" in run.message and "127.0.0.2" in run.message


# -- silent and failing sources -------------------------------------------------------------


def history(store: Store, name: str, crawls: list[tuple[datetime, str, int]]) -> None:
    """Record crawl runs of a news source (when, status, new items) and its feed state."""
    state = FeedState(name, feed_url=f"http://127.0.0.1:9/{name}.xml")
    for when, status, new in crawls:
        run_id = store.start_run(f"news:{name}", now=when)
        store.finish_run(run_id, status=status, now=when, new=new, last_error="HTTP 410 Gone")
        state.last_crawl, state.status = when, status
        if status == "error":
            state.failures += 1
            state.last_error = "source: feed: HTTP 410 Gone"
        else:
            state.failures, state.last_success, state.last_error = 0, when, ""
    save_feed_state(store, state)


def alert_history(store: Store, now: datetime) -> None:
    days = [now - timedelta(days=d) for d in (40, 30, 20, 10, 1)]
    history(store, "Quiet", [(d, "ok", n) for d, n in zip(days, (5, 7, 0, 0, 0), strict=True)])
    history(store, "Fresh", [(d, "ok", n) for d, n in zip(days, (5, 0, 0, 0, 2), strict=True)])
    history(store, "Once", [(days[0], "ok", 9), (days[-1], "ok", 0)])  # never usual
    history(store, "Broken", [(days[0], "ok", 4), *[(d, "error", 0) for d in days[2:]]])
    history(store, "Blip", [(days[0], "ok", 4), *[(d, "error", 0) for d in days[3:]]])


def alert_settings(monkeypatch):
    names = ["Quiet", "Fresh", "Once", "Broken", "Blip"]
    sources = [{"name": n, "feed_url": f"http://127.0.0.1:9/{n}.xml"} for n in names]
    return use_sources(monkeypatch, sources)


def test_silent_and_failing_sources_are_found_from_the_crawl_history(
    monkeypatch, store: Store
) -> None:
    now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    settings = alert_settings(monkeypatch)
    alert_history(store, now)
    alerts = source_alerts(store, settings, now=now)
    assert [(a.source, a.kind) for a in alerts] == [("Broken", "failing"), ("Quiet", "silent")]
    broken, quiet = alerts
    assert "failing for 3 crawls in a row (since 2026-05-12)" in broken.message
    assert "HTTP 410 Gone" in broken.message
    assert "no new item for 30 days (last on 2026-05-02)" in quiet.message
    assert quiet.since == now - timedelta(days=30)
    # A longer silence threshold, and a stricter failure count, change the verdicts.
    relaxed = settings.model_copy(update={"source_silence_days": 31, "source_failing_runs": 2})
    assert [(a.source, a.kind) for a in source_alerts(store, relaxed, now=now)] == [
        ("Blip", "failing"),
        ("Broken", "failing"),
    ]


def test_silent_sources_show_in_the_cli_and_on_the_sources_page(monkeypatch, store) -> None:
    from tests.test_dashboard import app_test, texts

    alert_settings(monkeypatch)
    alert_history(store, datetime.now(UTC))
    listing = CliRunner().invoke(cli, ["sources"]).output
    assert listing.startswith("2 sources need a look:")
    assert "  ! Quiet: no new item for 30 days" in listing
    assert "Quiet  [ok]  (SILENT)" in listing and "Broken  [FAILING" in listing
    rows = [
        json.loads(line)
        for line in CliRunner().invoke(cli, ["sources", "--json"]).output.splitlines()
    ]
    assert {r["name"]: r["alert"] for r in rows}["Quiet"] == "silent"

    at = app_test("sources")
    assert not at.exception
    shown = texts(at)
    assert "2 news sources need a look" in shown and "Quiet: no new item for 30 days" in shown
    # the last errors are also written out whole, not only in a table cell cut at its width
    assert any(e.label == "Last errors in full (5)" for e in at.expander)
    assert "**news:Broken**: HTTP 410 Gone" in shown

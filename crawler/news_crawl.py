"""Crawl the news sources: Scrapy in a child process, results in the store.

Twisted's reactor cannot be started twice in one process, so every crawl runs Scrapy in a
fresh child process (``multiprocessing`` with *spawn*): the CLI, the scheduler and the tests
can crawl again and again. The parent opens one crawl-run row per source before the child
starts (``news:<name>``), shows progress from the child's events, and closes any run the
child could not close (a crash, a kill) with the reason. The child stores items as it goes
and records its counts in the open runs, so a run stopped midway ends as "partial" with the
work it had done, not as if nothing had been read.

Example::

    report = crawl_news(store, settings)          # all enabled sources
    report = crawl_news(store, settings, source="OpenAI News")
    report.new, [r.status for r in report.runs]
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tqdm.auto import tqdm

from core.children import die_with_parent
from core.markup import counted
from core.models import CrawlRun
from core.settings import Settings
from core.store import Store
from crawler.news_sources import (
    FeedState,
    NewsSource,
    crawl_log_file,
    feed_states,
    save_feed_state,
    select_sources,
)

log = logging.getLogger(__name__)

RUN_PREFIX = "news:"


def run_name(source: str) -> str:
    """The crawl-run source of a news source, as `veille stats` and the health page show it."""
    return f"{RUN_PREFIX}{source}"


@dataclass(slots=True)
class DeadHost:
    """A host that did not answer during a crawl; its other pages were not requested."""

    host: str
    reason: str
    skipped: int = 0


@dataclass(slots=True)
class NewsCrawlReport:
    """One crawl over one or more sources."""

    runs: list[CrawlRun]
    states: dict[str, FeedState] = field(default_factory=dict)
    seconds: float = 0.0
    # Hosts that failed DNS or connections: why, and how many requests were then not made.
    dead_hosts: dict[str, DeadHost] = field(default_factory=dict)
    log_file: str = ""

    @property
    def new(self) -> int:
        return sum(r.new for r in self.runs)

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.runs)

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.runs)

    @property
    def failing(self) -> list[str]:
        return [name for name, s in self.states.items() if s.failing]

    @property
    def not_modified(self) -> list[str]:
        return [name for name, s in self.states.items() if s.status == "not_modified"]


def _scrapy_log_level() -> str:
    """The crawl log file gets INFO and above (DEBUG when the caller asked for it)."""
    level = logging.getLogger().getEffectiveLevel()
    return "DEBUG" if level <= logging.DEBUG else "INFO"


def crawl_news(
    store: Store,
    settings: Settings,
    *,
    source: str | None = None,
    show_progress: bool = False,
    now: datetime | None = None,
) -> NewsCrawlReport:
    """Crawl every enabled news source (or the one named) and store the new items.

    A source that fails (HTTP 404/410, malformed feed, redirect loop, ...) gets a run with
    status "error" and is marked failing; the others are crawled all the same. Indexing the
    new documents is left to the caller (the CLI does it unless --no-index).
    """
    started = time.perf_counter()
    sources = select_sources(store, settings, source)
    if not sources:
        raise ValueError(
            "no enabled news source: add one with `veille sources add NAME FEED_URL` "
            "or enable one with `veille sources enable NAME`"
        )
    crawl_time = (now or datetime.now(UTC)).astimezone(UTC)
    store.close_dead_runs()  # a crawl killed midway: its runs are closed, with the reason
    run_ids = {s.name: store.start_run(run_name(s.name), now=crawl_time) for s in sources}
    spec = {
        "settings": settings.model_dump(),
        "sources": [s.to_json() for s in sources],
        "states": {name: asdict(state) for name, state in feed_states(store).items()},
        "run_ids": run_ids,
        "crawl_time": crawl_time,
        "log_level": _scrapy_log_level(),
        "parent_pid": os.getpid(),
    }
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    child = context.Process(
        target=run_in_child, args=(spec, events), name="veille-news-crawl", daemon=True
    )
    hosts: dict[str, DeadHost] = {}
    with tqdm(
        desc="news", unit="item", total=0, disable=not show_progress, leave=show_progress
    ) as bar:
        child.start()
        interrupted = False
        try:
            while child.is_alive():
                _drain(events, bar, hosts, timeout=0.2)
            child.join()
            _drain(events, bar, hosts, timeout=0)
        except BaseException:  # Ctrl-C or a scheduler shutdown: stop the child, close the runs
            interrupted = True
            child.terminate()  # Scrapy stops gracefully on SIGTERM: it stores what it read
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join(5)
            raise
        finally:
            _close_open_runs(
                store, run_ids, child.exitcode, interrupted=interrupted, crawl_time=crawl_time
            )
    runs = []
    for name in run_ids:
        found = store.recent_runs(1, source=run_name(name))
        if found:
            runs.append(found[0])
    states = {n: s for n, s in feed_states(store).items() if n in run_ids}
    report = NewsCrawlReport(
        runs=runs,
        states=states,
        seconds=time.perf_counter() - started,
        dead_hosts=hosts,
        log_file=str(crawl_log_file(settings)),
    )
    log.info(
        "news crawl: %s, %d new, %d updated, failing: %s",
        counted(len(runs), "source"),
        report.new,
        report.updated,
        ", ".join(report.failing) or "none",
    )
    return report


def _close_open_runs(
    store: Store,
    run_ids: dict[str, int],
    exitcode: int | None,
    *,
    interrupted: bool,
    crawl_time: datetime,
) -> None:
    """Close the runs the child did not close (it crashed or was stopped), saying why.

    A run that had stored or read something ends as "partial" with its counts so far; one
    that had not started ends as an error.
    """
    if interrupted:
        reason = "news crawl interrupted"
    elif exitcode:
        reason = f"news crawler process stopped (exit code {exitcode}); see the log"
    else:
        reason = "news crawler process ended without closing this run; see the log"
    states = feed_states(store)
    for name, run_id in run_ids.items():
        last = store.recent_runs(1, source=run_name(name))
        if not (last and last[0].id == run_id and last[0].status == "running"):
            continue
        run = last[0]
        partial = bool(run.pages or run.fetched or run.new or run.updated)
        status = "partial" if partial else "error"
        why = f"{reason}; the items read before are stored" if partial else reason
        log.error("%s: %s", name, why)
        store.finish_run(
            run_id, status=status, errors=run.errors + (0 if partial else 1), last_error=why
        )
        state = states.get(name) or FeedState(name)
        state.last_crawl = crawl_time
        state.status, state.last_error = status, why
        state.new, state.updated = run.new, run.updated
        state.etag = state.last_modified = ""  # read the whole feed again next time
        state.failures += 0 if partial else 1
        save_feed_state(store, state)


def _drain(events: Any, bar: tqdm, hosts: dict[str, DeadHost], *, timeout: float) -> None:
    try:
        event = events.get(timeout=timeout) if timeout else events.get_nowait()
    except (queue.Empty, OSError, EOFError):
        return
    while True:
        kind, name, count = event
        if kind == "host_down":
            hosts.setdefault(name, DeadHost(name, str(count)))
        elif kind == "host_skipped":
            hosts.setdefault(name, DeadHost(name, "")).skipped = int(count)
        elif kind == "feed":
            bar.total = (bar.total or 0) + count
            bar.refresh()
        else:
            bar.update(count)
        if not kind.startswith("host_"):
            bar.set_postfix_str(name[:30], refresh=False)
        try:
            event = events.get_nowait()
        except (queue.Empty, OSError, EOFError):
            return


def run_in_child(spec: dict[str, Any], events: Any = None) -> None:
    """The child process: run the news spider over the given sources, then exit. It gets
    SIGTERM (Scrapy's graceful stop) if its parent dies, even by kill -9 (core.children)."""
    die_with_parent(spec.get("parent_pid"))
    from scrapy.crawler import CrawlerProcess

    from crawler.news_spider import NewsSpider, scrapy_settings

    settings = Settings(**spec["settings"])
    crawl_log_file(settings).parent.mkdir(parents=True, exist_ok=True)
    for handler in list(logging.root.handlers):  # inherited set-ups would repeat Scrapy's log
        logging.root.removeHandler(handler)
    # trafilatura logs an ERROR or a WARNING for every page it finds no article in; the spider
    # flags those pages itself (page_text_not_found), and news_extract logs a real failure.
    for chatty in ("trafilatura", "htmldate"):
        logging.getLogger(chatty).setLevel(logging.CRITICAL)
    process = CrawlerProcess(scrapy_settings(settings, log_level=spec["log_level"]))
    process.crawl(
        NewsSpider,
        sources=[NewsSource(**s) for s in spec["sources"]],
        states={name: FeedState(**s) for name, s in spec["states"].items()},
        run_ids=spec["run_ids"],
        crawl_time=spec["crawl_time"],
        events=events,
    )
    process.start()

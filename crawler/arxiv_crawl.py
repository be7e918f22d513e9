"""Incremental, resumable arXiv crawls into the store.

Each query (the configured categories as one query, plus each extra query in settings) is
read newest-updated first. A crawl stops at the query's *watermark* (the newest ``updated``
date stored by the last complete crawl), at ``--since`` for a backfill, or at ``--max``.
Every page is stored as soon as it is parsed, and the position reached is saved, so an
interrupted backfill resumes where it stopped and what was fetched is never lost.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from tqdm.auto import tqdm

from core.models import CrawlRun, as_utc
from core.settings import Settings
from core.store import Store
from crawler.arxiv_client import ArxivFetcher, ArxivFetchError, PageRequest
from crawler.arxiv_parse import MalformedPage, check_page, parse_page
from crawler.netguard import NetworkPolicy

log = logging.getLogger(__name__)

SOURCE = "arxiv"


@dataclass(slots=True)
class CrawlTimings:
    """Seconds spent in each stage (for benchmarks and the run log)."""

    fetch: float = 0.0
    parse: float = 0.0
    store: float = 0.0


@dataclass(slots=True)
class _Progress:
    pages: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    newest: datetime | None = None
    timings: CrawlTimings = field(default_factory=CrawlTimings)
    run_id: int = 0  # the crawl run, whose counts are recorded after each page


def category_query(categories: list[str]) -> str:
    """``cat:cs.LG OR cat:cs.CV ...`` for the configured categories."""
    return " OR ".join(f"cat:{c}" for c in categories)


def configured_queries(settings: Settings) -> list[str]:
    queries = []
    if settings.arxiv_categories:
        queries.append(category_query(settings.arxiv_categories))
    queries.extend(q for q in settings.arxiv_queries if q.strip())
    if not queries:
        raise ValueError("no arXiv query configured: set arxiv_categories or arxiv_queries")
    return queries


def _key(kind: str, query: str) -> str:
    return f"arxiv:{kind}:{query}"


def watermark(store: Store, query: str) -> datetime | None:
    value = store.get_meta(_key("watermark", query))
    return as_utc(value) if value else None


def _validate(first_page: bool):
    def check(body: bytes) -> None:
        check_page(body)
        if not first_page and b"<entry" not in body:
            raise MalformedPage("empty page in the middle of the results")

    return check


def _crawl_query(
    store: Store,
    settings: Settings,
    fetcher: ArxivFetcher,
    query: str,
    *,
    since: datetime | None,
    limit: int | None,
    progress: _Progress,
    bar: tqdm,
    now: datetime,
) -> None:
    mark = watermark(store, query)
    stop_at = since or mark
    if stop_at is None:
        stop_at = now - timedelta(days=settings.arxiv_initial_days)
    resume_key = _key("resume", f"{query}|{stop_at.isoformat()}")
    start = int(store.get_meta(resume_key) or 0)
    if start:
        log.info("resuming %r at result %d", query, start)
    newest = mark
    taken = 0
    while True:
        size = settings.arxiv_page_size
        if limit is not None:
            size = min(size, limit - taken)
            if size <= 0:
                break
        request = PageRequest(query, start, size)
        t0 = time.perf_counter()
        body = fetcher.fetch(request, validate=_validate(first_page=start == 0))
        t1 = time.perf_counter()
        page = parse_page(body)
        t2 = time.perf_counter()
        progress.timings.fetch += t1 - t0
        progress.timings.parse += t2 - t1
        progress.pages += 1
        fresh = []
        reached_end = False
        for doc, updated in zip(page.documents, page.updated, strict=True):
            if updated < stop_at:
                reached_end = True
                break
            fresh.append(doc)
            if newest is None or updated > newest:
                newest = updated
        fresh = fresh[: None if limit is None else limit - taken]
        if fresh:
            t3 = time.perf_counter()
            result = store.upsert(fresh)
            progress.timings.store += time.perf_counter() - t3
            progress.new += result.new
            progress.updated += result.updated
            progress.skipped += result.unchanged + result.duplicates
        progress.fetched += len(fresh)
        taken += len(fresh)
        start += len(page.documents)
        store.set_meta(resume_key, str(start))
        if progress.run_id:  # a crawl killed now still shows what it stored
            store.progress_run(
                progress.run_id,
                pages=progress.pages,
                fetched=progress.fetched,
                new=progress.new,
                updated=progress.updated,
            )
        bar.update(len(fresh))
        bar.set_postfix(
            pages=progress.pages,
            new=progress.new,
            updated=progress.updated,
            skipped=progress.skipped,
        )
        done = (
            reached_end
            or not page.documents
            or start >= page.total_results
            or (limit is not None and taken >= limit)
        )
        if done:
            break
    # The query is complete: later runs start from the newest date seen.
    if newest is not None and (mark is None or newest > mark):
        store.set_meta(_key("watermark", query), newest.isoformat())
    store.set_meta(resume_key, "0")
    if progress.newest is None or (newest and newest > progress.newest):
        progress.newest = newest


def crawl_arxiv(
    store: Store,
    settings: Settings,
    *,
    since: date | None = None,
    max_results: int | None = None,
    show_progress: bool = False,
    now: datetime | None = None,
) -> CrawlRun:
    """Fetch what is new on arXiv for the configured queries and store it.

    ``since`` overrides the stored watermarks (a backfill); ``max_results`` caps the number
    of papers per query; ``now`` (default: the clock) dates the run and, on a first crawl,
    the start of the ``arxiv_initial_days`` window. Returns this crawl's own run record (also
    written to the store), even when other crawls run at the same time. Any exception, after
    the last retry for network errors, closes the run as "error" with its message and is
    re-raised.
    """
    if max_results is not None and max_results < 1:
        raise ValueError(f"--max must be at least 1, not {max_results}")
    # Without ``now`` the run is timed by the clock, start and finish apart.
    window_end = as_utc(now) if now else datetime.now(UTC)
    since_dt = as_utc(since) if since else None
    store.close_dead_runs(now=now)  # a crawl killed midway: its run is closed, with the reason
    run_id = store.start_run(SOURCE, now=now)
    progress = _Progress(run_id=run_id)
    fetcher = ArxivFetcher(
        settings.arxiv_api_url,
        user_agent=settings.user_agent,
        delay=settings.arxiv_delay,
        timeout=settings.arxiv_timeout,
        max_retries=settings.arxiv_max_retries,
        backoff=settings.arxiv_backoff,
        policy=NetworkPolicy.from_settings(settings),
        max_bytes=settings.arxiv_max_bytes,
    )
    status, error = "ok", ""
    try:
        with tqdm(desc="arXiv", unit="paper", disable=not show_progress) as bar:
            for query in configured_queries(settings):
                _crawl_query(
                    store,
                    settings,
                    fetcher,
                    query,
                    since=since_dt,
                    limit=max_results,
                    progress=progress,
                    bar=bar,
                    now=window_end,
                )
    except (ArxivFetchError, MalformedPage) as exc:
        status, error = "error", str(exc)
        exc.run_id = run_id  # the caller reports this crawl's own run, not the latest one
        raise
    except BaseException as exc:  # a bug, a store error, Ctrl-C: never recorded as "ok"
        status, error = "error", f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)
        raise
    finally:
        fetcher.close()
        store.finish_run(
            run_id,
            status=status,
            now=now,
            pages=progress.pages,
            fetched=progress.fetched,
            new=progress.new,
            updated=progress.updated,
            errors=1 if error else 0,
            last_error=error,
        )
        store.set_meta(
            "arxiv:last_timings",
            json.dumps(
                {k: round(getattr(progress.timings, k), 3) for k in ("fetch", "parse", "store")}
            ),
        )
    run = store.get_run(run_id)
    log.info("arXiv crawl: %s", run)
    return run

"""The news spider: one conditional request per feed, then the article pages it may follow.

Politeness is Scrapy's (robots.txt, AutoThrottle, per-domain concurrency, retries on 5xx,
timeouts, a size cap), configured in one place, :func:`scrapy_settings`. The spider keeps
one :class:`SourceOutcome` per source; the store pipeline writes them when the crawl ends.
Items already stored are not fetched again: an article's page is read once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from core.settings import Settings
from core.store import Store
from crawler.netguard import NetworkPolicy, RefusedDestination, UnresolvableHost, parse_networks
from crawler.news_extract import extract_article
from crawler.news_feed import FeedError, parse_feed
from crawler.news_guard import (
    HostDown,
    HostGate,
    RefusedRequest,
    is_dead_host_error,
    resolver_setting,
)
from crawler.news_items import NewsItem
from crawler.news_sources import FeedState, NewsSource, crawl_log_file

log = logging.getLogger(__name__)

ACCEPT_FEED = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)
ACCEPT_PAGE = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
# Page failures that may pass: the item is stored with its feed summary and its page is
# tried again on the next crawls, at most PAGE_ATTEMPTS times in all.
TRANSIENT_PAGE_FLAGS = frozenset(
    {"page_timeout", "page_error", "page_http_429", "page_http_500", "page_http_502"}
    | {"page_host_unreachable"}
    | {"page_http_503", "page_http_504", "page_http_522", "page_http_524"}
)
PAGE_ATTEMPTS = 3


@dataclass(slots=True)
class SourceOutcome:
    """What happened to one source during a crawl."""

    name: str
    run_id: int
    feed_url: str
    status: str = "ok"  # ok | not_modified | error
    error: str = ""
    pages: int = 0  # HTTP responses read (feed and article pages)
    entries: int = 0  # items in the feed
    known: int = 0  # items already stored, skipped
    items: int = 0  # items handed to the pipeline
    new: int = 0
    updated: int = 0
    duplicates: int = 0  # exact copies and near-identical syndicated texts
    page_errors: int = 0
    last_page_error: str = ""
    refused: int = 0  # item links to forbidden destinations, not stored
    etag: str = ""
    last_modified: str = ""
    warnings: list[str] = field(default_factory=list)


def scrapy_settings(settings: Settings, *, log_level: str = "INFO") -> dict[str, Any]:
    """The Scrapy settings of a news crawl, all taken from Veille's settings.

    Scrapy logs to :func:`crawl_log_file`, not to the console: a person sees the crawl's
    summary (one line per source, one per dead host), the log file keeps every detail.
    """
    values: dict[str, Any] = {
        "BOT_NAME": "veille",
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": True,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": settings.news_download_delay,
        "AUTOTHROTTLE_MAX_DELAY": max(60.0, settings.news_download_delay),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(settings.news_concurrency_per_domain),
        "DOWNLOAD_DELAY": settings.news_download_delay,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.news_concurrency_per_domain,
        "DOWNLOAD_TIMEOUT": settings.news_timeout,
        "DNS_TIMEOUT": min(settings.news_timeout, 30),
        "DOWNLOAD_MAXSIZE": settings.news_max_page_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": settings.news_retry_times,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "REDIRECT_MAX_TIMES": 5,
        "METAREFRESH_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": log_level,
        "LOG_FILE": str(crawl_log_file(settings)),
        "LOG_FILE_APPEND": False,
        "ITEM_PIPELINES": {"crawler.news_pipeline.StorePipeline": 300},
        # Before robots.txt (100) and redirects (600): every request and every hop is checked.
        # DeadHostWatch sits next to the downloader, so it sees a failure before retries do.
        "DOWNLOADER_MIDDLEWARES": {
            "crawler.news_guard.DestinationGuard": 50,
            "crawler.news_guard.DeadHostWatch": 590,
        },
        "HTTPCACHE_ENABLED": settings.news_http_cache,
        "HTTPCACHE_DIR": str(settings.data_dir / "http-cache"),
        "HTTPCACHE_IGNORE_HTTP_CODES": [304, 500, 502, 503, 504],
        # What the pipeline needs, in the Scrapy settings object (the documented way).
        resolver_setting(): "crawler.news_guard.GuardedResolver",
        "VEILLE_DATABASE_URL": settings.sqlalchemy_url,
        "VEILLE_MAX_TEXT_CHARS": settings.max_text_chars,
        "VEILLE_ALLOWED_NETWORKS": list(settings.crawl_allowed_networks),
        "VEILLE_FOLLOW_HOSTS": list(settings.news_follow_hosts),
        "VEILLE_STORE_EVERY": settings.news_store_every,
    }
    return values


def describe_failure(failure: Failure) -> str:
    """A short reason for a failed request, for a person reading `veille sources`."""
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        try:
            return f"HTTP {status} {HTTPStatus(status).phrase}"
        except ValueError:
            return f"HTTP {status}"
    if isinstance(exc, RefusedRequest | HostDown | RefusedDestination):
        return str(exc)
    if isinstance(exc, IgnoreRequest):
        text = str(exc)
        if "robots" in text:
            return "forbidden by robots.txt"
        if "redirection" in text:
            return "too many redirects (a redirect loop?)"
        return text or "request dropped"
    name = type(exc).__name__
    if "Timeout" in name or "TimedOut" in name:
        return f"timed out ({exc})" if str(exc) else "timed out"
    if "Cancelled" in name:  # Scrapy cancels a download only when it passes the size cap
        return f"larger than the size cap ({exc})" if str(exc) else "larger than the size cap"
    if "DNS" in name or "Resolve" in name:
        return f"host not found ({exc})"
    if "ConnectionRefused" in name:
        return "connection refused"
    return f"{name}: {exc}" if str(exc) else name


def _page_flag(failure: Failure) -> str:
    exc = failure.value
    if isinstance(exc, HttpError):
        return f"page_http_{exc.response.status}"
    if isinstance(exc, RefusedRequest | RefusedDestination):
        return "page_refused"
    if isinstance(exc, HostDown) or is_dead_host_error(exc):
        return "page_host_unreachable"
    if isinstance(exc, IgnoreRequest):
        if "robots" in str(exc):
            return "page_disallowed_by_robots"
        if "redirection" in str(exc):
            return "page_redirect_loop"
        return "page_skipped"
    name = type(exc).__name__
    if "Cancelled" in name:
        return "page_too_large"
    if "Timeout" in name or "TimedOut" in name:
        return "page_timeout"
    return "page_error"


class NewsSpider(scrapy.Spider):
    """Feeds of the given sources; article pages for sources that allow it."""

    name = "news"

    def __init__(
        self,
        *,
        sources: list[NewsSource],
        states: dict[str, FeedState],
        run_ids: dict[str, int],
        crawl_time: datetime,
        events: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sources = {s.name: s for s in sources}
        self.states = states
        self.crawl_time = crawl_time
        self.events = events
        self.outcomes = {
            s.name: SourceOutcome(s.name, run_ids[s.name], s.feed_url) for s in sources
        }
        self._claimed: set[str] = set()  # canonical ids taken by a source in this crawl
        self.timings = {"feeds": 0.0, "pages": 0.0, "store": 0.0}  # CPU-side seconds
        self._store: Store | None = None
        self._gate: HostGate | None = None

    # -- helpers ------------------------------------------------------------------------

    @property
    def gate(self) -> HostGate:
        """Per-crawl destination checks and dead hosts, shared with the DestinationGuard."""
        if self._gate is None:
            networks = parse_networks(self.settings.getlist("VEILLE_ALLOWED_NETWORKS"))
            self._gate = HostGate(NetworkPolicy(networks))
        return self._gate

    async def _refusal(self, link: str) -> str:
        """Why an item link must not be stored or fetched, or ''."""
        try:
            await self.gate.check(link)
        except RefusedDestination as exc:
            return str(exc)
        except UnresolvableHost:
            return ""  # a public name that does not resolve now: kept, its page is skipped
        return ""

    def _db(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.get("VEILLE_DATABASE_URL"))
        return self._store

    def _known(self, canonical_ids: list[str]) -> dict[str, int]:
        """Which of these are stored already (as documents or recorded duplicates).

        The value is the number of times the article page was tried when the last try failed
        for a reason that may pass (timeout, 5xx): such an item is crawled again, up to
        :data:`PAGE_ATTEMPTS` times. Otherwise it is 0.
        """
        store = self._db()
        found: dict[str, int] = {}
        for canonical_id, stored in store.stored(canonical_ids).items():
            flags = set(stored.extra.get("flags") or [])
            tries = int(stored.extra.get("page_attempts") or 0)
            found[canonical_id] = tries if flags & TRANSIENT_PAGE_FLAGS else 0
        found.update((canonical_id, 0) for canonical_id in store.recorded_duplicates(canonical_ids))
        return found

    def _emit(self, *event: Any) -> None:
        if self.events is not None:
            try:
                self.events.put_nowait(event)
            except Exception:  # noqa: BLE001 - progress must never break a crawl
                pass

    def closed(self, reason: str) -> None:
        if self._gate is not None:
            for host in self._gate.dead:
                self._emit("host_skipped", host, self._gate.skipped.get(host, 0))
        if self._store is not None:
            self._store.close()

    # -- requests -----------------------------------------------------------------------

    def start_requests(self) -> Iterator[scrapy.Request]:
        for source in self.sources.values():
            headers = {"Accept": ACCEPT_FEED}
            state = self.states.get(source.name)
            if state is not None and state.feed_url == source.feed_url:
                if state.etag:
                    headers["If-None-Match"] = state.etag
                if state.last_modified:
                    headers["If-Modified-Since"] = state.last_modified
            yield scrapy.Request(
                source.feed_url,
                headers=headers,
                callback=self.parse_feed,
                errback=self.feed_failed,
                dont_filter=True,
                meta={"source": source.name, "handle_httpstatus_list": [304]},
            )

    async def start(self):  # Scrapy >= 2.13
        for request in self.start_requests():
            yield request

    # -- feeds --------------------------------------------------------------------------

    async def parse_feed(self, response: Response) -> AsyncIterator[Any]:
        source = self.sources[response.meta["source"]]
        outcome = self.outcomes[source.name]
        outcome.pages += 1
        if response.status == 304:
            outcome.status = "not_modified"
            state = self.states.get(source.name)
            if state is not None:
                outcome.etag, outcome.last_modified = state.etag, state.last_modified
            log.info("%s: feed not modified", source.name)
            return
        outcome.etag = (response.headers.get("ETag") or b"").decode("latin-1")
        outcome.last_modified = (response.headers.get("Last-Modified") or b"").decode("latin-1")
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        started = time.perf_counter()
        try:
            feed = parse_feed(
                response.body,
                source=source.name,
                now=self.crawl_time,
                url=response.url,
                content_type=content_type,
                drop_authors=source.drop_authors,
            )
        except FeedError as exc:
            outcome.status, outcome.error = "error", str(exc)
            outcome.etag = outcome.last_modified = ""  # never 304 a broken feed
            log.warning("%s", exc)
            return
        finally:
            self.timings["feeds"] += time.perf_counter() - started
        outcome.warnings.extend(feed.warnings)
        outcome.entries = len(feed.entries)
        self._emit("feed", source.name, len(feed.entries))
        known = self._known([e.canonical for e in feed.entries])
        language = source.language or feed.language
        also = self.settings.getlist("VEILLE_FOLLOW_HOSTS")
        for entry in feed.entries:
            tries = known.get(entry.canonical, 0)
            follows = source.follows(entry.link, also_hosts=also)
            retry = 0 < tries < PAGE_ATTEMPTS and follows
            if (entry.canonical in known and not retry) or entry.canonical in self._claimed:
                outcome.known += 1
                self._emit("skip", source.name, 1)
                continue
            refusal = await self._refusal(entry.link)
            if refusal:  # never stored, shown or mailed: it points inside our network
                outcome.refused += 1
                outcome.page_errors += 1
                outcome.last_page_error = f"item link not stored, {refusal} ({entry.link})"
                log.warning("%s: item link not stored, %s (%s)", source.name, refusal, entry.link)
                self._emit("skip", source.name, 1)
                continue
            self._claimed.add(entry.canonical)
            item = NewsItem(source=source.name, entry=entry, source_language=language)
            if follows:
                item.page_attempts = tries + 1
                yield scrapy.Request(
                    entry.link,
                    headers={"Accept": ACCEPT_PAGE},
                    callback=self.parse_page,
                    errback=self.page_failed,
                    meta={"item": item},
                    priority=-1,
                    # Our own claim set dedupes pages; Scrapy's filter would silently drop
                    # a page redirecting to itself, with its item.
                    dont_filter=True,
                )
            else:
                outcome.items += 1
                yield item

    def feed_failed(self, failure: Failure) -> None:
        request = failure.request
        source = request.meta["source"]
        outcome = self.outcomes[source]
        if isinstance(failure.value, HttpError):
            outcome.pages += 1
        outcome.status = "error"
        outcome.error = f"source {source!r}: feed {request.url}: {describe_failure(failure)}"
        outcome.etag = outcome.last_modified = ""
        log.warning("%s", outcome.error)

    # -- article pages ------------------------------------------------------------------

    def parse_page(self, response: Response) -> Iterator[NewsItem]:
        item: NewsItem = response.meta["item"]
        outcome = self.outcomes[item.source]
        outcome.pages += 1
        item.page_url = response.url
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
        if not isinstance(response, TextResponse) or (content_type and "html" not in content_type):
            item.flags.append("page_not_html")
        else:
            started = time.perf_counter()
            article = extract_article(response.text)
            self.timings["pages"] += time.perf_counter() - started
            item.page_title = article.title
            item.page_authors = article.authors
            item.page_published = article.published
            item.page_language = article.language
            item.page_language_from = article.language_from
            if len(article.text) >= 200:
                item.page_text = article.text
            else:
                item.flags.append("page_text_not_found")
        outcome.items += 1
        yield item

    def page_failed(self, failure: Failure) -> Iterator[NewsItem]:
        item: NewsItem = failure.request.meta["item"]
        outcome = self.outcomes[item.source]
        flag = _page_flag(failure)
        item.flags.append(flag)
        if isinstance(failure.value, HttpError):
            outcome.pages += 1
        if flag != "page_disallowed_by_robots":
            outcome.page_errors += 1
            outcome.last_page_error = f"page {failure.request.url}: {describe_failure(failure)}"
        if flag == "page_refused":
            log.warning("%s: page not read, %s", item.source, failure.value)
        outcome.items += 1
        yield item

"""The item pipeline: news items -> Documents in the store, in batches, with duplicates caught.

Built with ``from_crawler`` and configured through the Scrapy settings object
(``VEILLE_DATABASE_URL``, ``VEILLE_MAX_TEXT_CHARS``, ``VEILLE_STORE_EVERY``). When the spider
closes, it writes each source's crawl-run row and feed state (validators, status, error) from
the spider's outcomes.

Items are stored as the crawl goes, not at its end: every :data:`BATCH` items and every
``VEILLE_STORE_EVERY`` seconds, and each write also records the runs' counts so far. A crawl
that is stopped midway (Ctrl-C, a killed process) keeps what it had read, and its runs end as
"partial" rather than as if nothing had happened.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from core.markup import counted
from core.models import Document
from core.store import Store
from crawler.news_dedup import NearDuplicateIndex
from crawler.news_items import NewsItem, to_document
from crawler.news_sources import FeedState, feed_states, save_feed_state
from crawler.news_spider import NewsSpider

log = logging.getLogger(__name__)

BATCH = 50
STOPPED_MIDWAY = "crawl stopped midway: the items read so far are stored, the rest next time"


class StorePipeline:
    """Stores news items; one instance per crawl (per child process)."""

    def __init__(self, crawler: Any, database_url: str, max_chars: int, every: float = 5.0) -> None:
        self.crawler = crawler
        self.store = Store(database_url)
        self.max_chars = max_chars
        self.every = every
        self.buffer: list[NewsItem] = []
        self.near: NearDuplicateIndex | None = None
        self._timer: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(
            crawler,
            crawler.settings.get("VEILLE_DATABASE_URL"),
            crawler.settings.getint("VEILLE_MAX_TEXT_CHARS", 200_000),
            crawler.settings.getfloat("VEILLE_STORE_EVERY", 5.0),
        )

    @property
    def spider(self) -> NewsSpider:
        return self.crawler.spider

    def open_spider(self, spider: Any = None) -> None:
        from twisted.internet import task

        self.near = NearDuplicateIndex(self.store)
        self._timer = task.LoopingCall(self._tick)
        self._timer.start(self.every, now=False)

    def _tick(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - the timer must keep running
            log.exception("storing the news items read so far failed")

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, NewsItem):
            self.buffer.append(item)
            if len(self.buffer) >= BATCH:
                self.flush()
        return item

    def flush(self) -> None:
        """Store the buffered items; a failure is the error of the sources concerned."""
        batch, self.buffer = self.buffer, []
        if not batch:
            return
        started = time.perf_counter()
        try:
            self._store_batch(batch)
        except Exception as exc:  # noqa: BLE001 - reported per source, the crawl goes on
            log.exception("storing %s failed", counted(len(batch), "news item"))
            for name in {item.source for item in batch}:
                outcome = self.spider.outcomes[name]
                outcome.status = "error"
                outcome.error = f"source {name!r}: storing items failed: {exc}"
        finally:
            self.spider.timings["store"] += time.perf_counter() - started
        try:
            self._record_progress({item.source for item in batch})
        except Exception:  # noqa: BLE001 - counts are written again at the end of the crawl
            log.exception("recording the crawl's progress failed")

    def _record_progress(self, names: set[str]) -> None:
        """The runs' counts so far, so that a crawl stopped now still shows its work."""
        for name in sorted(names):
            outcome = self.spider.outcomes[name]
            self.store.progress_run(
                outcome.run_id,
                pages=outcome.pages,
                fetched=outcome.entries,
                new=outcome.new,
                updated=outcome.updated,
                errors=outcome.page_errors + (1 if outcome.status == "error" else 0),
                last_error=outcome.error or outcome.last_page_error,
            )

    def _store_batch(self, batch: list[NewsItem]) -> None:
        """Near-duplicates recorded, the rest upserted, counts kept per source."""
        spider = self.spider
        near = self.near
        assert near is not None
        fresh: list[Document] = []
        repeats: list[tuple[Document, int, float]] = []  # near-duplicates and their original
        existing = {
            canonical_id: stored.content_hash
            for canonical_id, stored in self.store.stored(
                [item.entry.canonical for item in batch]
            ).items()
        }
        for item in batch:
            doc = to_document(item, first_seen=spider.crawl_time, max_chars=self.max_chars)
            # A stored item whose page is read again stays itself, whatever it resembles.
            match = None if doc.canonical_id in existing else near.find(doc.text)
            if match is not None:
                repeats.append((doc, match.original_id, match.similarity))
                spider.outcomes[item.source].duplicates += 1
                continue
            fresh.append(doc)
            near.add(-len(fresh), doc.text)  # provisional key: later items see it too
        result = self.store.upsert(fresh)
        for doc, original, similarity in repeats:
            if original < 0:  # a document of this batch: now it has a row id
                original = fresh[-original - 1].id or 0
            self.store.record_duplicate(
                canonical_id=doc.canonical_id,
                url=doc.url,
                source=doc.source,
                content_hash=doc.content_hash,
                original_id=original,
            )
            log.info(
                "%s: %s repeats document %d (shingle similarity %.2f)",
                doc.source,
                doc.url,
                original,
                similarity,
            )
        changed = set(result.ids)
        final: dict[int, int | None] = {}
        for position, doc in enumerate(fresh, start=1):
            outcome = spider.outcomes[doc.source]
            stored = doc.id is not None and doc.id in changed
            if doc.canonical_id in existing:  # a page read again after a failure
                outcome.updated += int(existing[doc.canonical_id] != doc.content_hash)
            elif stored:
                outcome.new += 1
            else:
                outcome.duplicates += 1  # same title and text as a stored document
            final[-position] = doc.id if stored else None
        near.rekey(final)
        near.save()
        counts: dict[str, int] = {}
        for item in batch:
            counts[item.source] = counts.get(item.source, 0) + 1
        for source, n in counts.items():
            spider._emit("stored", source, n)

    def close_spider(self, spider: Any = None) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        # A crawl stopped on request (SIGTERM, Ctrl-C) is no longer "crawling" when it closes.
        stopped = not getattr(self.crawler, "crawling", True)
        try:
            self.flush()
        finally:
            self._finish_runs(stopped=stopped)
            self.store.close()

    def _finish_runs(self, *, stopped: bool = False) -> None:
        spider = self.spider
        timings = {k: round(v, 3) for k, v in spider.timings.items()}
        self.store.set_meta("news:last_timings", json.dumps(timings))
        states = feed_states(self.store)
        for outcome in spider.outcomes.values():
            if stopped and outcome.status == "ok":
                outcome.status = "partial"
                outcome.error = STOPPED_MIDWAY
            errors = outcome.page_errors + (1 if outcome.status == "error" else 0)
            last_error = outcome.error or outcome.last_page_error
            self.store.finish_run(
                outcome.run_id,
                status=outcome.status if outcome.status in ("error", "partial") else "ok",
                pages=outcome.pages,
                fetched=outcome.entries,
                new=outcome.new,
                updated=outcome.updated,
                errors=errors,
                last_error=last_error,
            )
            state = states.get(outcome.name) or FeedState(outcome.name)
            state.feed_url = outcome.feed_url
            state.last_crawl = spider.crawl_time
            state.status = outcome.status
            state.last_error = last_error
            state.new, state.updated = outcome.new, outcome.updated
            if outcome.status in ("error", "partial"):  # never 304 a feed not fully read
                state.failures += 1 if outcome.status == "error" else 0
                state.etag = state.last_modified = ""
            else:
                state.failures = 0
                state.last_success = spider.crawl_time
                state.etag, state.last_modified = outcome.etag, outcome.last_modified
            save_feed_state(self.store, state)

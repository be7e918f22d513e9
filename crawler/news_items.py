"""The Scrapy item of the news spider, and how it becomes a :class:`~core.models.Document`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.models import Document, as_utc
from crawler.news_extract import guess_language
from crawler.news_feed import FeedEntry


@dataclass(slots=True)
class NewsItem:
    """A feed entry, plus what its article page gave when it was fetched."""

    source: str
    entry: FeedEntry
    source_language: str = ""
    page_text: str = ""
    page_language: str = ""
    page_language_from: str = ""
    page_url: str = ""  # where the page was finally read (after redirects)
    page_title: str = ""
    page_authors: list[str] = field(default_factory=list)
    page_published: str = ""
    flags: list[str] = field(default_factory=list)  # page-level flags (robots, size, errors)
    page_attempts: int = 0  # times the article page was requested, this crawl included

    def __repr__(self) -> str:  # Scrapy logs items: keep it to one short line
        chars = len(self.page_text)
        return f"NewsItem({self.source!r}, {self.entry.link!r}, page_text={chars} chars)"


def _page_date(value: str) -> datetime | None:
    try:
        return as_utc(value) if value else None
    except ValueError:
        return None


def _language(item: NewsItem, text: str) -> tuple[str, str]:
    if item.page_language:
        return item.page_language, f"page {item.page_language_from}".strip()
    if item.entry.language:
        return item.entry.language, "feed"
    if item.source_language:
        return item.source_language, "source"
    guessed = guess_language(text, min_hits=3)
    if guessed:
        return guessed, "text"
    return "en", "assumed"


def to_document(item: NewsItem, *, first_seen: datetime, max_chars: int) -> Document:
    """One news Document: the article text when there is one, else what the feed said.

    ``first_seen`` (the crawl time) dates an item whose feed and page give no date.
    ``extra`` keeps the language and where it came from, the feed summary, the flags
    (no_date, future_date, title_markup_removed, page_*, summary_only, non_english, ...).
    """
    entry = item.entry
    flags = [*entry.flags, *item.flags]
    if item.page_text and len(item.page_text) >= len(entry.summary):
        text, text_from = item.page_text, "page"
    elif entry.content and len(entry.content) > len(entry.summary):
        text, text_from = entry.content, "feed_content"
    else:
        text, text_from = entry.summary, "feed_summary"
        flags.append("summary_only")
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
        flags.append("text_truncated")
    published, date_from = entry.published, "feed"
    if published is None:
        published = _page_date(item.page_published)
        date_from = "page"
        if published is None or published > first_seen:
            published, date_from = first_seen, "first_seen"
    title = entry.title
    if "no_title" in flags and item.page_title:
        title = item.page_title
    language, language_from = _language(item, f"{title}. {text}")
    if language != "en":
        flags.append("non_english")
    extra = {
        "language": language,
        "language_from": language_from,
        "summary": entry.summary,
        "flags": list(dict.fromkeys(flags)),
        "text_from": text_from,
        "date_from": date_from,
        "feed_link": entry.link,
    }
    if entry.tags:
        extra["tags"] = entry.tags
    if entry.feed_date:
        extra["feed_date"] = entry.feed_date
    if item.page_attempts:
        extra["page_attempts"] = item.page_attempts
    if item.page_url and item.page_url != entry.link:
        extra["page_url"] = item.page_url
    return Document(
        canonical_id=entry.canonical,
        title=title,
        text=text,
        kind="news",
        source=item.source,
        url=entry.canonical,
        published=published,
        authors=entry.authors or item.page_authors,
        language=language,
        extra=extra,
    )

"""RSS/Atom bodies -> feed entries. Pure functions: bytes in, typed entries or a clear error out.

feedparser reads both formats and copes with wrong or missing encodings (it tries the HTTP
header, the XML declaration, a BOM, then UTF-8 and Windows-1252). What it only reports, this
module turns into decisions: a body that is HTML or broken XML is a :class:`FeedError` naming
the source; an entry without a date or with one in the future is kept and flagged.

``feedparser.parse`` treats a ``str`` or ``bytes`` argument as a file path or URL first and
opens it when it can (a feed whose body is ``/etc/passwd`` would read that file, ``/dev/zero``
would read forever, a FIFO would hang). The body is therefore always handed over wrapped in a
file-like object, and bodies above ``max_bytes`` are refused before parsing.
"""

from __future__ import annotations

import calendar
import io
import re
import xml.sax
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import feedparser

from core.markup import counted
from core.urls import canonical_url, strip_tracking
from crawler.news_extract import normalise_language, plain_text

_FUTURE_SLACK = timedelta(minutes=10)  # clock skew between a site and us is not "future"
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.I | re.S)
_FEED_START = re.compile(rb"<(?:rss|feed|rdf:RDF)[\s>]", re.I)
MAX_FEED_BYTES = 20_000_000  # a larger body is not a news feed


class FeedError(Exception):
    """A feed could not be read; the message names the source and says what was wrong."""


@dataclass(slots=True)
class FeedEntry:
    """One item of a feed, cleaned: plain-text title and summary, a canonical link."""

    link: str
    canonical: str
    title: str
    summary: str = ""
    content: str = ""  # full text carried by the feed itself (content:encoded), plain
    published: datetime | None = None
    feed_date: str = ""  # the date as the feed gave it, when it was changed or doubtful
    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    language: str = ""
    flags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ParsedFeed:
    title: str
    entries: list[FeedEntry]
    language: str = ""
    encoding: str = ""
    format: str = ""
    skipped: int = 0  # entries without a usable link
    warnings: list[str] = field(default_factory=list)


def looks_like_html(body: bytes, content_type: str = "") -> bool:
    """An HTML page where a feed was expected (a login wall, a moved blog, an error page)."""
    head = body[:4096]
    if _FEED_START.search(head):
        return False
    return "html" in content_type.lower() or bool(_HTML_START.match(head))


def _when(parsed) -> datetime | None:  # noqa: ANN001 - time.struct_time from feedparser
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def _link(entry: dict, base: str) -> str:
    candidates = [entry.get("link")]
    for link in entry.get("links") or []:
        if link.get("rel", "alternate") == "alternate":
            candidates.append(link.get("href"))
    guid = entry.get("id") or ""
    if entry.get("guidislink") or guid.startswith(("http://", "https://")):
        candidates.append(guid)
    for candidate in candidates:
        if candidate and candidate.strip():
            url = urljoin(base, candidate.strip())
            if url.startswith(("http://", "https://")):
                return url
    return ""


def _authors(entry: dict, drop: set[str]) -> list[str]:
    names = [plain_text(a.get("name")) for a in entry.get("authors") or [] if a]
    if not any(names) and entry.get("author"):
        names = [plain_text(entry["author"])]
    return [n for n in dict.fromkeys(names) if n and n.casefold() not in drop]


def _entry(
    raw: dict,
    *,
    base: str,
    now: datetime,
    language: str,
    drop_authors: set[str],
) -> FeedEntry | None:
    link = _link(raw, base)
    if not link:
        return None
    flags: list[str] = []
    raw_title = raw.get("title") or ""
    title = plain_text(raw_title)
    if title != re.sub(r"\s+", " ", raw_title).strip():
        flags.append("title_markup_removed")
    summary = plain_text(raw.get("summary") or raw.get("description") or "")
    contents = [plain_text(c.get("value")) for c in raw.get("content") or []]
    content = max(contents, key=len, default="")
    if content == summary:
        content = ""
    if not title:
        words = (summary or content).split()
        title = " ".join(words[:12]) + (" …" if len(words) > 12 else "") if words else link
        flags.append("no_title")
    published = _when(raw.get("published_parsed") or raw.get("updated_parsed"))
    published = published or _when(raw.get("created_parsed"))
    feed_date = ""
    if published is None:
        flags.append("no_date")
        feed_date = raw.get("published") or raw.get("updated") or ""
    elif published > now + _FUTURE_SLACK:
        flags.append("future_date")
        feed_date = published.isoformat()
        published = now
    tags = [plain_text(t.get("term")) for t in raw.get("tags") or [] if t and t.get("term")]
    entry_lang = ""
    for detail in ("title_detail", "summary_detail"):
        entry_lang = entry_lang or normalise_language((raw.get(detail) or {}).get("language"))
    return FeedEntry(
        link=strip_tracking(link),
        canonical=canonical_url(link),
        title=title,
        summary=summary,
        content=content,
        published=published,
        feed_date=feed_date,
        authors=_authors(raw, drop_authors),
        tags=[t for t in dict.fromkeys(tags) if t],
        language=entry_lang or language,
        flags=flags,
    )


def parse_feed(
    body: bytes,
    *,
    source: str,
    now: datetime,
    url: str = "",
    content_type: str = "",
    drop_authors: list[str] | tuple[str, ...] = (),
    max_bytes: int = MAX_FEED_BYTES,
) -> ParsedFeed:
    """Parse an RSS or Atom body; raise :class:`FeedError` when it is not a readable feed.

    ``now`` is the crawl time: future dates are clamped to it. Entries keep feed order.
    The body is only ever parsed as content, never opened as a path or URL.
    """
    where = f"source {source!r}" + (f" ({url})" if url else "")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"{where}: a feed body must be bytes, not {type(body).__name__}")
    if len(body) > max_bytes:
        raise FeedError(
            f"{where}: the feed is {len(body):,} bytes, more than the {max_bytes:,}-byte cap"
        )
    body = bytes(body)
    if not body.strip():
        raise FeedError(f"{where}: the feed is empty (0 bytes of content)")
    if looks_like_html(body, content_type):
        kind = content_type.split(";")[0].strip() or "text/html"
        raise FeedError(f"{where}: got an HTML page ({kind}), not an RSS or Atom feed")
    headers = {"content-type": content_type} if content_type else {}
    # A file-like object: feedparser then reads it, and never takes it for a path or a URL.
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False)
    except (ValueError, TypeError, LookupError, RecursionError) as exc:
        # feedparser's lenient parser can trip over what it tolerates elsewhere (a character
        # reference beyond U+10FFFF, for one): a broken feed all the same, not a crash.
        raise FeedError(f"{where}: the feed could not be parsed ({exc})") from exc
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):
        line = getattr(problem, "getLineNumber", lambda: None)()
        column = getattr(problem, "getColumnNumber", lambda: None)()
        at = f" at line {line}, column {column}" if line else ""
        message = getattr(problem, "getMessage", lambda: str(problem))()
        raise FeedError(f"{where}: malformed or truncated XML{at}: {message}")
    if not parsed.get("version") and not parsed.entries:
        raise FeedError(f"{where}: not an RSS or Atom feed (no channel or feed element)")
    warnings = []
    if isinstance(problem, feedparser.CharacterEncodingOverride):
        warnings.append(f"wrong encoding declared; read as {parsed.get('encoding')}")
    elif problem is not None and not isinstance(problem, feedparser.NonXMLContentType):
        warnings.append(f"feed irregularity: {problem}")
    feed = parsed.get("feed") or {}
    language = normalise_language(feed.get("language"))
    base = url or feed.get("link") or ""
    drop = {a.casefold() for a in drop_authors}
    entries, skipped = [], 0
    for raw in parsed.entries:
        entry = _entry(raw, base=base, now=now, language=language, drop_authors=drop)
        if entry is None:
            skipped += 1
        else:
            entries.append(entry)
    if skipped:
        warnings.append(f"{counted(skipped, 'item')} without a link skipped")
    return ParsedFeed(
        title=plain_text(feed.get("title")),
        entries=entries,
        language=language,
        encoding=parsed.get("encoding", ""),
        format=parsed.get("version", ""),
        skipped=skipped,
        warnings=warnings,
    )

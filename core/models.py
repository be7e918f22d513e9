"""Typed records shared by every layer: :class:`Document`, :class:`CrawlRun`, :class:`Hit`."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from core.urls import canonical_url, legacy_canonical_url

Kind = Literal["paper", "news"]
KINDS: tuple[str, ...] = ("paper", "news")

# New-style (2007+) and old-style arXiv identifiers, with an optional version suffix. An old
# id may carry its subject class ("math.GT/0309136", "cond-mat.str-el/0412498"); arXiv's own
# id is the archive and number alone ("math/0309136"), which is what is kept.
_ARXIV_NEW = re.compile(r"^(\d{4}\.\d{4,5})(?:v\d+)?$", re.IGNORECASE)
_ARXIV_OLD = re.compile(r"^([a-z][a-z\-]*)(?:\.[a-z\-]+)?/(\d{7})(?:v\d+)?$", re.IGNORECASE)
_ARXIV_HOSTS = {"arxiv.org", "www.arxiv.org", "export.arxiv.org"}
_ARXIV_PATH = re.compile(r"^/(?:abs|pdf|html)/(.+?)(?:\.pdf)?/?$", re.IGNORECASE)
# arXiv's DOIs (from 2022): 10.48550/arXiv.2503.12172, bare, as doi: or as a doi.org link.
_ARXIV_DOI = re.compile(
    r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?10\.48550/arxiv\.(.+)$", re.IGNORECASE
)
_WS = re.compile(r"\s+")


def clean_text(value: str | None) -> str:
    """Unicode-normalise and collapse whitespace (arXiv abstracts keep hard line wraps)."""
    if not value:
        return ""
    return _WS.sub(" ", unicodedata.normalize("NFC", value)).strip()


def arxiv_id(value: str) -> str | None:
    """The arXiv id without version, or None when ``value`` is not an arXiv id, URL or DOI.

    Every form of one paper gives one id, so that it is stored once: any version, any case,
    an abs, pdf or html link with or without query and fragment, its DOI.

    >>> arxiv_id("2503.11677v2"), arxiv_id("https://arxiv.org/abs/hep-th/9901001v1")
    ('2503.11677', 'hep-th/9901001')
    """
    value = value.strip()
    if value.lower().startswith("arxiv:"):
        value = value[6:]
    doi = _ARXIV_DOI.match(value)
    if doi:
        value = doi.group(1)
    elif value.lower().startswith(("http://", "https://")):
        parts = urlsplit(value)
        path = _ARXIV_PATH.match(parts.path)
        if (parts.hostname or "").lower() not in _ARXIV_HOSTS or not path:
            return None
        value = path.group(1)
    new = _ARXIV_NEW.match(value)
    if new:
        return new.group(1)
    old = _ARXIV_OLD.match(value)
    if old:
        return f"{old.group(1).lower()}/{old.group(2)}"
    return None


def content_hash(title: str, text: str) -> str:
    """Hash of the normalised title and text: equal hashes mean the same content."""
    norm = f"{clean_text(title).casefold()}\n{clean_text(text).casefold()}"
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def as_utc(value: datetime | date | str | None) -> datetime | None:
    """An aware UTC datetime from an aware or naive datetime, a date or an ISO string (naive
    values and dates are taken as UTC, dates mean midnight); None for None or "".

    The one helper that turns what the database gives back (naive UTC) into aware values."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not an ISO date: {value!r}") from exc
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def from_row(cls: type, row: Any, *, times: tuple[str, ...] = ("started", "finished")) -> Any:
    """A record dataclass from a database row of the same column names; the ``times``
    columns (naive UTC in the database) come back aware, through :func:`as_utc`."""
    names = cls.__dataclass_fields__
    values = {name: row._mapping[name] for name in names if name in row._mapping}
    return cls(**{k: as_utc(v) if k in times else v for k, v in values.items()})


def naive_now() -> datetime:
    """Now, as the database stores it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(value: datetime | None) -> datetime | None:
    """The naive UTC datetime the database stores: an aware value is converted to UTC first
    (never just stripped of its zone); a naive one is taken as UTC already."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


@dataclass(slots=True)
class Document:
    """One paper or news item, as every layer sees it.

    ``canonical_id`` is the arXiv id without version for papers, the canonical URL for news,
    or the id the user gave at load time. ``id`` is the store's row id once stored.
    """

    canonical_id: str
    title: str
    text: str
    kind: Kind = "paper"
    source: str = "local"
    url: str = ""
    published: datetime | None = None
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    language: str = "en"
    extra: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    content_hash: str = ""

    def __post_init__(self) -> None:
        self.title = clean_text(self.title)
        self.text = clean_text(self.text)
        self.published = as_utc(self.published)
        if not self.content_hash:
            self.content_hash = content_hash(self.title, self.text)

    @property
    def embed_text(self) -> str:
        """What the embedder and the keyword index see: title, then text."""
        return f"{self.title}. {self.text}" if self.text else self.title


def make_canonical_id(*, given: str | None, url: str | None, kind: str, chash: str) -> str:
    """Pick the canonical id: arXiv id if any, else the id given, else canonical URL."""
    return _canonical_id(given, url, chash, canonical_url)


def legacy_canonical_id(*, given: str | None, url: str | None, chash: str) -> str | None:
    """The id ``make_canonical_id`` gave before URLs had one canonical form for loader and
    crawler (see ``core.urls.legacy_canonical_url``), or None where it is the same id."""
    old = _canonical_id(given, url, chash, legacy_canonical_url)
    return old if old != _canonical_id(given, url, chash, canonical_url) else None


def _canonical_id(
    given: str | None, url: str | None, chash: str, url_key: Callable[[str], str]
) -> str:
    for candidate in (given, url):
        if candidate:
            found = arxiv_id(candidate)
            if found:
                return found
    if given:
        given = given.strip()
        return url_key(given) if given.startswith(("http://", "https://")) else given
    if url:
        return url_key(url)
    return f"sha256:{chash[:24]}"


@dataclass(slots=True)
class CrawlRun:
    """One run of a crawler, as the health page shows it."""

    id: int
    source: str
    started: datetime
    finished: datetime | None = None
    status: str = "running"
    fetched: int = 0
    new: int = 0
    updated: int = 0
    errors: int = 0
    last_error: str = ""
    pages: int = 0


@dataclass(slots=True)
class UpsertResult:
    """What a batch of upserts did."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    ids: list[int] = field(default_factory=list)

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.ids.extend(other.ids)
        return self


@dataclass(slots=True)
class Match:
    """Why a document fits a sector use case: a score in [0, 1] and a readable reason."""

    doc_id: int
    sector: str
    use_case: str
    score: float
    why: str
    passage: str = ""
    terms: list[str] = field(default_factory=list)
    similarity: float = 0.0


@dataclass(slots=True)
class TechniqueTag:
    """A technique a document uses, with a score in [0, 1] and the evidence."""

    doc_id: int
    technique: str
    score: float
    why: str


@dataclass(slots=True)
class Hit:
    """One search result: the document's public fields, a score and a snippet."""

    canonical_id: str  # the arXiv id or canonical URL; doc_id is the store row id
    title: str
    url: str
    published: str | None
    kind: str
    source: str
    score: float
    snippet: str
    doc_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    similarity: float | None = None  # cosine to the query, when its meaning was compared

    def to_json(self) -> dict[str, Any]:
        data = {
            "id": self.canonical_id,
            "title": self.title,
            "url": self.url,
            "published": self.published,
            "kind": self.kind,
            "source": self.source,
            "score": round(float(self.score), 6),
            "similarity": None if self.similarity is None else round(float(self.similarity), 4),
            "snippet": self.snippet,
        }
        data.update(self.extra)
        return data

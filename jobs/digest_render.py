"""What a digest looks like: the records its templates show, and the MIME message around them.

Crawled text is untrusted. :func:`clean` strips control and bidirectional-format characters
from every crawled string before it reaches a record, :func:`safe_url` keeps only http(s)
links, and the HTML template autoescapes everything, so the HTML and the plain-text parts
show the same harmless text. Building a digest (what goes in it, per reader) is
:mod:`jobs.digest`; sending it once per person and week is :mod:`jobs.digest_delivery`.

    html, text = render_parts(values)  # the templates' values, built by jobs.digest
    message = make_message(settings, digest, now=now)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from core.models import as_utc
from core.settings import Settings

_TEMPLATES = Path(__file__).resolve().parent / "templates"


# -- untrusted text ----------------------------------------------------------------------


def clean(value: object, limit: int = 400) -> str:
    """Crawled text made safe for both parts: no control or bidi-format characters,
    whitespace collapsed, cut at ``limit`` characters. (HTML escaping is the template's.)"""
    text = "" if value is None else str(value)
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            kept.append(" " if ch in "\t\n\r\x0b\x0c\u2028\u2029" else "")
        else:
            kept.append(ch)
    text = re.sub(r"\s+", " ", "".join(kept)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def safe_url(value: str | None) -> str:
    """The URL when it is plain http(s), else an empty string (no javascript: links)."""
    url = clean(value, limit=2000)
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and parts.netloc and " " not in url:
        return url
    return ""


# -- what the templates show -------------------------------------------------------------


@dataclass(slots=True)
class DigestItem:
    title: str
    url: str
    reason: str
    published: str
    techniques: list[str]
    score: float
    fits_url: str = ""
    not_fits_url: str = ""
    shortlist_url: str = ""
    doc: str = ""  # the document's canonical id: one innovation listed under two use cases


@dataclass(slots=True)
class ChangeLine:
    """A piece of evidence that appeared this week about a shortlisted innovation."""

    title: str
    url: str
    target: str  # "Health › Diagnosis support"
    status: str  # "▶ Pilot"
    detail: str


@dataclass(slots=True)
class SuggestionBlock:
    """ "More like your shortlist" for one use case."""

    name: str
    items: list[DigestItem]


@dataclass(slots=True)
class AskItem:
    """A document the matcher is unsure about, with one-click answers."""

    title: str
    url: str
    sector: str
    detail: str
    fits_url: str
    not_fits_url: str


@dataclass(slots=True)
class UseCaseBlock:
    name: str
    items: list[DigestItem]


@dataclass(slots=True)
class SectorBlock:
    key: str
    name: str
    use_cases: list[UseCaseBlock]

    @property
    def documents(self) -> set[str]:
        """The innovations listed (one listed under two use cases counts once)."""
        return {i.doc or i.title for u in self.use_cases for i in u.items}

    @property
    def count(self) -> int:
        return len(self.documents)


@dataclass(slots=True)
class TrendLine:
    name: str
    detail: str


@dataclass(slots=True)
class ThemeLine:
    label: str
    detail: str
    examples: list[tuple[str, str]]  # (title, url)
    touches: str = ""  # the sectors and use cases it touches, "" when none


@dataclass(slots=True)
class Digest:
    email: str
    week: str
    subject: str
    html: str
    text: str
    sectors: list[SectorBlock]
    trending: list[TrendLine]
    themes: list[ThemeLine]
    unsubscribe_url: str
    changes: list[ChangeLine] = field(default_factory=list)
    suggestions: list[SuggestionBlock] = field(default_factory=list)


# -- rendering ---------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _environment(html: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_parts(values: dict[str, object]) -> tuple[str, str]:
    """The HTML and plain-text parts of a digest, from the values its templates read."""
    html = _environment(True).get_template("digest.html.j2").render(**values)
    text = _environment(False).get_template("digest.txt.j2").render(**values)
    return html, text


def make_message(
    settings: Settings, digest: Digest, *, now: datetime | None = None
) -> EmailMessage:
    """The MIME message: plain text and HTML alternatives, unsubscribe headers."""
    msg = EmailMessage()
    msg["Subject"] = digest.subject
    msg["From"] = settings.smtp_from
    msg["To"] = digest.email
    msg["Date"] = format_datetime(as_utc(now or datetime.now(UTC)))
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring=digest.week, domain=domain)
    msg["List-Unsubscribe"] = f"<{digest.unsubscribe_url}>"
    # RFC 8058 one-click: mail clients POST "List-Unsubscribe=One-Click" to the link, which
    # the API's public /unsubscribe endpoint answers (`veille api`, started by `veille up`).
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(digest.text)
    msg.add_alternative(digest.html, subtype="html")
    return msg

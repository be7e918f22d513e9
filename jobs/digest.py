"""The weekly email digest: built per subscriber, sent once per person and ISO week.

What a subscriber gets: for each sector they chose, the best new innovations of the week per
use case (filtered by their techniques, if any) with a one-line reason and a link; what is
trending; emerging themes; what changed this week about the innovations on their sectors'
shortlists and more like them; a link to the dashboard; a signed unsubscribe link (also in
the ``List-Unsubscribe`` header). Each listed innovation carries signed one-click links:
"does it fit?" and "add to shortlist". HTML with inline styles plus a plain-text part.

Crawled text is untrusted: the HTML template autoescapes everything, control and
bidirectional-format characters are stripped from every crawled string, and only http(s)
links are kept.

Sending is at most once per (address, week): a ``digest_sends`` row is claimed atomically
*before* the message goes out and marked ``sent`` or ``failed`` after. A run that dies in
between leaves the row ``sending``; it is reported as uncertain and never resent. A digest
that cannot be built is recorded ``failed`` too. ``failed`` rows are retried by later runs (up
to ``MAX_ATTEMPTS``); one bad address, and a database locked for a moment, do not stop the
others: every subscriber of a run ends sent, failed (with the reason), deferred (retried by
the next run), given up or uncertain. Logs name people by :func:`email_ref`, never by address.

Example::

    report = send_digests(store, settings)
    report.sent, report.failed
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import smtplib
import ssl
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2

from core.models import Match, as_utc, naive_utc
from core.settings import ConfigError, Settings, is_loopback_host
from core.store import DatabaseBusy, Store, retry_busy
from core.subscribers import (
    Subscriber,
    claim_send,
    email_ref,
    get_subscriber,
    list_subscribers,
    mark_send,
    record_send_failure,
    unsubscribe,
    week_sends,
)
from index.learner import uncertain_documents
from index.matching import sector_overview
from index.recommend import Recommendations, more_like_shortlist
from index.shortlists import get_entry, list_entries
from index.story import recent_evidence
from index.taxonomy import Sector, Taxonomy, load_taxonomy
from index.trends import TrendItem, emerging_themes, trend_report
from jobs.control import checkpoint
from jobs.feedback_links import feedback_url
from jobs.shortlist_links import shortlist_url
from jobs.signing import b64, signing_key, unb64

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
PER_USE_CASE = 3
ASK_PER_SECTOR = 2
TRENDING = 5
SUGGESTIONS = 3  # "more like your shortlist", per use case
CHANGES = 10  # "your shortlist: what changed this week", at most
PREVIEW_EMAIL = "preview@example.invalid"
_TOKEN_PREFIX = "v1"
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


# -- unsubscribe tokens ------------------------------------------------------------------


def _mac(key: bytes, email: str) -> bytes:
    return hmac.new(key, b"veille-unsubscribe\x00" + email.encode("utf-8"), hashlib.sha256).digest()


def make_unsubscribe_token(settings: Settings, email: str, *, store: Store | None = None) -> str:
    """A token that proves the link was made by us for ``email`` (HMAC-SHA256)."""
    address = email.strip().lower()
    key = signing_key(settings, store)
    return f"{_TOKEN_PREFIX}.{b64(address.encode('utf-8'))}.{b64(_mac(key, address))}"


def unsubscribe_url(settings: Settings, email: str, *, store: Store | None = None) -> str:
    token = make_unsubscribe_token(settings, email, store=store)
    return f"{settings.public_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"


def unsubscribe_with_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> str:
    """Unsubscribe the address the token was made for and return it.

    ValueError when the token is malformed or its signature does not match (a changed
    address or a forged link). Unsubscribing twice is fine.
    """
    invalid = ValueError("this unsubscribe link is invalid or has been altered")
    if not isinstance(token, str) or len(token) > 1200:
        raise invalid
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != _TOKEN_PREFIX:
        raise invalid
    try:
        address = unb64(parts[1]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    # Compare the text of the token, not the decoded bytes: base64 leaves spare bits in its
    # last character, so an altered character could otherwise decode to the same bytes.
    expected = b64(_mac(signing_key(settings, store), address))
    canonical = b64(address.encode("utf-8"))
    if not (
        hmac.compare_digest(parts[2].encode("ascii", "replace"), expected.encode("ascii"))
        and parts[1] == canonical
    ):
        raise invalid
    unsubscribe(store, address, now=now)
    log.info("unsubscribed %s through a signed link", email_ref(address))
    return address


# -- building ----------------------------------------------------------------------------


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
    def count(self) -> int:
        return sum(len(u.items) for u in self.use_cases)


@dataclass(slots=True)
class TrendLine:
    name: str
    detail: str


@dataclass(slots=True)
class ThemeLine:
    label: str
    detail: str
    examples: list[tuple[str, str]]  # (title, url)


@dataclass(slots=True)
class WeekContext:
    """What every digest of a run shares: the week, trends and themes (computed once)."""

    week: str
    now: datetime
    since: datetime
    techniques: list[TrendItem]
    use_cases: list[TrendItem]
    themes: list[ThemeLine]
    # "Does this fit?" questions per sector: the same for every reader, found once a run.
    asks: dict[str, list[AskItem]] = field(default_factory=dict)
    # For the operator: news sources that fell silent or keep failing, one sentence each.
    source_alerts: list[str] = field(default_factory=list)
    # "More like your shortlist" per use case ("sector/use_case"), found once a run.
    suggestions: dict[str, Recommendations] = field(default_factory=dict)


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


def iso_week(now: datetime, settings: Settings) -> str:
    """The ISO week of ``now`` in the configured time zone, e.g. '2026-W10'."""
    local = now.astimezone(ZoneInfo(settings.timezone))
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def week_context(store: Store, settings: Settings, *, now: datetime | None = None) -> WeekContext:
    """Trends and emerging themes as of ``now`` (shared by all digests of one run)."""
    now = as_utc(now or datetime.now(UTC))
    techniques = trend_report(store, settings, by="technique", now=now).items
    use_cases = trend_report(store, settings, by="use_case", now=now).items
    themes: list[ThemeLine] = []
    try:
        for theme in emerging_themes(store, settings, now=now, limit=3):
            themes.append(
                ThemeLine(
                    label=clean(theme.label, 120),
                    detail=f"{theme.size} recent documents, {theme.earlier} before "
                    f"(x{theme.growth} more frequent)",
                    examples=[(clean(d.title, 200), safe_url(d.url)) for d in theme.documents],
                )
            )
    except Exception:  # themes are a bonus: a digest without them is still worth sending
        log.warning("emerging themes unavailable for the digest", exc_info=True)
    return WeekContext(
        week=iso_week(now, settings),
        now=now,
        since=now - timedelta(days=7),
        techniques=techniques,
        use_cases=use_cases,
        themes=themes,
        source_alerts=operator_alerts(store, settings, now=now),
    )


def operator_alerts(store: Store, settings: Settings, *, now: datetime) -> list[str]:
    """The sentences of the operator section: news sources that fell silent or keep failing
    (crawler.news_health), cleaned of control characters (the templates escape them).
    A failure to read them is itself an alert: the section is for the one who can fix it."""
    from crawler.news_health import source_alerts  # noqa: PLC0415

    try:
        return [clean(a.message, 600) for a in source_alerts(store, settings, now=now)]
    except Exception as exc:  # noqa: BLE001 - the digest goes out all the same
        log.warning("source alerts unavailable for the digest", exc_info=True)
        return [clean(f"The news sources' health could not be read: {type(exc).__name__}")]


def is_operator(settings: Settings, email: str) -> bool:
    """Whether ``email`` is one of ``operator_emails`` (case does not matter), or the
    preview's sample reader (the operator is the one previewing)."""
    wanted = email.strip().casefold()
    return wanted == PREVIEW_EMAIL or wanted in {
        e.strip().casefold() for e in settings.operator_emails
    }


def _trend_detail(item: TrendItem) -> str:
    recent = f"{item.recent} document(s) in the last two weeks"
    if item.burst:
        return f"{recent}, about {item.expected:g} expected: a burst"
    if item.new:
        return f"new: {recent}, none in the weeks before"
    return f"{recent}; {item.growth:+.0%} over the window"


def _is_rising(item: TrendItem) -> bool:
    return item.recent > 0 and (item.burst or item.new or item.growth > 0)


def _trending_for(subscriber: Subscriber, ctx: WeekContext, taxonomy: Taxonomy) -> list[TrendLine]:
    lines: list[TrendLine] = []
    wanted = set(subscriber.techniques)
    techs = [i for i in ctx.techniques if _is_rising(i) and (not wanted or i.key in wanted)]
    for item in techs[:TRENDING]:
        lines.append(TrendLine(clean(item.name, 120), _trend_detail(item)))
    sector_names = {s.key: s.name for s in taxonomy.sectors}
    cases = [i for i in ctx.use_cases if _is_rising(i) and i.sector in subscriber.sectors]
    for item in cases[:TRENDING]:
        sector = sector_names.get(item.sector or "", item.sector or "")
        lines.append(TrendLine(clean(f"{sector}: {item.name}", 160), _trend_detail(item)))
    return lines


def _reason(match: Match, use_case_name: str) -> str:
    fit = f"Fits “{use_case_name}” (score {match.score:.2f})"
    if match.terms:
        terms = ", ".join(f"‘{clean(t, 40)}’" for t in match.terms[:3])
        return f"{fit}: mentions {terms}; close in meaning (similarity {match.similarity:.2f})."
    return f"{fit}: close in meaning (similarity {match.similarity:.2f})."


def _ask_items(
    store: Store, settings: Settings, subscriber: Subscriber, ctx: WeekContext, taxonomy: Taxonomy
) -> list[AskItem]:
    """Up to ASK_PER_SECTOR documents per chosen sector that the matcher is least sure of."""
    out = []
    for key in subscriber.sectors:
        try:
            sector = taxonomy.sector(key)
        except KeyError:
            continue
        if sector.key not in ctx.asks:
            ctx.asks[sector.key] = _sector_asks(store, settings, taxonomy, sector)
        out += ctx.asks[sector.key]
    return out


def _sector_asks(
    store: Store, settings: Settings, taxonomy: Taxonomy, sector: Sector
) -> list[AskItem]:
    picked = uncertain_documents(store, settings, taxonomy, sector.key, n=ASK_PER_SECTOR)
    docs = store.get_many([d for d, _ in picked])
    return [
        AskItem(
            title=clean(docs[doc_id].title, 300),
            url=safe_url(docs[doc_id].url),
            sector=sector.name,
            detail=f"the matcher gives it {probability:.0%} for {sector.name}",
            fits_url=feedback_url(
                settings, store, docs[doc_id].canonical_id, sector.key, None, fits=True
            ),
            not_fits_url=feedback_url(
                settings, store, docs[doc_id].canonical_id, sector.key, None, fits=False
            ),
        )
        for doc_id, probability in picked
        if doc_id in docs
    ]


def _sector_blocks(
    store: Store, settings: Settings, subscriber: Subscriber, ctx: WeekContext, taxonomy: Taxonomy
) -> list[SectorBlock]:
    wanted = set(subscriber.techniques)
    tech_names = {t.key: t.name for t in taxonomy.techniques}
    blocks = []
    for key in subscriber.sectors:
        try:
            sector = taxonomy.sector(key)
        except KeyError:
            log.warning(
                "subscriber %s chose unknown sector %r; skipped", email_ref(subscriber.email), key
            )
            continue
        views = sector_overview(store, settings, sector.key, since=ctx.since, per_use_case=20)
        use_cases = []
        for view in views:
            items = []
            for doc, match, techs in view.items:
                if doc.published is not None and doc.published > ctx.now:
                    continue
                tech_keys = [t.technique for t in techs]
                if wanted and not wanted & set(tech_keys):
                    continue
                items.append(
                    DigestItem(
                        title=clean(doc.title, 300),
                        url=safe_url(doc.url),
                        reason=_reason(match, view.use_case.name),
                        published=doc.published.date().isoformat() if doc.published else "",
                        techniques=[clean(tech_names.get(t, t), 60) for t in tech_keys[:4]],
                        score=match.score,
                        fits_url=feedback_url(
                            settings, store, doc.canonical_id, sector.key, match.use_case, fits=True
                        ),
                        not_fits_url=feedback_url(
                            settings, store, doc.canonical_id, sector.key, None, fits=False
                        ),
                        shortlist_url=shortlist_url(
                            settings,
                            store,
                            doc.canonical_id,
                            sector.key,
                            match.use_case,
                            reader=email_ref(subscriber.email),
                        ),
                    )
                )
                if len(items) >= PER_USE_CASE:
                    break
            if items:
                use_cases.append(UseCaseBlock(view.use_case.name, items))
        blocks.append(SectorBlock(sector.key, sector.name, use_cases))
    return blocks


def _use_case_names(taxonomy: Taxonomy) -> dict[str, str]:
    return {
        f"{sector.key}/{uc.key}": f"{sector.name} › {uc.name}"
        for sector in taxonomy.sectors
        for uc in sector.use_cases
    }


def _shortlist_changes(
    store: Store, subscriber: Subscriber, ctx: WeekContext, taxonomy: Taxonomy
) -> list[ChangeLine]:
    """New evidence this week (a version, code, a news mention) about the innovations on the
    shortlists of the reader's sectors."""
    names = _use_case_names(taxonomy)
    lines = []
    for found in recent_evidence(store, ctx.since, sectors=list(subscriber.sectors))[:CHANGES]:
        doc = store.by_canonical_id(found.canonical_id)
        if doc is None:
            continue
        target = f"{found.sector}/{found.use_case}"
        lines.append(
            ChangeLine(
                title=clean(doc.title, 300),
                url=safe_url(doc.url),
                target=clean(names.get(target, target), 160),
                status=get_entry(store, found.entry_id).status_text,
                detail=clean(found.text, 400),
            )
        )
    return lines


def _suggestions(
    store: Store,
    settings: Settings,
    subscriber: Subscriber,
    ctx: WeekContext,
    taxonomy: Taxonomy,
) -> list[SuggestionBlock]:
    """Per use case of the reader's sectors that has a shortlist: unseen innovations like
    the kept entries, each with a signed "add to shortlist" link."""
    names = _use_case_names(taxonomy)
    reader = email_ref(subscriber.email)
    blocks = []
    for key in subscriber.sectors:
        targets = dict.fromkeys(e.target for e in list_entries(store, settings, sector=key))
        for target in targets:
            if target not in ctx.suggestions:
                ctx.suggestions[target] = more_like_shortlist(
                    store, settings, target, k=SUGGESTIONS
                )
            sector, use_case = target.split("/", 1)
            items = [
                DigestItem(
                    title=clean(rec.document.title, 300),
                    url=safe_url(rec.document.url),
                    reason=clean(rec.why, 400),
                    published=rec.document.published.date().isoformat()
                    if rec.document.published
                    else "",
                    techniques=[],
                    score=rec.probability,
                    shortlist_url=shortlist_url(
                        settings,
                        store,
                        rec.document.canonical_id,
                        sector,
                        use_case,
                        reader=reader,
                    ),
                )
                for rec in ctx.suggestions[target].items
            ]
            if items:
                blocks.append(SuggestionBlock(clean(names.get(target, target), 160), items))
    return blocks


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


def build_digest(
    store: Store,
    settings: Settings,
    subscriber: Subscriber,
    *,
    now: datetime | None = None,
    context: WeekContext | None = None,
) -> Digest:
    """The digest ``subscriber`` would receive at ``now`` (nothing is sent or recorded)."""
    ctx = context or week_context(store, settings, now=now)
    taxonomy = load_taxonomy(settings)
    sectors = _sector_blocks(store, settings, subscriber, ctx, taxonomy)
    trending = _trending_for(subscriber, ctx, taxonomy)
    try:
        asks = _ask_items(store, settings, subscriber, ctx, taxonomy)
    except Exception:  # questions are a bonus: a digest without them is still worth sending
        log.warning("no 'does this fit?' questions for the digest", exc_info=True)
        asks = []
    try:
        changes = _shortlist_changes(store, subscriber, ctx, taxonomy)
        suggestions = _suggestions(store, settings, subscriber, ctx, taxonomy)
    except Exception:  # the shortlist sections are a bonus, like the questions
        log.warning("no shortlist sections for the digest", exc_info=True)
        changes, suggestions = [], []
    unsub = unsubscribe_url(settings, subscriber.email, store=store)
    count = sum(s.count for s in sectors)
    names = ", ".join(s.name for s in sectors) or "your sectors"
    subject = clean(f"Veille weekly digest {ctx.week}: {count} new for {names}", 200)
    values = {
        "subject": subject,
        "week": ctx.week,
        "since": ctx.since.date().isoformat(),
        "until": ctx.now.date().isoformat(),
        "sectors": sectors,
        "count": count,
        "trending": trending,
        "asks": asks,
        "changes": changes,
        "suggestions": suggestions,
        "themes": ctx.themes,
        "techniques": subscriber.techniques,
        "dashboard_url": safe_url(settings.dashboard_address()),
        "unsubscribe_url": unsub,
        "email": subscriber.email,
        "consent": subscriber.consent_at.date().isoformat() if subscriber.consent_at else "",
        "operator": is_operator(settings, subscriber.email),
        "source_alerts": ctx.source_alerts,
        "sources_url": safe_url(settings.dashboard_address().rstrip("/") + "/sources"),
    }
    html = _environment(True).get_template("digest.html.j2").render(**values)
    text = _environment(False).get_template("digest.txt.j2").render(**values)
    return Digest(
        email=subscriber.email,
        week=ctx.week,
        subject=subject,
        html=html,
        text=text,
        sectors=sectors,
        trending=trending,
        themes=ctx.themes,
        unsubscribe_url=unsub,
        changes=changes,
        suggestions=suggestions,
    )


def preview(
    store: Store, settings: Settings, *, email: str | None = None, now: datetime | None = None
) -> Digest:
    """The digest for the subscriber ``email``, or for a sample reader of every sector."""
    if email:
        subscriber = get_subscriber(store, email)
        if subscriber is None:
            raise ValueError(
                f"no subscriber {email!r}; add one with `veille subscribers add` "
                "or preview without --email"
            )
    else:
        sectors = [s.key for s in load_taxonomy(settings).sectors]
        subscriber = Subscriber(
            email=PREVIEW_EMAIL, sectors=sectors, consent_at=as_utc(now or datetime.now(UTC))
        )
    return build_digest(store, settings, subscriber, now=now)


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


# -- sending -----------------------------------------------------------------------------


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class SMTPMailer:
    """Sends through the SMTP server from settings; reconnects after a dropped connection."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        check_smtp_security(s)
        context = ssl.create_default_context()
        if s.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=self.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout)
            if s.smtp_security == "starttls":
                smtp.starttls(context=context)
        if s.smtp_user:
            smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(message)
        except Exception:
            if getattr(self._smtp, "sock", None) is None:
                self._smtp = None  # the server closed the connection: reconnect next time
            raise

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


@dataclass(slots=True)
class SendReport:
    """Where every subscriber of a run ended: each address is in exactly one list."""

    week: str
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # recorded; retried by a later run
    gave_up: list[str] = field(default_factory=list)  # failed MAX_ATTEMPTS times
    uncertain: list[str] = field(default_factory=list)  # a run died mid-send: not resent
    # The database stayed locked: nothing was sent or recorded; the next run tries again.
    deferred: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.deferred

    def summary(self) -> str:
        parts = [f"week {self.week}: {len(self.sent)} sent"]
        if self.already_sent:
            parts.append(f"{len(self.already_sent)} already sent")
        if self.failed:
            parts.append(f"{len(self.failed)} failed (retried later)")
        if self.deferred:
            parts.append(f"{len(self.deferred)} deferred (database busy; retried later)")
        if self.gave_up:
            parts.append(f"{len(self.gave_up)} given up after {MAX_ATTEMPTS} attempts")
        if self.uncertain:
            parts.append(f"{len(self.uncertain)} uncertain (a previous run stopped mid-send)")
        return ", ".join(parts)


def _redact(text: str, email: str) -> str:
    """``text`` with the address replaced by its reference (for logs)."""
    return re.sub(re.escape(email), email_ref(email), text, flags=re.IGNORECASE)


def check_smtp_security(settings: Settings) -> None:
    """Refuse to send a login and password in clear text over the network: an SMTP login
    needs ``smtp_security`` starttls or ssl, unless the server is on this machine."""
    if (
        settings.smtp_user
        and settings.smtp_security == "none"
        and not is_loopback_host(settings.smtp_host)
    ):
        raise ConfigError(
            f"refusing to log in to SMTP server {settings.smtp_host} without encryption: the "
            "password would cross the network in clear text. Set VEILLE_SMTP_SECURITY=starttls "
            "(port 587) or ssl (port 465)"
        )


def check_delivery_settings(settings: Settings) -> None:
    """Refuse to send digests whose links cannot work: ConfigError naming the setting.

    ``public_url`` must be an http(s) address that subscribers can reach; one on this
    machine only (the default, http://127.0.0.1:8600) is accepted only with
    ``allow_loopback_public_url`` (``veille digest --send --allow-loopback-links``), for
    trying Veille out or testing.
    """
    url = settings.public_url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"VEILLE_PUBLIC_URL (public_url) = {url!r} is not an http(s) address; set it to "
            "the API's address as subscribers reach it, e.g. https://veille.example.com"
        )
    if is_loopback_host(parts.hostname) and not settings.allow_loopback_public_url:
        raise ConfigError(
            f"refusing to send digests: VEILLE_PUBLIC_URL (public_url) = {url!r} points at "
            "this machine, so the unsubscribe and feedback links in every email would open "
            "nothing for subscribers. Set VEILLE_PUBLIC_URL to the API's public address, "
            "or, to try Veille on this machine, pass --allow-loopback-links "
            "(VEILLE_ALLOW_LOOPBACK_PUBLIC_URL=true)"
        )
    check_smtp_security(settings)


def send_digests(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    mailer: Mailer | None = None,
    retry_only: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
    only: Iterable[str] | None = None,
) -> SendReport:
    """Send this week's digest to every active subscriber who has not had it yet.

    Every subscriber of the run ends in exactly one list of the report, and every failure
    (a digest that could not be built, a refused address, a dropped connection) is
    recorded in ``digest_sends`` so a later run retries it. A database that stays locked
    defers the person (``report.deferred``); the next run, the retry job included, picks
    them up.

    ``retry_only`` (the retry job) sends to those whose attempt this week failed or was
    deferred, never to someone who subscribed after the week's digest went out; ``only``
    restricts the run to some addresses. Never raises for one address; ConfigError (before
    anything is sent or recorded) when the settings would send broken links.
    """
    check_delivery_settings(settings)
    now = as_utc(now or datetime.now(UTC))
    week = iso_week(now, settings)
    report = SendReport(week=week)
    done, first_claim = week_sends(store, week)
    people = list_subscribers(store, active_only=True)
    if only is not None:
        wanted = {e.strip().lower() for e in only}
        people = [p for p in people if p.email in wanted]
    todo = []
    for person in people:
        status = done.get(person.email)
        if retry_only and status is None:
            # Deferred by an earlier run of this week (nothing recorded): retried. Someone
            # who subscribed after that run waits for next week's digest.
            earlier = first_claim is not None and (
                person.consent_at is None or naive_utc(person.consent_at) <= first_claim
            )
            if not earlier:
                continue
        elif retry_only and status != "failed":
            continue
        if status == "sent":
            report.already_sent.append(person.email)
        elif status == "sending":  # a run died mid-send: the outcome is unknown, never resend
            report.uncertain.append(person.email)
        else:
            todo.append(person)
    if not todo:
        log.info("digest %s", report.summary())
        return report
    ctx: WeekContext | None = None
    ctx_error = ""
    try:
        ctx = week_context(store, settings, now=now)
    except Exception as exc:  # every digest needs it: each person gets a recorded failure
        log.exception("the week's trends could not be computed for the digest")
        ctx_error = f"{type(exc).__name__}: {exc}"
    own_mailer = mailer is None
    mailer = mailer or SMTPMailer(settings)
    try:
        for person in todo:
            checkpoint()  # a stopped job (lost lease, deadline) stops between two people
            _deliver(
                store, settings, person, week, now, ctx, ctx_error, mailer, max_attempts, report
            )
    finally:
        if own_mailer:
            mailer.close()
    log.info("digest %s", report.summary())
    return report


def _deliver(
    store: Store,
    settings: Settings,
    person: Subscriber,
    week: str,
    now: datetime,
    ctx: WeekContext | None,
    ctx_error: str,
    mailer: Mailer,
    max_attempts: int,
    report: SendReport,
) -> None:
    """Build, claim, send and record one digest; the outcome goes into ``report``."""
    email, ref, moment = person.email, email_ref(person.email), naive_utc(now)
    try:
        if ctx is None:
            raise RuntimeError(f"the week's trends could not be computed: {ctx_error}")
        digest = build_digest(store, settings, person, now=now, context=ctx)
        message = make_message(settings, digest, now=now)
    except Exception as exc:  # a broken digest for one person must not stop the rest
        reason = clean(f"build failed: {type(exc).__name__}: {exc}", 500)
        log.warning("could not build the digest for %s: %s", ref, _redact(reason, email))
        try:
            status = retry_busy(
                lambda: record_send_failure(store, email, week, moment, reason, max_attempts),
                "recording a failed build",
            )
        except DatabaseBusy as busy:
            report.deferred[email] = f"{reason}; {busy}"
            return
        if status == "failed":
            report.failed[email] = reason
        elif status == "gave_up":
            report.gave_up.append(email)
        elif status == "sent":
            report.already_sent.append(email)
        else:
            report.uncertain.append(email)
        return
    try:
        claimed, seen = retry_busy(
            lambda: claim_send(store, email, week, moment, max_attempts), "claiming the send"
        )
    except DatabaseBusy as busy:
        log.warning("digest to %s deferred: %s", ref, busy)
        report.deferred[email] = str(busy)
        return
    if not claimed:
        if seen == "sent":
            report.already_sent.append(email)
        elif seen == "failed":
            report.gave_up.append(email)
        elif seen == "sending":  # another run holds it, or one died mid-send
            report.uncertain.append(email)
        # inactive: unsubscribed while the run went on; nothing to send or record
        return
    try:
        mailer.send(message)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
        error = clean(f"{type(exc).__name__}: {exc}", 500)
        log.warning("digest to %s failed: %s", ref, _redact(error, email))
        report.failed[email] = error
        try:
            retry_busy(
                lambda: mark_send(store, email, week, status="failed", error=error),
                "recording a failed send",
            )
        except DatabaseBusy as busy:
            # The row stays 'sending': reported as uncertain by later runs, never resent.
            report.failed[email] = f"{error}; {busy}"
        return
    report.sent.append(email)
    try:
        retry_busy(
            lambda: mark_send(store, email, week, status="sent", error="", sent_at=moment),
            "recording a sent digest",
        )
    except DatabaseBusy as busy:
        # Sent, but the row stays 'sending': later runs report it uncertain and never resend.
        log.warning("digest to %s sent but not recorded: %s", ref, busy)

"""The weekly email digest: what goes in it, built per subscriber.

What a subscriber gets: for each sector they chose, the best new innovations of the week per
use case (filtered by their techniques, if any) with a one-line reason and a link; what is
trending; emerging themes; what changed this week about the innovations on their sectors'
shortlists and more like them; a link to the dashboard; a signed unsubscribe link (also in
the ``List-Unsubscribe`` header). Each listed innovation carries signed one-click links:
"does it fit?" and "add to shortlist". HTML with inline styles plus a plain-text part.

What every digest of a run shares (the week, trends, themes, questions, suggestions) is
computed once, in a :class:`WeekContext`. The records and templates are in
:mod:`jobs.digest_render`; sending, at most once per person and week, in
:mod:`jobs.digest_delivery`; the signed links in ``jobs/*_links.py``.

Example::

    digest = build_digest(store, settings, subscriber, now=now)
    digest.subject, digest.html
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from core.markup import counted
from core.models import Match, as_utc
from core.settings import Settings
from core.store import Store
from core.subscribers import Subscriber, email_ref, get_subscriber
from index.matching import sector_overview
from index.recommend import more_like_shortlist
from index.reports import ask_items
from index.shortlists import get_entry, list_entries
from index.story import recent_evidence
from index.taxonomy import Sector, Taxonomy, load_taxonomy
from index.trends import BURST_MIN, TrendItem
from jobs.digest_render import (
    AskItem,
    ChangeLine,
    Digest,
    DigestItem,
    SectorBlock,
    SuggestionBlock,
    TrendLine,
    UseCaseBlock,
    clean,
    render_parts,
    safe_url,
)
from jobs.digest_week import WeekContext, week_context
from jobs.feedback_links import feedback_url
from jobs.shortlist_links import shortlist_url
from jobs.unsubscribe_links import unsubscribe_url

log = logging.getLogger(__name__)

PER_USE_CASE = 3
ASK_PER_SECTOR = 2
# Questions about a use case still learning from its description, per sector (the Sectors
# page asks about up to three).
ASK_NEW_USE_CASES = 1
TRENDING = 5
SUGGESTIONS = 3  # "more like your shortlist", per use case
CHANGES = 10  # "your shortlist: what changed this week", at most
PREVIEW_EMAIL = "preview@example.invalid"


def is_operator(settings: Settings, email: str) -> bool:
    """Whether ``email`` is one of ``operator_emails`` (case does not matter), or the
    preview's sample reader (the operator is the one previewing)."""
    wanted = email.strip().casefold()
    return wanted == PREVIEW_EMAIL or wanted in {
        e.strip().casefold() for e in settings.operator_emails
    }


def _trend_detail(item: TrendItem) -> str:
    recent = f"{counted(item.recent, 'document')} in the last two weeks"
    if item.burst:
        return f"{recent}, about {item.expected:.1f} expected: a burst"
    if item.new:
        return f"new: {recent}, none in the weeks before"
    return f"{recent}; {item.growth:+.0%} over the window"


def _is_rising(item: TrendItem) -> bool:
    """A burst, or something new or growing with at least BURST_MIN documents in the last two
    weeks: one or two documents ("+200%" from 1 to 3 over twelve weeks) say nothing yet."""
    return item.burst or (item.recent >= BURST_MIN and (item.new or item.growth > 0))


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
    fit = f"Fits “{use_case_name}” (fit {match.score:.2f})"
    if match.terms:
        terms = ", ".join(f"‘{clean(t, 40)}’" for t in match.terms[:3])
        return f"{fit}: mentions {terms}; close in meaning (similarity {match.similarity:.2f})."
    return f"{fit}: close in meaning (similarity {match.similarity:.2f})."


def _ask_items(
    store: Store, settings: Settings, subscriber: Subscriber, ctx: WeekContext, taxonomy: Taxonomy
) -> list[AskItem]:
    """Up to ASK_PER_SECTOR documents per chosen sector that the matcher is least sure of,
    and ASK_NEW_USE_CASES about a use case of it still learning from its description."""
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
    """The sector's own questions (near its threshold) and one about a use case still
    scored by its description, if any document is likely enough (index.reports.ask_items)."""
    out = []
    for item in ask_items(
        store, settings, sector.key, n=ASK_PER_SECTOR, new_use_cases=ASK_NEW_USE_CASES
    ):
        if item.use_case:
            about = f"{sector.name} › {clean(item.use_case_name, 120)}"
            detail = (
                "Veille is still learning this use case from its description, and this is "
                f"the paper it finds likeliest to belong ({item.score:.0%})"
            )
        else:
            about = sector.name
            detail = f"the matcher is unsure about this one (probability {item.score:.0%}"
            if item.threshold is not None:
                detail += f"; it counts a paper in from {item.threshold:.0%}"
            detail += ")"
        out.append(
            AskItem(
                title=clean(item.title, 300),
                url=safe_url(item.url),
                sector=about,
                detail=detail,
                fits_url=feedback_url(
                    settings, store, item.canonical_id, sector.key, item.use_case or None, fits=True
                ),
                not_fits_url=feedback_url(
                    settings,
                    store,
                    item.canonical_id,
                    sector.key,
                    item.use_case or None,
                    fits=False,
                ),
            )
        )
    return out


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
                        doc=doc.canonical_id,
                        reason=_reason(match, view.use_case.name),
                        published=doc.published.date().isoformat() if doc.published else "",
                        techniques=[clean(tech_names.get(t, t), 60) for t in tech_keys[:4]],
                        score=match.score,
                        fits_url=feedback_url(
                            settings, store, doc.canonical_id, sector.key, match.use_case, fits=True
                        ),
                        # "No" under a use case says it does not serve that use case; the
                        # sector's other use cases (and the sector) keep their own verdicts
                        not_fits_url=feedback_url(
                            settings,
                            store,
                            doc.canonical_id,
                            sector.key,
                            match.use_case,
                            fits=False,
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
    count = len(set().union(*(s.documents for s in sectors)))
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
    html, text = render_parts(values)
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

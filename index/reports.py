"""What the dashboard's overview pages read, as plain data: the week, a sector, the heatmap,
the crawl runs.

Every function takes the store and settings and returns dataclasses or lists of dicts keyed
by taxonomy keys and names. Text that came from a crawl is returned as it was stored: how it
is shown, escaped and exported is decided beside the pages (dashboard/present.py and
core/markup.py). Search results and one document's detail are index/lookup.py.

    view = week_overview(store, settings)
    view.top_per_sector["Financial services"][0].why
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.markup import counted
from core.models import CrawlRun, Document, naive_utc
from core.settings import Settings
from core.store import Store, documents
from index.learner import ask_pool, load_matcher
from index.matching import (
    doc_matches,
    doc_techniques,
    matches_for,
    sector_overview,
    techniques_for,
)
from index.maturity import maturity
from index.search import make_snippet, published_str
from index.taxonomy import Taxonomy, UseCase, load_taxonomy
from index.training import MIN_POSITIVES
from index.trends import TrendReport, default_now, trend_report

# -- items -------------------------------------------------------------------------------


# What an item's score means, in the words every page, export and email uses for it.
SCORE_WORDS = {
    "fit": "fit",  # the matcher's probability that it belongs to the sector (1.00: confirmed)
    "query": "query match",  # to a search query: meaning and shared words, best near 1
    "similarity": "similarity",  # cosine of the two texts' vectors (More like this)
    "keyword": "keyword score",  # BM25, keyword mode only: no fixed scale
}
SCORE_HELP = {
    "fit": "fit: the matcher's probability, 0 to 1, that it belongs to the sector "
    "(1.00 when your team confirmed it)",
    "query": "query match: how well it answers the query, closeness in meaning and shared "
    "words combined; the best result of a search is near 1",
    "similarity": "similarity: how close in meaning the two texts are, 0 to 1",
    "keyword": "keyword score: how much weight the query's words carry in it (BM25); "
    "higher is better, on no fixed scale",
}


@dataclass(slots=True)
class Item:
    """One document as a row of a list: enough to show it and to export it.

    ``score`` is read through ``score_kind`` (SCORE_WORDS): a fit in sector lists, a
    query match in search results, a similarity in "More like this"."""

    doc_id: int  # the store row id
    canonical_id: str  # the arXiv id or canonical URL
    title: str
    url: str
    published: str | None
    kind: str
    source: str
    score: float = 0.0
    score_kind: str = "fit"
    threshold: float | None = None  # a question's: the sector's decision threshold
    sector: str = ""
    use_case: str = ""
    use_case_name: str = ""
    sector_key: str = ""
    why: str = ""
    passage: str = ""
    terms: list[str] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    snippet: str = ""
    maturity: float = 0.0  # share of maturity signals found (index/maturity.py)
    maturity_signals: list[str] = field(default_factory=list)
    similarity: float | None = None  # a search hit's cosine to the query (index.search)

    @property
    def score_text(self) -> str:
        """The score in words: "fit 0.87", "query match 0.62", "similarity 0.71"."""
        return f"{SCORE_WORDS[self.score_kind]} {self.score:.2f}"


def _item(doc: Document, **fields: Any) -> Item:
    ripe = maturity(doc)
    return Item(
        doc_id=doc.id or 0,
        canonical_id=doc.canonical_id,
        title=doc.title,
        url=doc.url,
        published=published_str(doc),
        kind=doc.kind,
        source=doc.source,
        maturity=ripe.score,
        maturity_signals=ripe.signals,
        **fields,
    )


# -- this week ---------------------------------------------------------------------------


@dataclass(slots=True)
class WeekOverview:
    start: datetime
    end: datetime
    total_documents: int
    new_documents: int
    previous_documents: int
    by_sector: list[dict[str, Any]]  # sector, name, new, previous
    by_technique: list[dict[str, Any]]  # technique, name, new, previous
    top_per_sector: dict[str, list[Item]]  # sector name -> best new matches
    techniques: TrendReport | None
    use_cases: TrendReport | None


def _counts_between(
    store: Store, table: sa.Table, column: sa.Column, start: datetime, end: datetime
) -> Counter:
    query = (
        sa.select(column, sa.func.count(sa.distinct(table.c.doc_id)))
        .select_from(table.join(documents, documents.c.id == table.c.doc_id))
        .where(documents.c.published >= start, documents.c.published < end)
        .group_by(column)
    )
    with store.engine.connect() as conn:
        return Counter({k: int(n) for k, n in conn.execute(query)})


def _count_docs(store: Store, start: datetime, end: datetime) -> int:
    query = sa.select(sa.func.count()).where(
        documents.c.published >= start, documents.c.published < end
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def week_overview(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    per_sector: int = 3,
    trend_weeks: int = 12,
) -> WeekOverview:
    """What arrived in the last seven days, compared with the seven before.

    "Now" is the newest publication date when the corpus is older than today, so a store
    holding only older documents still shows its latest week rather than an empty one.
    Emerging themes are index.trends.emerging_themes (the dashboard caches them apart).
    """
    taxonomy = load_taxonomy(settings)
    end = naive_utc(default_now(store, now))
    start = end - timedelta(days=7)
    before = start - timedelta(days=7)
    total = store.count()
    new_docs = _count_docs(store, start, end)
    previous_docs = _count_docs(store, before, start)
    sec_now = _counts_between(store, doc_matches, doc_matches.c.sector, start, end)
    sec_before = _counts_between(store, doc_matches, doc_matches.c.sector, before, start)
    tech_now = _counts_between(store, doc_techniques, doc_techniques.c.technique, start, end)
    tech_before = _counts_between(store, doc_techniques, doc_techniques.c.technique, before, start)
    by_sector = [
        {"sector": s.key, "name": s.name, "new": sec_now[s.key], "previous": sec_before[s.key]}
        for s in taxonomy.sectors
    ]
    by_technique = sorted(
        (
            {
                "technique": t.key,
                "name": t.name,
                "new": tech_now[t.key],
                "previous": tech_before[t.key],
            }
            for t in taxonomy.techniques
        ),
        key=lambda r: (-r["new"], r["name"]),
    )
    top: dict[str, list[Item]] = {}
    for sector in taxonomy.sectors:
        top[sector.name] = sector_items(
            store, settings, sector.key, since=start, until=end, limit=per_sector, taxonomy=taxonomy
        )
    if total:
        tech_report = trend_report(store, settings, by="technique", weeks=trend_weeks, now=now)
        uc_report = trend_report(store, settings, by="use_case", weeks=trend_weeks, now=now)
    else:
        tech_report = uc_report = None
    return WeekOverview(
        start=start,
        end=end,
        total_documents=total,
        new_documents=new_docs,
        previous_documents=previous_docs,
        by_sector=by_sector,
        by_technique=by_technique,
        top_per_sector=top,
        techniques=tech_report,
        use_cases=uc_report,
    )


# -- sectors -----------------------------------------------------------------------------


def sector_items(
    store: Store,
    settings: Settings,
    sector: str,
    *,
    use_case: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10,
    taxonomy: Taxonomy | None = None,
) -> list[Item]:
    """The best matches of a sector (or one of its use cases), best score first."""
    taxonomy = taxonomy or load_taxonomy(settings)
    sector_key = taxonomy.sector(sector).key
    names = {uc.key: uc.name for uc in taxonomy.use_cases}
    sector_names = {s.key: s.name for s in taxonomy.sectors}
    query = (
        sa.select(doc_matches.c.doc_id, doc_matches.c.use_case)
        .select_from(doc_matches.join(documents, documents.c.id == doc_matches.c.doc_id))
        .where(doc_matches.c.sector == sector_key)
        .order_by(doc_matches.c.score.desc(), documents.c.published.desc(), documents.c.id)
    )
    if use_case:
        query = query.where(doc_matches.c.use_case == taxonomy.use_case(use_case, sector_key).key)
    if since is not None:
        query = query.where(documents.c.published >= naive_utc(since))
    if until is not None:
        query = query.where(documents.c.published < naive_utc(until))
    with store.engine.connect() as conn:
        pairs: list[tuple[int, str]] = []
        seen: set[int] = set()
        for doc_id, uc in conn.execute(query.limit(limit * 4)):
            if doc_id in seen:  # one row per document: its best use case of this sector
                continue
            seen.add(doc_id)
            pairs.append((doc_id, uc))
            if len(pairs) >= limit:
                break
    ids = [d for d, _ in pairs]
    docs = store.get_many(ids)
    matches = matches_for(store, ids)
    techs = techniques_for(store, ids)
    out = []
    for doc_id, uc in pairs:
        match = next(m for m in matches[doc_id] if m.use_case == uc)
        out.append(
            _item(
                docs[doc_id],
                score=match.score,
                sector=sector_names.get(match.sector, match.sector),
                sector_key=match.sector,
                use_case=uc,
                use_case_name=names.get(uc, uc),
                why=match.why,
                passage=match.passage,
                terms=list(match.terms),
                techniques=[t.technique for t in techs[doc_id]],
            )
        )
    return out


# A use case scored by its description is asked about a document only from this probability
# on (about 2 standard deviations above the judged papers' similarity to the description):
# below it, no document of the corpus comes close, and the question would only waste time.
ASK_USE_CASE_FROM = 0.05


def ask_items(
    store: Store, settings: Settings, sector: str, *, n: int = 3, new_use_cases: int = 3
) -> list[Item]:
    """Documents whose "fits / does not fit" answer would teach the matcher most about
    ``sector`` (closest to its threshold, not yet answered), as items to ask about; then, for
    up to ``new_use_cases`` use cases of the sector still scored by their description (one
    an operator added, or one with fewer than MIN_POSITIVES confirmed papers; those with the
    fewest first), the document most likely to belong to each (if any is likely enough,
    ASK_USE_CASE_FROM), asked with that use case."""
    taxonomy = load_taxonomy(settings)
    sector_obj = taxonomy.sector(sector)
    model = load_matcher(settings, settings.model, taxonomy)
    learning = [
        (target.positives, uc)
        for uc in sector_obj.use_cases
        if model
        and (target := model.targets.get(f"{sector_obj.key}/{uc.key}")) is not None
        and target.by_description
    ]
    pool = ask_pool(store, settings, taxonomy)  # read once for every question below
    # The use cases' questions are picked first, so that the sector's own (near its
    # threshold) do not take their likeliest papers.
    about_use_cases: list[tuple[int, float, UseCase | None]] = []
    for _, uc in sorted(learning, key=lambda pair: pair[0]):
        if pool is None or len(about_use_cases) >= new_use_cases:
            break
        taken = {doc_id for doc_id, _, _ in about_use_cases}
        about_use_cases += [
            (d, p, uc)
            for d, p in pool.pick(sector_obj.key, n=1, use_case=uc.key, skip=taken)
            if p >= ASK_USE_CASE_FROM
        ]
    taken = {doc_id for doc_id, _, _ in about_use_cases}
    about_sector: list[tuple[int, float, UseCase | None]] = (
        [(d, p, None) for d, p in pool.pick(sector_obj.key, n=n, skip=taken)] if pool else []
    )
    asks = about_sector + about_use_cases
    docs = store.get_many([d for d, _, _ in asks])
    out = []
    for doc_id, probability, uc in asks:
        if doc_id not in docs:
            continue
        doc = docs[doc_id]
        if uc is None:
            threshold = model.targets[sector_obj.key].threshold if model else 0.5
            why = (
                f"The matcher is unsure whether this fits {sector_obj.name}: probability "
                f"{probability:.2f}, threshold {threshold:.2f}."
            )
        else:
            known = model.targets[f"{sector_obj.key}/{uc.key}"].positives if model else 0
            why = (
                f"Veille knows {counted(known, 'paper')} of the use case '{uc.name}' and "
                f"scores it by its description until it knows {MIN_POSITIVES}: does this one "
                f"belong to it? Probability {probability:.2f}."
            )
        out.append(
            _item(
                doc,
                score=probability,
                sector=sector_obj.name,
                sector_key=sector_obj.key,
                use_case=uc.key if uc else "",
                use_case_name=uc.name if uc else "",
                threshold=None if uc else threshold,
                why=why,
                snippet=make_snippet(doc.text, doc.title, 300),
            )
        )
    return out


@dataclass(slots=True)
class UseCaseItems:
    key: str
    name: str
    description: str
    items: list[Item]


def sector_view(
    store: Store,
    settings: Settings,
    sector: str,
    *,
    since: datetime | None = None,
    per_use_case: int = 10,
) -> list[UseCaseItems]:
    """Per use case of the sector, its ranked matches."""
    taxonomy = load_taxonomy(settings)
    sector_obj = taxonomy.sector(sector)
    out = []
    for view in sector_overview(
        store, settings, sector_obj.key, since=since, per_use_case=per_use_case
    ):
        items = [
            _item(
                doc,
                score=m.score,
                sector=sector_obj.name,
                sector_key=sector_obj.key,
                use_case=view.use_case.key,
                use_case_name=view.use_case.name,
                why=m.why,
                passage=m.passage,
                terms=list(m.terms),
                techniques=[t.technique for t in techs],
            )
            for doc, m, techs in view.items
        ]
        out.append(
            UseCaseItems(view.use_case.key, view.use_case.name, view.use_case.description, items)
        )
    return out


def heatmap(store: Store, settings: Settings, *, since: datetime | None = None) -> list[dict]:
    """Documents per (sector, technique): rows for a heatmap and for its table alternative."""
    taxonomy = load_taxonomy(settings)
    query = (
        sa.select(
            doc_matches.c.sector,
            doc_techniques.c.technique,
            sa.func.count(sa.distinct(doc_matches.c.doc_id)),
        )
        .select_from(
            doc_matches.join(doc_techniques, doc_techniques.c.doc_id == doc_matches.c.doc_id)
        )
        .group_by(doc_matches.c.sector, doc_techniques.c.technique)
    )
    if since is not None:
        query = query.join(documents, documents.c.id == doc_matches.c.doc_id).where(
            documents.c.published >= naive_utc(since)
        )
    with store.engine.connect() as conn:
        counts = {(s, t): int(n) for s, t, n in conn.execute(query)}
    return [
        {"sector": s.name, "technique": t.name, "documents": counts.get((s.key, t.key), 0)}
        for s in taxonomy.sectors
        for t in taxonomy.techniques
    ]


# -- crawl runs --------------------------------------------------------------------------


def open_crawls(store: Store, *, now: datetime, stale_after: float = 6 * 3600) -> list[CrawlRun]:
    """Crawl runs still open, with what they did so far (crawlers record it as they go).

    A run open for longer than ``stale_after`` seconds was stopped without closing (a killed
    process); it is not counted as in progress.
    """
    return [
        run
        for run in store.recent_runs(200)
        if run.status == "running" and (now - run.started).total_seconds() <= stale_after
    ]


@dataclass(slots=True)
class SourceRuns:
    """Crawl health: documents per source, the last run of each source, the recent runs."""

    documents: int
    by_source: dict[str, int]
    latest: list[CrawlRun]
    runs: list[CrawlRun]


def source_runs(store: Store, *, limit: int = 50) -> SourceRuns:
    """The last run per source among the ``limit`` most recent runs, and those runs."""
    runs = store.recent_runs(limit)
    latest: dict[str, CrawlRun] = {}
    for run in runs:
        latest.setdefault(run.source, run)
    stats = store.stats()
    return SourceRuns(stats["documents"], stats["by_source"], list(latest.values()), runs)

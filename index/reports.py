"""What the dashboard pages show, computed without Streamlit so it can be tested on its own.

Every function takes the store and settings and returns plain data (dataclasses, lists of
dicts). Text that came from a crawl is returned as it was stored; the page escapes it with
:func:`md_escape` at display time, and the exports escape it for their own format.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from core.models import Document, naive_utc
from core.settings import Settings
from core.store import Store, documents
from index.learner import load_matcher, uncertain_documents
from index.matching import (
    doc_matches,
    doc_techniques,
    filter_ids,
    matches_for,
    sector_overview,
    techniques_for,
)
from index.maturity import Maturity, maturity
from index.search import Searcher, make_snippet, published_str
from index.taxonomy import Taxonomy, load_taxonomy
from index.trends import Theme, TrendReport, default_now, emerging_themes, trend_report

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$])")


def md_escape(text: str | None) -> str:
    """Make untrusted text inert in Streamlit Markdown: no markup, no HTML, no links."""
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def safe_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) link, else None (no javascript:, data:, ...)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(c in url for c in "()<> \"'"):
        return None
    return url.strip()


def md_link(label: str, url: str | None) -> str:
    """An escaped Markdown link, or the escaped label alone when the URL is not safe."""
    target = safe_url(url)
    text = md_escape(label)
    return f"[{text}]({target})" if target else text


# -- items -------------------------------------------------------------------------------


@dataclass(slots=True)
class Item:
    """One document as a row of a list: enough to show it and to export it."""

    doc_id: int
    id: str
    title: str
    url: str
    published: str | None
    kind: str
    source: str
    score: float = 0.0
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

    @property
    def maturity_label(self) -> str:
        if not self.maturity_signals:
            return "Maturity: no signal in the text"
        return f"Maturity {len(self.maturity_signals)}/4: " + ", ".join(self.maturity_signals)

    def row(self) -> dict[str, Any]:
        return {
            "sector": self.sector,
            "use_case": self.use_case_name or self.use_case,
            "score": round(self.score, 3),
            "title": self.title,
            "published": self.published or "",
            "kind": self.kind,
            "source": self.source,
            "techniques": ", ".join(self.techniques),
            "maturity": self.maturity,
            "maturity signals": ", ".join(self.maturity_signals),
            "why": self.why,
            "url": self.url,
            "id": self.id,
        }


def _item(doc: Document, **fields: Any) -> Item:
    ripe = maturity(doc)
    return Item(
        doc_id=doc.id or 0,
        id=doc.canonical_id,
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
    themes: list[Theme]


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
    themes: bool = True,
) -> WeekOverview:
    """What arrived in the last seven days, compared with the seven before.

    "Now" is the newest publication date when the corpus is older than today, so a store
    holding only older documents still shows its latest week rather than an empty one.
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
    found = emerging_themes(store, settings, now=now) if themes and total else []
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
        themes=found,
    )


def trending_rows(report: TrendReport | None, limit: int = 10) -> list[dict[str, Any]]:
    """The items to point out: bursts first, then the strongest growth with some volume."""
    if report is None:
        return []
    ranked = sorted(
        (i for i in report.items if i.total > 0),
        key=lambda i: (not i.burst, -(i.recent - i.expected), -i.growth, i.name),
    )
    return [
        {
            "name": i.name,
            "sector": i.sector or "",
            "last 2 weeks": i.recent,
            "expected": round(i.expected, 1),
            "growth": f"{i.growth:+.0%}",
            "total": i.total,
            "signal": "burst" if i.burst else ("new" if i.new else ""),
        }
        for i in ranked[:limit]
    ]


def series_rows(report: TrendReport) -> list[dict[str, Any]]:
    """Long-format weekly series (week, name, documents, burst) for charts and tables."""
    rows = []
    for item in report.items:
        label = item.name if not item.sector else f"{item.sector}: {item.name}"
        for week, count in zip(report.weeks, item.weekly, strict=True):
            rows.append({"week": week, "name": label, "documents": count, "burst": item.burst})
    return rows


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


def ask_items(store: Store, settings: Settings, sector: str, *, n: int = 3) -> list[Item]:
    """Documents whose "fits / does not fit" answer would teach the matcher most about
    ``sector`` (closest to its threshold, not yet answered), as items to ask about."""
    taxonomy = load_taxonomy(settings)
    sector_obj = taxonomy.sector(sector)
    picked = uncertain_documents(store, settings, taxonomy, sector_obj.key, n=n)
    docs = store.get_many([d for d, _ in picked])
    model = load_matcher(settings, settings.model, taxonomy)
    threshold = model.targets[sector_obj.key].threshold if model else 0.5
    out = []
    for doc_id, probability in picked:
        if doc_id not in docs:
            continue
        doc = docs[doc_id]
        out.append(
            _item(
                doc,
                score=probability,
                sector=sector_obj.name,
                sector_key=sector_obj.key,
                why=(
                    f"The matcher is unsure whether this fits {sector_obj.name}: probability "
                    f"{probability:.2f}, threshold {threshold:.2f}."
                ),
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


# -- exports -----------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    # A crawled title starting with "=" must not become a spreadsheet formula.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def to_markdown(items: list[Item], *, title: str) -> str:
    """A workshop handout: one section per use case, escaped titles, reasons and links."""
    lines = [f"# {md_escape(title)}", ""]
    if not items:
        lines.append("No matching innovation yet.")
        return "\n".join(lines) + "\n"
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.use_case_name or item.use_case or "Results"].append(item)
    for name, group in groups.items():
        lines += [f"## {md_escape(name)}", ""]
        for item in group:
            date = f" ({item.published})" if item.published else ""
            lines.append(f"- **{md_link(item.title, item.url)}**{md_escape(date)}")
            details = [f"score {item.score:.2f}", item.maturity_label]
            if item.techniques:
                details.append("techniques: " + ", ".join(item.techniques))
            lines.append(f"  - {md_escape('; '.join(details))}")
            if item.why:
                lines.append(f"  - Why: {md_escape(item.why)}")
        lines.append("")
    return "\n".join(lines)


# -- search ------------------------------------------------------------------------------


def search_items(
    searcher: Searcher,
    query: str,
    *,
    k: int = 20,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    source: str | None = None,
    sector: str | None = None,
    use_case: str | None = None,
    technique: str | None = None,
    mode: str = "hybrid",
) -> list[Item]:
    """Search with every filter applied before ranking, hits annotated with their matches."""
    if not query.strip():
        return []
    restrict = filter_ids(
        searcher.store, searcher.settings, sector=sector, use_case=use_case, technique=technique
    )
    hits = searcher.search(
        query,
        k=k,
        since=since,
        until=until,
        kind=kind,
        source=source,
        mode=mode,  # type: ignore[arg-type]
        ids=restrict,
    )
    return _annotate(searcher, hits)


def similar_items(searcher: Searcher, identifier: str, *, k: int = 10) -> list[Item]:
    return _annotate(searcher, searcher.similar(identifier, k=k))


def _annotate(searcher: Searcher, hits: list) -> list[Item]:
    ids = [h.doc_id for h in hits]
    docs = searcher.store.get_many(ids)
    matches = matches_for(searcher.store, ids)
    techs = techniques_for(searcher.store, ids)
    taxonomy = load_taxonomy(searcher.settings)
    names = {uc.key: uc.name for uc in taxonomy.use_cases}
    sector_names = {s.key: s.name for s in taxonomy.sectors}
    out = []
    for hit in hits:
        best = matches[hit.doc_id][0] if matches[hit.doc_id] else None
        ripe = maturity(docs[hit.doc_id]) if hit.doc_id in docs else None
        out.append(
            Item(
                doc_id=hit.doc_id,
                id=hit.id,
                title=hit.title,
                url=hit.url,
                published=hit.published,
                kind=hit.kind,
                source=hit.source,
                score=hit.score,
                sector=sector_names.get(best.sector, best.sector) if best else "",
                sector_key=best.sector if best else "",
                use_case=best.use_case if best else "",
                use_case_name=names.get(best.use_case, "") if best else "",
                why=best.why if best else "",
                techniques=[t.technique for t in techs[hit.doc_id]],
                snippet=hit.snippet,
                maturity=ripe.score if ripe else 0.0,
                maturity_signals=ripe.signals if ripe else [],
            )
        )
    return out


def search_options(store: Store, settings: Settings) -> dict[str, list[str]]:
    """Choices for the search filters: kinds and sources present, sectors, use cases, techniques."""
    taxonomy = load_taxonomy(settings)
    stats = store.stats()
    return {
        "kinds": sorted(stats["by_kind"]),
        "sources": sorted(stats["by_source"]),
        "sectors": [s.key for s in taxonomy.sectors],
        "use_cases": [uc.key for uc in taxonomy.use_cases],
        "techniques": [t.key for t in taxonomy.techniques],
    }


def document_title(store: Store, identifier: str) -> str:
    """The stored title of a document, or "" when it is unknown."""
    doc = store.resolve(identifier)
    return doc.title if doc else ""


# -- one document ------------------------------------------------------------------------


@dataclass(slots=True)
class DocumentDetail:
    document: Document
    published: str | None
    summary: str
    matches: list[dict[str, Any]]
    techniques: list[dict[str, Any]]
    maturity: Maturity


def document_detail(store: Store, settings: Settings, identifier: str) -> DocumentDetail | None:
    """A document by canonical id, arXiv id or URL, with its matches; None when unknown."""
    doc = store.resolve(identifier.strip()) if identifier.strip() else None
    if doc is None or doc.id is None:
        return None
    taxonomy = load_taxonomy(settings)
    names = {uc.key: uc.name for uc in taxonomy.use_cases}
    sector_names = {s.key: s.name for s in taxonomy.sectors}
    tech_names = {t.key: t.name for t in taxonomy.techniques}
    matches = matches_for(store, [doc.id])[doc.id]
    techs = techniques_for(store, [doc.id])[doc.id]
    summary = doc.text if len(doc.text) <= 1500 else make_snippet(doc.text, doc.title, 1500)
    return DocumentDetail(
        document=doc,
        published=published_str(doc),
        summary=summary,
        matches=[
            {
                "sector": sector_names.get(m.sector, m.sector),
                "use_case": names.get(m.use_case, m.use_case),
                "sector_key": m.sector,
                "use_case_key": m.use_case,
                "score": round(m.score, 3),
                "why": m.why,
                "passage": m.passage,
                "terms": list(m.terms),
            }
            for m in matches
        ],
        techniques=[
            {"technique": tech_names.get(t.technique, t.technique), "score": round(t.score, 3)}
            for t in techs
        ],
        maturity=maturity(doc),
    )


# -- sources -----------------------------------------------------------------------------


def crawls_in_progress(
    store: Store, *, now: datetime, stale_after: float = 6 * 3600
) -> list[dict[str, Any]]:
    """Crawl runs still open, with what they did so far (crawlers record it as they go).

    A run open for longer than ``stale_after`` seconds was stopped without closing (a killed
    process); it is not shown as in progress.
    """
    rows = []
    for run in store.recent_runs(200):
        if run.status != "running":
            continue
        seconds = (now - run.started).total_seconds()
        if seconds > stale_after:
            continue
        rows.append(
            {
                "source": run.source,
                "started": run.started.strftime("%Y-%m-%d %H:%M"),
                "running for": f"{max(seconds, 0) / 60:.0f} min",
                "pages": run.pages,
                "fetched": run.fetched,
                "new": run.new,
                "updated": run.updated,
                "errors": run.errors,
            }
        )
    return rows


def source_health(store: Store, *, limit: int = 50) -> dict[str, Any]:
    """Crawl health: the last run per source, recent runs, and documents per source."""
    runs = store.recent_runs(limit)
    latest: dict[str, Any] = {}
    for run in runs:
        if run.source not in latest:
            latest[run.source] = run
    stats = store.stats()
    return {
        "documents": stats["documents"],
        "by_source": stats["by_source"],
        "latest": [
            {
                "source": run.source,
                "status": run.status,
                "started": run.started.strftime("%Y-%m-%d %H:%M"),
                "finished": run.finished.strftime("%Y-%m-%d %H:%M") if run.finished else "",
                "fetched": run.fetched,
                "new": run.new,
                "updated": run.updated,
                "errors": run.errors,
                "last error": run.last_error,
            }
            for run in latest.values()
        ],
        "runs": [
            {
                "source": run.source,
                "status": run.status,
                "started": run.started.strftime("%Y-%m-%d %H:%M"),
                "new": run.new,
                "updated": run.updated,
                "errors": run.errors,
            }
            for run in runs
        ],
    }

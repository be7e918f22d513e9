"""Looking things up for people: search results with their matches, one document's detail.

The dashboard's search and document pages and the API read these; each result carries the
sector, use case and technique names of its matches, so a page only lays them out. Text that
came from a crawl is returned as it was stored (escaping is the page's).

    items = search_items(searcher, "graph neural networks for fraud", sector="finance")
    detail = document_detail(store, settings, "1706.03762")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.models import Document
from core.settings import Settings
from core.store import Store
from index.matching import UseCaseView, filter_ids, matches_for, techniques_for
from index.maturity import Maturity, maturity
from index.reports import Item
from index.search import Searcher, make_snippet, published_str
from index.taxonomy import Sector, load_taxonomy


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
    return _annotate(searcher, hits, score_kind="keyword" if mode == "keyword" else "query")


def similar_items(searcher: Searcher, identifier: str, *, k: int = 10) -> list[Item]:
    return _annotate(searcher, searcher.similar(identifier, k=k), score_kind="similarity")


def _annotate(searcher: Searcher, hits: list, *, score_kind: str) -> list[Item]:
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
                canonical_id=hit.canonical_id,
                title=hit.title,
                url=hit.url,
                published=hit.published,
                kind=hit.kind,
                source=hit.source,
                score=hit.score,
                score_kind=score_kind,
                similarity=hit.similarity,
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


def sector_json(sector: Sector, views: list[UseCaseView]) -> dict[str, Any]:
    """One sector's best matches per use case as plain JSON (the CLI's --json and the API)."""
    return {
        "sector": sector.key,
        "name": sector.name,
        "use_cases": [
            {
                "use_case": v.use_case.key,
                "name": v.use_case.name,
                "matches": [
                    {
                        "id": doc.canonical_id,
                        "title": doc.title,
                        "url": doc.url,
                        "published": published_str(doc),
                        "score": round(m.score, 6),
                        "why": m.why,
                        "passage": m.passage,
                        "terms": list(m.terms),
                        "techniques": [t.technique for t in techs],
                    }
                    for doc, m, techs in v.items
                ],
            }
            for v in views
        ],
    }

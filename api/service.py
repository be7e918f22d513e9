"""What the API's routes call: one loaded searcher and the index/core functions, shaped as
the JSON the routes return. Routes hold no SQL and no FAISS; this module holds no HTTP.

The searcher (model, FAISS, BM25) is loaded once per process. Before each query the service
checks the store's generation, so a process catches up with writes made by others (a crawl,
``veille index``, another replica) without restarting.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.settings import Settings
from core.store import Store
from index.feedback import record_feedback
from index.indexer import index_folder, read_manifest
from index.lookup import document_detail, sector_json
from index.matching import filter_ids, follow_answers, hit_annotations, sector_overview
from index.search import Searcher, weak_match_note
from index.taxonomy import load_taxonomy
from index.trends import emerging_themes, trend_report

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SearchQuery:
    q: str
    k: int = 10
    offset: int = 0
    mode: str = "hybrid"
    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None
    source: str | None = None
    sector: str | None = None
    use_case: str | None = None
    technique: str | None = None


class Service:
    def __init__(self, settings: Settings, store: Store, searcher: Searcher | None = None) -> None:
        self.settings = settings
        self.store = store
        self._searcher = searcher
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    # -- the searcher, loaded once ----------------------------------------------------------

    def searcher(self) -> Searcher:
        with self._lock:
            if self._searcher is None:
                started = time.perf_counter()
                self._searcher = Searcher.open(self.settings, store=self.store)
                self.load_seconds = time.perf_counter() - started
                log.info("model and indexes loaded in %.1f s", self.load_seconds)
            else:
                self._searcher.refresh()
            return self._searcher

    # -- reading ------------------------------------------------------------------------------

    def _hits_json(self, hits: list) -> list[dict[str, Any]]:
        notes = hit_annotations(self.store, [h.doc_id for h in hits])
        return [{**h.to_json(), **notes[h.doc_id]} for h in hits]

    def search(self, query: SearchQuery) -> dict[str, Any]:
        searcher = self.searcher()
        restrict = filter_ids(
            self.store,
            self.settings,
            sector=query.sector,
            use_case=query.use_case,
            technique=query.technique,
        )
        hits = searcher.search(
            query.q,
            k=query.offset + query.k + 1,  # one more tells whether a next page exists
            since=query.since,
            until=query.until,
            kind=query.kind,
            source=query.source,
            mode=query.mode,
            ids=restrict,
        )
        page = hits[query.offset : query.offset + query.k]
        more = len(hits) > query.offset + query.k
        return {
            "query": query.q,
            "mode": query.mode,
            "k": query.k,
            "offset": query.offset,
            "next_offset": query.offset + query.k if more else None,
            "note": weak_match_note([h.similarity for h in hits]),
            "hits": self._hits_json(page),
        }

    def similar(self, identifier: str, k: int) -> dict[str, Any]:
        hits = self.searcher().similar(identifier, k=k)
        doc = self.store.resolve(identifier)
        return {"id": doc.canonical_id if doc else identifier, "hits": self._hits_json(hits)}

    def document(self, identifier: str) -> dict[str, Any]:
        detail = document_detail(self.store, self.settings, identifier)
        if detail is None:
            raise KeyError(f"no document with id {identifier!r}")
        doc = detail.document
        tech_keys = {t.name: t.key for t in load_taxonomy(self.settings).techniques}
        return {
            "id": doc.canonical_id,
            "title": doc.title,
            "url": doc.url,
            "published": detail.published,
            "kind": doc.kind,
            "source": doc.source,
            "authors": list(doc.authors),
            "categories": list(doc.categories),
            "summary": detail.summary,
            "matches": [
                {
                    "sector": m["sector_key"],
                    "sector_name": m["sector"],
                    "use_case": m["use_case_key"],
                    "use_case_name": m["use_case"],
                    "score": m["score"],
                    "why": m["why"],
                    "passage": m["passage"],
                    "terms": m["terms"],
                }
                for m in detail.matches
            ],
            "techniques": [
                {
                    "technique": tech_keys.get(t["technique"], t["technique"]),
                    "name": t["technique"],
                    "score": t["score"],
                }
                for t in detail.techniques
            ],
            "maturity": {"score": detail.maturity.score, "signals": detail.maturity.signals},
        }

    def sectors(self) -> dict[str, Any]:
        taxonomy = load_taxonomy(self.settings)
        return {
            "sectors": [
                {
                    "key": s.key,
                    "name": s.name,
                    "use_cases": [
                        {"key": uc.key, "name": uc.name, "description": uc.description}
                        for uc in s.use_cases
                    ],
                }
                for s in taxonomy.sectors
            ]
        }

    def sector(self, key: str, *, since: datetime | None, k: int) -> dict[str, Any]:
        sector = load_taxonomy(self.settings).sector(key)
        views = sector_overview(self.store, self.settings, sector.key, since=since, per_use_case=k)
        return sector_json(sector, views)

    def trends(self, *, by: str, weeks: int, until: datetime | None) -> dict[str, Any]:
        return trend_report(self.store, self.settings, by=by, weeks=weeks, now=until).to_json()

    def themes(self, *, until: datetime | None) -> dict[str, Any]:
        found = emerging_themes(self.store, self.settings, now=until)
        return {
            "themes": [
                {
                    "label": t.label,
                    "keywords": t.keywords,
                    "terms": t.terms,
                    "size": t.size,
                    "earlier": t.earlier,
                    "growth": t.growth,
                    "documents": [{"id": d.canonical_id, "title": d.title} for d in t.documents],
                }
                for t in found
            ],
            "note": found.note,
            "crawl_changes": found.crawl_changes,
        }

    # -- writing ------------------------------------------------------------------------------

    def feedback(
        self, document: str, *, sector: str, use_case: str | None, fits: bool, by: str
    ) -> dict[str, Any]:
        answer = record_feedback(
            self.store,
            self.settings,
            document,
            sector=sector,
            use_case=use_case or None,
            fits=fits,
            by=by,
            origin="api",
        )
        follow_answers(self.store, self.settings, [answer.canonical_id])
        return {
            "id": answer.id,
            "document": answer.canonical_id,
            "sector": answer.sector,
            "use_case": answer.use_case,
            "fits": answer.fits,
            "by": answer.by,
            "created": answer.created.isoformat(),
        }

    def health(self) -> dict[str, Any]:
        searcher = self._searcher
        indexed = 0
        if searcher is not None:  # what is on disk now (the next request loads it), not
            # what was loaded at the last request: a cheap read, fit for a probe
            current = read_manifest(index_folder(self.settings, searcher.embedder.name))
            indexed = (current or searcher.indexes.manifest).count
        return {
            "status": "ok" if searcher is not None else "loading",
            "documents": self.store.count(),
            "indexed": indexed,
            "generation": self.store.generation(),
        }

"""Search: dense (FAISS), keyword (BM25) and hybrid (fusion of both), with filters.

Filters restrict the candidate ids *before* ranking, so a filtered search returns the best
``k`` among the documents that pass, not what survives of an unfiltered top ``k``.

Example::

    searcher = Searcher.open(load_settings())
    for hit in searcher.search("graph neural networks for transaction fraud", k=5):
        print(hit.score, hit.title)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from core.models import Document, Hit
from core.settings import Settings
from core.store import Store
from index.embedder import Embedder, get_embedder
from index.indexer import LoadedIndexes
from index.keyword import tokenize
from index.pipeline import load_indexes

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
SNIPPET_CHARS = 240


@dataclass(frozen=True, slots=True)
class FusionParams:
    """How hybrid mode merges the dense and keyword rankings.

    ``rrf``: weighted reciprocal rank fusion, ``w / (rrf_k + rank)`` summed over both lists.
    ``convex``: ``alpha * dense + (1 - alpha) * keyword`` after scaling each list's scores
    to [0, 1] by its maximum.
    """

    method: Literal["rrf", "convex"] = "convex"
    rrf_k: int = 60
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    alpha: float = 0.65
    depth: int = 1000


DEFAULT_FUSION = FusionParams()


def fuse(
    dense: tuple[np.ndarray, np.ndarray],
    keyword: tuple[np.ndarray, np.ndarray],
    params: FusionParams = DEFAULT_FUSION,
) -> list[tuple[int, float]]:
    """Merge two (scores, ids) rankings into one list of (id, fused score), best first."""
    fused: dict[int, float] = {}
    d_scores, d_ids = dense
    k_scores, k_ids = keyword
    if params.method == "rrf":
        for rank, doc in enumerate(d_ids.tolist()):
            fused[doc] = fused.get(doc, 0.0) + params.dense_weight / (params.rrf_k + rank + 1)
        for rank, doc in enumerate(k_ids.tolist()):
            fused[doc] = fused.get(doc, 0.0) + params.keyword_weight / (params.rrf_k + rank + 1)
    else:
        d_max = float(d_scores.max()) if len(d_scores) else 1.0
        k_max = float(k_scores.max()) if len(k_scores) else 1.0
        for score, doc in zip(d_scores.tolist(), d_ids.tolist(), strict=True):
            fused[doc] = fused.get(doc, 0.0) + params.alpha * max(score, 0.0) / (d_max or 1.0)
        for score, doc in zip(k_scores.tolist(), k_ids.tolist(), strict=True):
            fused[doc] = fused.get(doc, 0.0) + (1 - params.alpha) * score / (k_max or 1.0)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def make_snippet(text: str, query: str, limit: int = SNIPPET_CHARS) -> str:
    """The sentence of ``text`` sharing most words with ``query``, cut to ``limit`` chars."""
    sentences = [s for s in _SENTENCE.split(text) if s.strip()] or [text]
    wanted = set(tokenize(query))
    best = max(
        sentences,
        key=lambda s: (len(wanted & set(tokenize(s))), -sentences.index(s)),
    )
    if len(best) <= limit:
        return best
    cut = best[:limit].rsplit(" ", 1)[0]
    return cut + "…"


# Below this cosine between a query and its closest document, nothing stored is about the
# query. With all-MiniLM-L6-v2 over 1,000 arXiv machine-learning abstracts, 13 of 15 queries
# off the watch's subject ("chocolate cake recipe", "my cat sleeps on the sofa") come closest
# below it and 20 of 20 on-subject ones above (0.29-0.61); larger corpora lift both
# (BENCHMARKS.md, "Weak matches").
WEAK_SIMILARITY = 0.28


def weak_match_note(similarities: Sequence[float | None]) -> str:
    """A sentence for results whose best similarity to the query is below WEAK_SIMILARITY
    ("" when one is close enough, or when meaning was not compared: keyword mode)."""
    known = [s for s in similarities if s is not None]
    if not known or max(known) >= WEAK_SIMILARITY:
        return ""
    return (
        f"No document is close in meaning to this query (the closest has similarity "
        f"{max(known):.2f}; related documents usually reach {WEAK_SIMILARITY:.2f} or more). "
        "These are the nearest ones, and may not be about it: try other words."
    )


def make_hit(doc: Document, score: float, query: str, similarity: float | None = None) -> Hit:
    """A search hit for ``doc``, its snippet the sentence closest to ``query``."""
    return Hit(
        canonical_id=doc.canonical_id,
        title=doc.title,
        url=doc.url,
        published=published_str(doc),
        kind=doc.kind,
        source=doc.source,
        score=float(score),
        snippet=make_snippet(doc.text, query),
        doc_id=doc.id or 0,
        similarity=None if similarity is None else float(similarity),
    )


def published_str(doc: Document) -> str | None:
    if doc.published is None:
        return None
    if (doc.published.hour, doc.published.minute, doc.published.second) == (0, 0, 0):
        return doc.published.date().isoformat()
    return doc.published.isoformat()


class Searcher:
    """Loaded resources for searching: store, embedder, indexes. Build once, query often."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        embedder: Embedder,
        indexes: LoadedIndexes,
        fusion: FusionParams = DEFAULT_FUSION,
    ) -> None:
        self.store = store
        self.settings = settings
        self.embedder = embedder
        self.indexes = indexes
        self.fusion = fusion

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        embedder: Embedder | None = None,
        show_progress: bool = False,
        fusion: FusionParams = DEFAULT_FUSION,
    ) -> Searcher:
        store = store or Store.from_settings(settings)
        embedder = embedder or get_embedder(settings.model, max_chars=settings.embed_max_chars)
        indexes = load_indexes(store, settings, embedder, show_progress=show_progress)
        return cls(store, settings, embedder, indexes, fusion)

    def refresh(self) -> bool:
        """Reload the indexes if the store moved on; True when something was reloaded."""
        if self.indexes.manifest.generation == self.store.generation():
            return False
        self.indexes = load_indexes(self.store, self.settings, self.embedder)
        return True

    # -- the verb -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        source: str | None = None,
        mode: Mode = "hybrid",
        ids: np.ndarray | None = None,
    ) -> list[Hit]:
        """Ranked hits for ``query``.

        >>> searcher.search("LSTM remaining useful life", k=5, mode="hybrid")  # doctest: +SKIP
        """
        return self.search_many(
            [query], k=k, since=since, until=until, kind=kind, source=source, mode=mode, ids=ids
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        source: str | None = None,
        mode: Mode = "hybrid",
        ids: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        """One ranked list per query, queries embedded in one batch."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        allowed = self.store.filter_ids(since=since, until=until, kind=kind, source=source, ids=ids)
        ranked, closeness = self._rank(queries, k=k, mode=mode, allowed=allowed)
        wanted = {doc for ranking in ranked for doc, _ in ranking}
        docs = self.store.get_many(wanted)
        return [
            [
                make_hit(docs[doc], score, query, close.get(doc))
                for doc, score in ranking
                if doc in docs
            ]
            for query, ranking, close in zip(queries, ranked, closeness, strict=True)
        ]

    def rank_many(
        self,
        queries: Sequence[str],
        *,
        k: int,
        mode: Mode,
        allowed: np.ndarray | None = None,
    ) -> list[list[tuple[int, float]]]:
        """(row id, score) rankings, without fetching documents (used by benchmarks)."""
        return self._rank(queries, k=k, mode=mode, allowed=allowed)[0]

    def _rank(
        self,
        queries: Sequence[str],
        *,
        k: int,
        mode: Mode,
        allowed: np.ndarray | None = None,
    ) -> tuple[list[list[tuple[int, float]]], list[dict[int, float]]]:
        """The rankings, and per query each dense candidate's cosine (empty in keyword mode)."""
        depth = max(k, self.fusion.depth) if mode == "hybrid" else k
        out: list[list[tuple[int, float]]] = []
        dense_results = None
        if mode in ("hybrid", "dense"):
            vectors = self.embedder.encode(list(queries), batch_size=64)
            scores, ids = self.indexes.vectors.search(vectors, depth, allowed=allowed)
            dense_results = [
                (scores[i][ids[i] >= 0], ids[i][ids[i] >= 0]) for i in range(len(queries))
            ]
        closeness = [
            dict(zip(d_ids.tolist(), d_scores.tolist(), strict=True))
            for d_scores, d_ids in (dense_results or [])
        ] or [{} for _ in queries]
        for i, query in enumerate(queries):
            if mode == "dense":
                d_scores, d_ids = dense_results[i]
                out.append(list(zip(d_ids.tolist(), d_scores.tolist(), strict=True))[:k])
                continue
            kw = self.indexes.keywords.search(query, depth, allowed=allowed)
            if mode == "keyword":
                out.append(list(zip(kw[1].tolist(), kw[0].tolist(), strict=True))[:k])
                continue
            out.append(fuse(dense_results[i], kw, self.fusion)[:k])
        return out, closeness

    def similar(self, canonical_id: str, *, k: int = 10) -> list[Hit]:
        """The documents closest to one document (itself and its duplicates excluded)."""
        doc = self.store.resolve(canonical_id)
        if doc is None or doc.id is None:
            raise KeyError(f"no document with id {canonical_id!r}")
        if doc.id not in set(self.indexes.vectors.ids.tolist()):
            raise KeyError(f"document {canonical_id!r} is not indexed yet: run `veille index`")
        vector = self.indexes.vectors.reconstruct(np.array([doc.id]))
        scores, ids = self.indexes.vectors.search(vector, k + 1)
        pairs = [
            (int(i), float(s))
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0 and i != doc.id
        ]
        docs = self.store.get_many([i for i, _ in pairs])
        return [make_hit(docs[i], s, doc.title, s) for i, s in pairs[:k] if i in docs]

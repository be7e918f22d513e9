"""The documents an emerging-theme search looks at: in scope, dated, with their vectors.

Only machine-learning documents are clustered: papers with one of :data:`ML_CATEGORIES`
among their arXiv categories, and any document (news, own loads) the technique tagger tagged.
Each document belongs to one stratum (its primary arXiv category, or its news source), and
the window is ordered by (date, canonical id) so that a seeded k-means gives the same themes
for the same data.

    window, out_of_scope = load_window(store, settings, start, end, embedder.dim)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from core.models import as_utc, naive_utc
from core.settings import Settings
from core.store import Store, documents
from index.matching import doc_techniques, week_number
from index.theme_labels import candidate_phrases
from index.vectors import vectors_for

# arXiv categories that are machine learning and AI for this watch. cs.RO and cs.IR are in:
# robot learning and recommender/retrieval models are what project leads ask about. eess.IV,
# cs.GR, cs.HC and the like are in only when cross-listed to one of these (or tagged).
ML_CATEGORIES = frozenset(
    {"cs.LG", "cs.AI", "cs.CL", "cs.CV", "cs.NE", "cs.IR", "cs.RO", "cs.MA", "stat.ML"}
)


@dataclass(slots=True)
class Window:
    """Everything loaded for one call: in-scope documents ordered by (date, canonical id)."""

    ids: np.ndarray
    vectors: np.ndarray
    times: np.ndarray  # publication time per document, seconds since 1970-01-01 UTC
    strata: list[str]
    canonical: list[str]
    titles: list[str]
    title_df: Counter | None = None  # phrase -> titles holding it, filled on first use


def in_scope(categories: Sequence[str], tagged: bool) -> bool:
    return tagged or any(c in ML_CATEGORIES for c in categories)


def stratum_of(kind: str, source: str, categories: Sequence[str], extra: dict | None) -> str:
    """The stratum growth is compared within: primary arXiv category, or the news source."""
    if kind == "paper" and categories:
        primary = (extra or {}).get("primary_category") or categories[0]
        return f"arxiv:{primary}"
    return f"{kind}:{source}"


def load_window(
    store: Store, settings: Settings, start: datetime, end: datetime, dim: int
) -> tuple[Window, int]:
    """In-scope documents published in [start, end) with their vectors; also the count of
    documents left out as out of scope."""
    lo, hi = naive_utc(start), naive_utc(end)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                documents.c.id,
                documents.c.canonical_id,
                documents.c.published,
                documents.c.kind,
                documents.c.source,
                documents.c.categories,
                documents.c.extra,
                documents.c.title,
            ).where(documents.c.published >= lo, documents.c.published < hi)
        ).all()
        first = week_number(start.astimezone(UTC))
        tagged = {
            r[0]
            for r in conn.execute(
                sa.select(doc_techniques.c.doc_id)
                .where(
                    doc_techniques.c.week >= first - 7, doc_techniques.c.week <= week_number(end)
                )
                .distinct()
            )
        }
    keep = [r for r in rows if in_scope(r.categories or [], r.id in tagged)]
    ids, vecs = vectors_for(store, settings.model, dim, ids=np.array([r.id for r in keep]))
    by_id = {r.id: r for r in keep}
    order = sorted(
        range(len(ids)),
        key=lambda i: (by_id[int(ids[i])].published, by_id[int(ids[i])].canonical_id),
    )
    chosen = [by_id[int(ids[i])] for i in order]
    window = Window(
        ids=ids[order] if len(ids) else ids,
        vectors=np.ascontiguousarray(vecs[order]) if len(ids) else vecs,
        times=np.array([as_utc(r.published).timestamp() for r in chosen]),
        strata=[stratum_of(r.kind, r.source, r.categories or [], r.extra) for r in chosen],
        canonical=[r.canonical_id for r in chosen],
        titles=[r.title for r in chosen],
    )
    return window, len(rows) - len(keep)


def background(window: Window) -> Counter:
    """In how many of the window's titles each phrase occurs (computed once per window)."""
    if window.title_df is None:
        counts: Counter = Counter()
        for title in window.titles:
            counts.update({key for key, _ in candidate_phrases(title)})
        counts["__total__"] = len(window.titles)
        window.title_df = counts
    return window.title_df

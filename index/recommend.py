""" "More like my shortlist": unseen documents that resemble what a use case's shortlist keeps
and differ from what it rejected.

Per use case, a logistic regression over the stored MiniLM vectors (nothing is embedded
again): the shortlisted entries that are not rejected are the positives (adopted and piloted
ones count double), the rejected ones and a fixed random sample of other documents the
negatives. Candidates are the nearest neighbours of the positives in the FAISS index, minus
everything already on the board; they are ranked by the model's probability. The model is
cached per use case and retrained when the shortlist or the store changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from core.models import Document
from core.settings import Settings
from core.store import Store
from index.indexer import index_folder, read_manifest
from index.shortlists import list_entries, resolve_use_case
from index.vector_index import VectorIndex
from index.vectors import vectors_for

MIN_POSITIVES = 2
BACKGROUND = 400
NEIGHBOURS = 100
_cache: dict[tuple, object] = {}
_lock = threading.Lock()


@dataclass(slots=True)
class Recommendation:
    document: Document
    probability: float
    like: str  # the title of the closest kept entry

    @property
    def why(self) -> str:
        return f"probability {self.probability:.2f}; closest to “{self.like}” on the shortlist"


@dataclass(slots=True)
class Recommendations:
    items: list[Recommendation]
    message: str  # why there is nothing, or how many examples the model learned from


def more_like_shortlist(
    store: Store, settings: Settings, use_case: str, *, k: int = 5
) -> Recommendations:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 (slow import)

    sector, uc = resolve_use_case(settings, use_case)
    board = list_entries(store, settings, use_case=f"{sector}/{uc}", include_removed=True)
    kept = [e for e in board if e.status != "rejected" and e.removed is None]
    if len(kept) < MIN_POSITIVES:
        return Recommendations(
            [],
            f"Shortlist at least {MIN_POSITIVES} innovations for this use case to get "
            "suggestions (it has "
            f"{len(kept)}).",
        )
    manifest = read_manifest(index_folder(settings, settings.model))
    if manifest is None or not manifest.count:
        return Recommendations([], "The index is empty: run `veille index` first.")
    docs = {e.canonical_id: store.by_canonical_id(e.canonical_id) for e in board}
    row_of = {cid: d.id for cid, d in docs.items() if d is not None and d.id is not None}
    board_rows = np.array(sorted(row_of.values()), dtype=np.int64)
    found_ids, found_vectors = vectors_for(store, manifest.model, manifest.dim, ids=board_rows)
    vector_of = {int(i): v for i, v in zip(found_ids, found_vectors, strict=True)}
    positives, weights_pos = [], []
    for entry in kept:
        row = row_of.get(entry.canonical_id)
        if row in vector_of:
            positives.append(row)
            weights_pos.append(2.0 if entry.status in ("pilot", "adopted") else 1.0)
    rejected = [
        row_of[e.canonical_id]
        for e in board
        if e.status == "rejected" and row_of.get(e.canonical_id) in vector_of
    ]
    if len(positives) < MIN_POSITIVES:
        return Recommendations([], "The shortlisted documents are not embedded yet.")

    index = VectorIndex.load(
        index_folder(settings, settings.model) / manifest.vectors_file, nprobe=settings.ivf_nprobe
    )
    key = (
        store.url,
        sector,
        uc,
        tuple(sorted(positives)),
        tuple(sorted(rejected)),
        manifest.generation,
    )
    with _lock:
        model = _cache.get(key)
    if model is None:
        all_ids = index.ids
        rng = np.random.default_rng(0)
        pool = np.setdiff1d(all_ids, board_rows)
        background = rng.choice(pool, min(BACKGROUND, len(pool)), replace=False)
        negatives = np.concatenate([np.array(rejected, dtype=np.int64), background])
        x = np.vstack(
            [np.stack([vector_of[r] for r in positives]), index.reconstruct(negatives)]
        ).astype(np.float32)
        y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
        weight = np.concatenate(
            [
                np.array(weights_pos) * len(negatives) / max(1, len(positives)),
                np.where(np.isin(negatives, rejected), 3.0, 1.0),
            ]
        )
        model = LogisticRegression(C=4.0, max_iter=1000).fit(x, y, sample_weight=weight)
        with _lock:
            _cache[key] = model

    query = np.stack([vector_of[r] for r in positives]).astype(np.float32)
    _, near = index.search(query, NEIGHBOURS)
    candidates = np.setdiff1d(np.unique(near[near >= 0]), board_rows)
    if not len(candidates):
        return Recommendations([], "No unseen document is close to this shortlist yet.")
    cand_vectors = index.reconstruct(candidates).astype(np.float32)
    probs = model.predict_proba(cand_vectors)[:, 1]
    order = np.argsort(-probs)[:k]
    chosen = [int(candidates[i]) for i in order]
    fetched = store.get_many(chosen + positives)
    pos_matrix = query / np.linalg.norm(query, axis=1, keepdims=True)
    items = []
    for i in order:
        row = int(candidates[i])
        if row not in fetched:
            continue
        closest = positives[int(np.argmax(pos_matrix @ cand_vectors[i]))]
        items.append(
            Recommendation(fetched[row], round(float(probs[i]), 3), fetched[closest].title)
        )
    return Recommendations(
        items,
        f"Learned from {len(positives)} kept and {len(rejected)} rejected shortlist entries.",
    )

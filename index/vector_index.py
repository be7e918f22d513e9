"""A FAISS index whose ids are store row ids: exact below a threshold, IVF above it."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import faiss
import numpy as np

from core.fsutil import atomic_write

log = logging.getLogger(__name__)

# Below this many allowed ids a filtered search scores them directly (exact and cheap).
DIRECT_FILTER_LIMIT = 50_000


class VectorIndex:
    """Inner-product search over normalised vectors (cosine similarity).

    >>> vi = VectorIndex.build(vectors, ids, ann_threshold=200_000)  # doctest: +SKIP
    >>> scores, ids = vi.search(query_vectors, k=10)  # doctest: +SKIP
    """

    def __init__(self, index: faiss.Index, *, nprobe: int = 48) -> None:
        self.index = index
        self.nprobe = nprobe
        self._ivf = faiss.try_extract_index_ivf(index)
        self._ids: np.ndarray | None = None
        if self._ivf is not None:
            self._ivf.nprobe = nprobe
            if self._ivf.direct_map.type != faiss.DirectMap.Hashtable:
                self._ivf.set_direct_map_type(faiss.DirectMap.Hashtable)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray,
        *,
        ann_threshold: int = 200_000,
        nprobe: int = 48,
        dim: int | None = None,
    ) -> VectorIndex:
        """Exact (flat) index for small corpora, IVF-Flat once ``len(ids) > ann_threshold``."""
        dim = dim or vectors.shape[1]
        n = len(ids)
        if n <= ann_threshold:
            vi = cls.empty(dim)
        else:
            # ~4·sqrt(n) lists, and at least 39 training points per list as FAISS advises
            nlist = max(1, min(65536, int(4 * math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = vectors
            if n > nlist * 64:
                rng = np.random.default_rng(0)
                sample = vectors[rng.choice(n, nlist * 64, replace=False)]
            log.info("training IVF index (%d lists) on %d vectors", nlist, len(sample))
            ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
            vi = cls(ivf, nprobe=nprobe)
        if n:
            vi.add(vectors, ids)
        return vi

    @property
    def kind(self) -> str:
        return "flat" if self._ivf is None else "ivf"

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def lists(self) -> int:
        """The number of IVF lists (0 for an exact, flat index)."""
        return 0 if self._ivf is None else int(self._ivf.nlist)

    def set_nprobe(self, nprobe: int) -> None:
        """How many IVF lists a search visits (no effect on a flat index)."""
        self.nprobe = nprobe
        if self._ivf is not None:
            self._ivf.nprobe = nprobe

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )
        self._ids = None

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        self._ids = None
        return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    @property
    def ids(self) -> np.ndarray:
        """The ids stored in the index, sorted."""
        if self._ids is None:
            if self._ivf is None:
                found = faiss.vector_to_array(self.index.id_map)
            else:
                lists = self._ivf.invlists
                parts = [
                    faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                    for i in range(self._ivf.nlist)
                    if lists.list_size(i)
                ]
                found = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            self._ids = np.sort(found.astype(np.int64))
        return self._ids

    # -- search -------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query; ``allowed`` restricts ids *before* ranking.

        Missing slots have id -1.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self) if allowed is None else len(allowed)))
        if len(self) == 0 or (allowed is not None and len(allowed) == 0):
            nq = len(queries)
            return np.zeros((nq, 0), dtype=np.float32), np.zeros((nq, 0), dtype=np.int64)
        if allowed is None:
            return self.index.search(queries, k)
        if len(allowed) <= DIRECT_FILTER_LIMIT:
            return self._direct(queries, k, np.asarray(allowed, dtype=np.int64))
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        if self._ivf is not None:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
        return self.index.search(queries, k, params=params)

    def _direct(
        self, queries: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        present = allowed[np.isin(allowed, self.ids)]
        if len(present) == 0:
            nq = len(queries)
            return np.zeros((nq, 0), dtype=np.float32), np.zeros((nq, 0), dtype=np.int64)
        vectors = self.reconstruct(present)
        scores = queries @ vectors.T
        k = min(k, len(present))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1)
        top = np.take_along_axis(top, order, axis=1)
        return np.take_along_axis(top_scores, order, axis=1), present[top]

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        atomic_write(path, lambda tmp: faiss.write_index(self.index, str(tmp)))

    @classmethod
    def load(cls, path: Path, *, nprobe: int = 48) -> VectorIndex:
        return cls(faiss.read_index(str(path)), nprobe=nprobe)

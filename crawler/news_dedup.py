"""Near-duplicate news: the same syndicated story published under another URL.

Exact copies (same title and text) are caught by the store's content hash. Syndicated copies
differ a little (a different headline, a "This story first appeared on..." line, trimmed
paragraphs), so each stored news text gets a 64-bit SimHash over its word 3-shingles, kept in
the ``news_fingerprints`` table. A new text whose SimHash is within a few bits of a stored one
is compared with it on shingle Jaccard similarity; above :data:`JACCARD_MIN` it is recorded as
a duplicate of the first document (``Store.record_duplicate``) and not stored again.

This module owns ``news_fingerprints`` (declared in core/schema.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from core.schema import news_fingerprints as fingerprints
from core.store import Store

MIN_SHINGLES = 60  # shorter texts (a one-line summary) are too thin to call near-identical
MAX_BITS = 18  # SimHash distance worth a closer look (unrelated texts differ by ~32 bits)
JACCARD_MIN = 0.8  # shingle overlap that makes them the same story

_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, size: int = 3) -> set[str]:
    words = _WORD.findall(text.casefold())
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def simhash(grams: set[str]) -> int:
    """64-bit SimHash of a set of shingles, as a signed integer (it fits a BIGINT column)."""
    if not grams:
        return 0
    digests = np.frombuffer(
        b"".join(hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams),
        dtype=">u8",
    ).astype(np.uint64)
    bits = (digests[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(grams)
    value = 0
    for i in np.nonzero(votes > 0)[0]:
        value |= 1 << int(i)
    return value - (1 << 64) if value >= 1 << 63 else value


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values)
    return np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


@dataclass(slots=True)
class NearDuplicate:
    original_id: int
    similarity: float


class NearDuplicateIndex:
    """Fingerprints of the stored news texts, loaded once per crawl.

    Keys are store row ids; a negative key is a document of the batch being stored, so two
    copies arriving together are caught too. :meth:`rekey` swaps those for the row ids.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(fingerprints.c.doc_id, fingerprints.c.simhash)).all()
        self._ids = np.array([r[0] for r in rows], dtype=np.int64)
        self._hashes = np.array([r[1] for r in rows], dtype=np.int64).view(np.uint64)
        # Added during this crawl: key -> (simhash, shingles).
        self._recent: dict[int, tuple[int, set[str]]] = {}
        self._pending: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._ids) + len(self._recent)

    def find(self, text: str) -> NearDuplicate | None:
        """The stored (or batch) document this text nearly repeats, if any."""
        grams = shingles(text)
        if len(grams) < MIN_SHINGLES or not len(self):
            return None
        probe = np.uint64(simhash(grams) & 0xFFFFFFFFFFFFFFFF)
        ids = np.concatenate([self._ids, np.fromiter(self._recent, dtype=np.int64)])
        recent = np.array([h for h, _ in self._recent.values()], dtype=np.int64)
        hashes = np.concatenate([self._hashes, recent.view(np.uint64)])
        distance = _popcount(hashes ^ probe)
        close = np.nonzero(distance <= MAX_BITS)[0]
        if not len(close):
            return None
        keys = [int(k) for k in ids[close[np.argsort(distance[close])][:5]]]
        texts = {k: self._recent[k][1] for k in keys if k in self._recent}
        missing = [k for k in keys if k not in texts and k > 0]
        for doc_id, doc in self.store.get_many(missing).items():
            texts[doc_id] = shingles(doc.text)
        best: NearDuplicate | None = None
        for key, other in texts.items():
            score = jaccard(grams, other)
            if score >= JACCARD_MIN and (best is None or score > best.similarity):
                best = NearDuplicate(key, round(score, 3))
        return best

    def add(self, key: int, text: str) -> None:
        """Remember a text under a row id, or a provisional negative key (see rekey)."""
        grams = shingles(text)
        if len(grams) < MIN_SHINGLES:
            return
        value = simhash(grams)
        self._recent[key] = (value, grams)
        if key > 0:
            self._pending[key] = value

    def rekey(self, final: dict[int, int | None]) -> None:
        """Give provisional (negative) keys their row id, or drop them (None)."""
        for key in [k for k in self._recent if k < 0]:
            entry = self._recent.pop(key)
            target = final.get(key)
            if target is not None:
                self._recent[target] = entry
                self._pending[target] = entry[0]

    def save(self) -> None:
        """Write the fingerprints added since the last save."""
        if not self._pending:
            return
        fresh, self._pending = self._pending, {}
        with self.store.write() as conn:
            conn.execute(fingerprints.delete().where(fingerprints.c.doc_id.in_(list(fresh))))
            conn.execute(
                fingerprints.insert(), [{"doc_id": d, "simhash": h} for d, h in fresh.items()]
            )

"""BM25 keyword index over the same documents as FAISS, derived and rebuildable.

The document-term matrix stores the full BM25 weight of each (document, term) pair, so a
query is a sparse column sum. Title words count ``title_weight`` times (a simple BM25F).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import snowballstemmer

from core.fsutil import atomic_write

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not of off on once only or other
    our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself
    yourselves may might must shall via using use used based new paper propose proposed show
    results approach method methods study""".split()
)

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=500_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, stop words removed, Snowball-stemmed.

    >>> tokenize("Graph Neural Networks for transaction fraud")
    ['graph', 'neural', 'network', 'transact', 'fraud']
    """
    out = []
    for token in _TOKEN.findall(text.lower()):
        if token in STOPWORDS or len(token) < 2:
            continue
        out.append(_stem(token))
    return out


class KeywordIndex:
    """BM25 (k1, b) with a title boost; ids are store row ids."""

    def __init__(
        self,
        matrix: sp.csc_matrix,
        vocab: dict[str, int],
        ids: np.ndarray,
    ) -> None:
        self.matrix = matrix  # documents x terms, BM25 weights
        self.vocab = vocab
        self.ids = ids
        self._row_of = {int(d): r for r, d in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls,
        docs: Iterable[tuple[int, str, str]],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        title_weight: int = 2,
    ) -> KeywordIndex:
        """Build from ``(row_id, title, text)`` triples."""
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        ids: list[int] = []
        lengths: list[int] = []
        for row, (doc_id, title, text) in enumerate(docs):
            tokens = tokenize(title) * title_weight + tokenize(text)
            counts: dict[int, int] = {}
            for token in tokens:
                col = vocab.setdefault(token, len(vocab))
                counts[col] = counts.get(col, 0) + 1
            ids.append(int(doc_id))
            lengths.append(len(tokens))
            rows.extend([row] * len(counts))
            cols.extend(counts.keys())
            vals.extend(counts.values())
        n_docs = len(ids)
        tf = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (np.asarray(rows), np.asarray(cols))),
            shape=(n_docs, max(len(vocab), 1)),
        )
        if n_docs == 0:
            return cls(tf.tocsc(), vocab, np.zeros(0, dtype=np.int64))
        doc_len = np.asarray(lengths, dtype=np.float32)
        avg = float(doc_len.mean()) or 1.0
        df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * doc_len / avg)
        row_of_entry = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        data = tf.data
        weights = idf[tf.indices] * data * (k1 + 1) / (data + norm[row_of_entry])
        matrix = sp.csr_matrix((weights.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape)
        return cls(matrix.tocsc(), vocab, np.asarray(ids, dtype=np.int64))

    def query_vector(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        cols: dict[int, float] = {}
        for token in tokenize(query):
            col = self.vocab.get(token)
            if col is not None:
                cols[col] = cols.get(col, 0.0) + 1.0
        return np.fromiter(cols.keys(), dtype=np.int64), np.fromiter(
            cols.values(), dtype=np.float32
        )

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document (row order of ``ids``)."""
        cols, weights = self.query_vector(query)
        if len(cols) == 0 or len(self.ids) == 0:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.matrix[:, cols] @ weights).ravel()

    def search(
        self, query: str, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) with a positive score; ``allowed`` filters before ranking."""
        scores = self.scores(query)
        if allowed is not None:
            mask = np.zeros(len(scores), dtype=bool)
            rows = [self._row_of[i] for i in np.asarray(allowed).tolist() if i in self._row_of]
            mask[rows] = True
            scores = np.where(mask, scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if len(positive) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        k = min(k, len(positive))
        top = positive[np.argpartition(-scores[positive], k - 1)[:k]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top], self.ids[top]

    def terms_of(self, doc_id: int) -> set[int]:
        row = self._row_of.get(int(doc_id))
        if row is None:
            return set()
        return set(self.matrix.getrow(row).indices.tolist())

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        terms = np.array(sorted(self.vocab, key=self.vocab.__getitem__), dtype=object)

        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.savez(
                    fh,
                    data=self.matrix.data,
                    indices=self.matrix.indices,
                    indptr=self.matrix.indptr,
                    shape=np.asarray(self.matrix.shape),
                    ids=self.ids,
                    terms=np.asarray("\n".join(terms.tolist())),
                )

        atomic_write(path, write)

    @classmethod
    def load(cls, path: Path) -> KeywordIndex:
        with np.load(path, allow_pickle=False) as z:
            matrix = sp.csc_matrix(
                (z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"].tolist())
            )
            terms = str(z["terms"]).split("\n") if matrix.shape[1] else []
            vocab = {t: i for i, t in enumerate(terms) if t}
            return cls(matrix, vocab, z["ids"].astype(np.int64))

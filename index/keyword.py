"""BM25 keyword index over the same documents as FAISS, derived and rebuildable.

The document-term matrix stores the full BM25 weight of each (document, term) pair, so a
query is a sparse column sum. Title words count ``title_weight`` times (a simple BM25F).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
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


def find_phrase(tokens: Sequence[str], phrase: tuple[str, ...]) -> bool:
    """True when the tokens of ``phrase`` occur in ``tokens`` one after another."""
    n = len(phrase)
    if n == 1:
        return phrase[0] in tokens
    first, rest = phrase[0], list(phrase[1:])
    # list.index jumps to each occurrence of the first word at C speed.
    seq = tokens if isinstance(tokens, list) else list(tokens)
    start = 0
    while True:
        try:
            i = seq.index(first, start)
        except ValueError:
            return False
        if seq[i + 1 : i + n] == rest:
            return True
        start = i + 1


class KeywordIndex:
    """BM25 (k1, b) with a title boost; ids are store row ids.

    The raw term counts are kept next to the BM25 weights, so an update re-tokenizes only the
    documents that changed: the weights (which depend on every document through idf and the
    average length) are recomputed from the counts with a few array operations.
    """

    K1 = 1.2
    B = 0.75
    TITLE_WEIGHT = 2

    def __init__(
        self,
        tf: sp.csr_matrix,
        lengths: np.ndarray,
        vocab: dict[str, int],
        ids: np.ndarray,
    ) -> None:
        self.tf = tf  # documents x terms, raw counts (title counted TITLE_WEIGHT times)
        self.lengths = lengths
        self.vocab = vocab
        self.ids = ids
        self.matrix = self._weigh(tf, lengths)  # documents x terms, BM25 weights (CSC)
        self._row_of = {int(d): r for r, d in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def _weigh(cls, tf: sp.csr_matrix, lengths: np.ndarray) -> sp.csc_matrix:
        n_docs = tf.shape[0]
        if n_docs == 0 or tf.nnz == 0:
            return tf.tocsc()
        avg = float(lengths.mean()) or 1.0
        df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = cls.K1 * (1 - cls.B + cls.B * lengths / avg)
        row_of_entry = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        data = tf.data
        weights = idf[tf.indices] * data * (cls.K1 + 1) / (data + norm[row_of_entry])
        return sp.csr_matrix(
            (weights.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape
        ).tocsc()

    @classmethod
    def _count(
        cls, docs: Iterable[tuple[int, str, str]], vocab: dict[str, int]
    ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """Term counts of ``docs`` over ``vocab`` (extended in place with new terms)."""
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        ids: list[int] = []
        lengths: list[int] = []
        for row, (doc_id, title, text) in enumerate(docs):
            tokens = tokenize(title) * cls.TITLE_WEIGHT + tokenize(text)
            counts: dict[int, int] = {}
            for token in tokens:
                col = vocab.setdefault(token, len(vocab))
                counts[col] = counts.get(col, 0) + 1
            ids.append(int(doc_id))
            lengths.append(len(tokens))
            rows.extend([row] * len(counts))
            cols.extend(counts.keys())
            vals.extend(counts.values())
        tf = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (np.asarray(rows), np.asarray(cols))),
            shape=(len(ids), max(len(vocab), 1)),
        )
        return tf, np.asarray(lengths, dtype=np.float32), np.asarray(ids, dtype=np.int64)

    @classmethod
    def build(cls, docs: Iterable[tuple[int, str, str]]) -> KeywordIndex:
        """Build from ``(row_id, title, text)`` triples."""
        vocab: dict[str, int] = {}
        tf, lengths, ids = cls._count(docs, vocab)
        return cls(tf, lengths, vocab, ids)

    def updated(self, changed: np.ndarray, docs: Iterable[tuple[int, str, str]]) -> KeywordIndex:
        """A new index: the rows of ``changed`` ids dropped, then ``docs`` (the current
        version of those that still exist, and new ones) counted and added."""
        keep = ~np.isin(self.ids, np.asarray(changed, dtype=np.int64))
        vocab = dict(self.vocab)
        new_tf, new_lengths, new_ids = self._count(docs, vocab)
        width = max(len(vocab), 1)
        old_tf = self.tf[keep]
        old_tf = sp.csr_matrix(
            (old_tf.data, old_tf.indices, old_tf.indptr), shape=(old_tf.shape[0], width)
        )
        new_tf = sp.csr_matrix(
            (new_tf.data, new_tf.indices, new_tf.indptr), shape=(new_tf.shape[0], width)
        )
        return KeywordIndex(
            sp.vstack([old_tf, new_tf], format="csr"),
            np.concatenate([self.lengths[keep], new_lengths]),
            vocab,
            np.concatenate([self.ids[keep], new_ids]),
        )

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

    # -- persistence ----------------------------------------------------------------------

    FORMAT = 2  # 2: raw counts and lengths (weights recomputed on load)

    def save(self, path: Path) -> None:
        terms = sorted(self.vocab, key=self.vocab.__getitem__)

        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.savez(
                    fh,
                    format=np.asarray(self.FORMAT),
                    data=self.tf.data,
                    indices=self.tf.indices,
                    indptr=self.tf.indptr,
                    shape=np.asarray(self.tf.shape),
                    lengths=self.lengths,
                    ids=self.ids,
                    terms=np.asarray("\n".join(terms)),
                )

        atomic_write(path, write)

    @classmethod
    def load(cls, path: Path) -> KeywordIndex:
        """Read a saved index; ValueError when the file is of an older format."""
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or int(z["format"]) != cls.FORMAT:
                raise ValueError(f"{path} is a keyword index of an older format")
            tf = sp.csr_matrix(
                (z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"].tolist())
            )
            terms = str(z["terms"]).split("\n") if len(z["ids"]) else []
            vocab = {t: i for i, t in enumerate(terms) if t}
            return cls(tf, z["lengths"].astype(np.float32), vocab, z["ids"].astype(np.int64))

"""IVF recall@10 against nprobe, on real embeddings and on synthetic vectors of the same size.

Usage: .venv/bin/python benchmarks/ivf_recall.py [--queries 500] [--abstracts-only]

Real sets, embedded by the bundled all-MiniLM-L6-v2:
* the titles of all papers of ../shared/data/arxiv_sample.jsonl (about 28k; embedding them
  takes a few minutes here, where embedding the 28k abstracts would take about half an hour);
* the judged abstracts whose vectors ship in index/data/labels/vectors.npz.
Each real set is paired with a synthetic set of the same size: points around random centres on
the unit sphere (the structure the latency benchmark uses).

The IVF index is Veille's own (`VectorIndex.build`, forced to IVF: ~4·sqrt(n) lists, trained on
up to 64 points a list). Queries are vectors of the set left out of the index; the truth is
exact inner-product search over the same indexed vectors. Printed: recall@10 per nprobe.
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np
from _common import ROOT, SHARED, need

from index.embedder import get_embedder
from index.vector_index import VectorIndex

NPROBES = (1, 4, 8, 16, 32, 48, 64, 128)


def titles() -> list[str]:
    with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["title"] for line in fh]


def synthetic(n: int, rng: np.random.Generator, centres: int = 2000) -> np.ndarray:
    c = rng.normal(size=(centres, 384)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    v = c[rng.integers(0, centres, size=n)] + rng.normal(scale=0.045, size=(n, 384))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def recall_curve(name: str, vectors: np.ndarray, n_queries: int, rng) -> None:
    order = rng.permutation(len(vectors))
    queries, base = vectors[order[:n_queries]], vectors[order[n_queries:]]
    ids = np.arange(1, len(base) + 1, dtype=np.int64)
    started = time.perf_counter()
    index = VectorIndex.build(base, ids, ann_threshold=1, nprobe=1)
    built = time.perf_counter() - started
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    _, truth = flat.search(queries, 10)
    truth_ids = ids[truth]
    cells = []
    for nprobe in NPROBES:
        index.set_nprobe(nprobe)
        _, found = index.search(queries, 10)
        recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth_ids, found, strict=True)])
        cells.append(f"{nprobe}: {recall:.3f}")
    print(
        f"{name:<44} n={len(base):>6,} lists={index.lists:>4} (built {built:4.1f}s) | "
        + "  ".join(cells),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument(
        "--abstracts-only",
        action="store_true",
        help="skip the 28k titles (about 15 minutes of embedding here): judged abstracts only",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    title_vectors = None
    if not args.abstracts_only:
        embedder = get_embedder()
        texts = titles()
        started = time.perf_counter()
        title_vectors = embedder.encode(texts, batch_size=256)
        print(f"embedded {len(texts):,} titles in {time.perf_counter() - started:.0f}s")
    abstracts = np.load(ROOT / "index" / "data" / "labels" / "vectors.npz")
    abstract_vectors = np.asarray(abstracts["vectors"], dtype=np.float32)
    abstract_vectors /= np.linalg.norm(abstract_vectors, axis=1, keepdims=True)
    print("recall@10 per nprobe (queries left out of the index; truth = exact search)")
    if title_vectors is not None:
        recall_curve("real: arXiv titles", title_vectors.astype(np.float32), args.queries, rng)
        recall_curve("synthetic, same size", synthetic(len(title_vectors), rng), args.queries, rng)
    recall_curve("real: judged abstracts", abstract_vectors, args.queries, rng)
    recall_curve("synthetic, same size", synthetic(len(abstract_vectors), rng), args.queries, rng)


if __name__ == "__main__":
    main()

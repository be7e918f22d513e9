"""Search latency (dense and hybrid) at 10k, 100k and 1M documents, against the raw model +
raw FAISS.

Usage: .venv/bin/python benchmarks/search_latency.py [--sizes 10000,100000,1000000] [--queries 200]

The model cannot embed a million abstracts here, so document vectors are synthetic: points
drawn around 2,000 random centres on the unit sphere (384-d), which gives the clustered
structure real embeddings have. Documents are real texts (titles and abstracts of
../shared/data/arxiv_sample.jsonl, repeated with a variant suffix past 28k) written to a real
SQLite store, so fetching the hits and the BM25 half of hybrid search work on real text.

Hybrid is Veille's default mode: the dense ranking (depth 1,000) and the BM25 ranking of the
query text, fused, then the hits fetched and built. It is timed on the same queries.

Per query, Veille's measured path is what `Searcher.search(mode="dense")` does: embed the
query text with the real model, search the index Veille builds at that size (exact below
200,000 vectors, IVF above), fetch the hits' documents from the store and build the hits.
The raw baseline is the same query text through `SentenceTransformer.encode` plus a plain
FAISS search over the same vectors: `IndexFlatIP` where Veille searches exactly, and at sizes
where Veille uses IVF, a raw `IndexIVFFlat` with the same number of lists, the same training
sample size and the same nprobe (so the comparison is IVF against IVF, not against exact). To keep neighbours meaningful, the vector
searched is a synthetic query drawn from the same mixture (the real embedding is computed and
timed but a real query has no meaningful neighbours among synthetic vectors); recall@10 is
measured against exact search on those synthetic queries.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime

import faiss
import numpy as np
import sqlalchemy as sa
from _common import peak_rss_mb, percentile, sample_records

from core.settings import load_settings
from core.store import Store, documents
from index.embedder import get_embedder
from index.indexer import LoadedIndexes, Manifest
from index.keyword import KeywordIndex
from index.search import Searcher, fuse, make_hit
from index.vector_index import VectorIndex

DIM = 384
QUERIES = [
    "graph neural networks for transaction fraud",
    "LSTM remaining useful life prediction",
    "diffusion models for medical image synthesis",
    "contract clause extraction with language models",
    "demand forecasting for retail stores",
]


def clustered(n: int, centres: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    which = rng.integers(0, len(centres), size=n)
    out = centres[which] + rng.normal(scale=spread, size=(n, DIM)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def real_texts(n: int) -> list[tuple[str, str]]:
    base = [(r["title"], r["abstract"]) for r in sample_records(n)]
    out, copy = list(base), 1
    while len(out) < n:
        out.extend((f"{t} (variant {copy})", a) for t, a in base[: n - len(out)])
        copy += 1
    return out[:n]


def fill_store(store: Store, pairs: list[tuple[str, str]]) -> np.ndarray:
    """Insert the documents straight into the documents table."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.write() as conn:
        for start in range(0, len(pairs), 50_000):
            conn.execute(
                documents.insert(),
                [
                    {
                        "canonical_id": f"bench-{i}",
                        "kind": "paper",
                        "source": "arxiv",
                        "title": title,
                        "text": text,
                        "url": f"https://example.org/{i}",
                        "published": now,
                        "authors": [],
                        "categories": [],
                        "language": "en",
                        "content_hash": f"{i:064x}",
                        "extra": {},
                        "rev": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, (title, text) in enumerate(pairs[start : start + 50_000], start)
                ],
            )
        rows = conn.execute(sa.select(documents.c.id).order_by(documents.c.id))
        return np.fromiter((r[0] for r in rows), dtype=np.int64)


def raw_index(vectors: np.ndarray, veille: VectorIndex) -> faiss.Index:
    """The raw FAISS index to compare with: flat, or IVF with Veille's lists and nprobe."""
    if veille.kind == "flat":
        flat = faiss.IndexFlatIP(DIM)
        flat.add(vectors)
        return flat
    nlist = veille.lists
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(1)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), nlist * 64), replace=False)]
    ivf.train(sample)
    ivf.add(vectors)
    ivf.nprobe = veille.nprobe
    return ivf


def run_size(n: int, n_queries: int, embedder, rng: np.random.Generator) -> None:
    centres = rng.normal(size=(2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = clustered(n, centres, rng, spread=0.045)
    queries = clustered(n_queries, centres, rng, spread=0.045)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp)
        store = Store.from_settings(settings)
        t0 = time.perf_counter()
        pairs = real_texts(n)
        ids = fill_store(store, pairs)
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = VectorIndex.build(
            vectors, ids, ann_threshold=settings.ann_threshold, nprobe=settings.ivf_nprobe
        )
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        keywords = KeywordIndex.build((int(i), t, a) for i, (t, a) in zip(ids, pairs, strict=True))
        bm25_s = time.perf_counter() - t0
        manifest = Manifest(embedder.name, DIM, store.generation(), n, index.kind, "", "")
        searcher = Searcher(store, settings, embedder, LoadedIndexes(manifest, index, keywords))
        exact = faiss.IndexFlatIP(DIM)
        exact.add(vectors)
        raw_faiss = raw_index(vectors, index)
        model = embedder.model
        # warm-up both paths
        for q in QUERIES:
            model.encode([q], normalize_embeddings=True)
        ours, hybrid, raw, recalls = [], [], [], []
        depth = searcher.fusion.depth
        for i in range(n_queries):
            text = QUERIES[i % len(QUERIES)]
            qv = queries[i : i + 1]
            # raw: encode + raw FAISS (flat, or IVF with Veille's lists and nprobe)
            t0 = time.perf_counter()
            model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
            raw_faiss.search(qv, 10)
            raw.append(time.perf_counter() - t0)
            # veille dense: encode + index search + metadata fetch + hits
            t0 = time.perf_counter()
            searcher.embedder.encode([text])
            scores, found = index.search(qv, 10)
            docs = store.get_many(found[0][found[0] >= 0].tolist())
            hits = [
                make_hit(docs[int(d)], float(s), text)
                for s, d in zip(scores[0], found[0], strict=True)
                if int(d) in docs
            ]
            ours.append(time.perf_counter() - t0)
            assert len(hits) == 10
            # veille hybrid: encode + dense (depth 1,000) + BM25 + fusion + fetch + hits
            t0 = time.perf_counter()
            searcher.embedder.encode([text])
            d_scores, d_ids = index.search(qv, depth)
            dense = (d_scores[0][d_ids[0] >= 0], d_ids[0][d_ids[0] >= 0])
            ranked = fuse(dense, keywords.search(text, depth), searcher.fusion)[:10]
            docs = store.get_many([doc for doc, _ in ranked])
            fused_hits = [make_hit(docs[d], sc, text) for d, sc in ranked if d in docs]
            hybrid.append(time.perf_counter() - t0)
            assert len(fused_hits) == 10
            _, truth = exact.search(qv, 10)
            recalls.append(len(set(ids[truth[0]].tolist()) & set(found[0].tolist())) / 10)
        store.close()
    p50o, p95o = percentile(ours, 50) * 1000, percentile(ours, 95) * 1000
    p50h, p95h = percentile(hybrid, 50) * 1000, percentile(hybrid, 95) * 1000
    p50r, p95r = percentile(raw, 50) * 1000, percentile(raw, 95) * 1000
    raw_kind = "flat" if index.kind == "flat" else f"IVF {index.lists} lists"
    print(
        f"{n:>9,} docs | index {index.kind:<4} built {build_s:6.1f}s, BM25 {bm25_s:5.1f}s "
        f"(store fill {fill_s:5.1f}s) | dense p50 {p50o:6.1f} ms p95 {p95o:6.1f} ms | "
        f"hybrid p50 {p50h:6.1f} ms p95 {p95h:6.1f} ms | raw encode+{raw_kind} p50 {p50r:6.1f} ms "
        f"p95 {p95r:6.1f} ms | p95 ratio dense {p95o / p95r:4.2f} hybrid {p95h / p95r:4.2f} | "
        f"recall@10 {np.mean(recalls):.3f} | peak RSS {peak_rss_mb():,.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    embedder = get_embedder()
    rng = np.random.default_rng(7)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    for size in [int(s) for s in args.sizes.split(",")]:
        run_size(size, args.queries, embedder, rng)


if __name__ == "__main__":
    main()

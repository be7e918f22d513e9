"""Search quality: nDCG@10 and MAP of dense, keyword and hybrid search on judged collections.

Usage:
  .venv/bin/python benchmarks/search_quality.py cisi      # CISI, 1,460 abstracts, 76 judged queries
  .venv/bin/python benchmarks/search_quality.py arxiv     # our judged analyst queries over arXiv
  .venv/bin/python benchmarks/search_quality.py cisi --tune  # grid search on odd queries only

Documents go through Veille's real path (store -> embeddings -> FAISS + BM25 -> Searcher).
Embeddings are cached by content hash in a data directory under /tmp, so re-runs are fast.
Fusion settings are tuned on the odd-numbered CISI queries only; figures are reported on all
judged queries and on the even-numbered ones (never used for tuning) separately.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import cisi
from _common import SHARED, need

from core.models import Document
from core.settings import load_settings
from core.store import Store
from index.pipeline import index_and_match
from index.search import DEFAULT_FUSION, FusionParams, Searcher

DEPTH = 1000
HERE = Path(__file__).resolve().parent


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def average_precision(ranked: list[str], relevant: set[str]) -> float:
    hits, total = 0, 0.0
    for i, d in enumerate(ranked):
        if d in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / len(relevant) if relevant else 0.0


def open_searcher(name: str, docs: list[Document]) -> tuple[Searcher, dict[int, str]]:
    settings = load_settings(data_dir=f"/tmp/veille-bench-{name}")
    store = Store.from_settings(settings)
    store.upsert(docs)
    index_and_match(store, settings, show_progress=True)
    searcher = Searcher.open(settings, store=store)
    ids = {d.id: d.canonical_id for batch in store.iter_documents() for d in batch}
    return searcher, ids


def evaluate(
    searcher: Searcher,
    ids: dict[int, str],
    queries: dict[str, str],
    judged: dict[str, set[str]],
    mode: str,
    fusion: FusionParams,
) -> dict[str, dict[str, float]]:
    searcher.fusion = fusion
    qids = [q for q in queries if q in judged]
    rankings = searcher.rank_many([queries[q] for q in qids], k=DEPTH, mode=mode)
    per = {}
    for qid, ranking in zip(qids, rankings, strict=True):
        ranked = [ids[d] for d, _ in ranking]
        per[qid] = (ndcg_at_10(ranked, judged[qid]), average_precision(ranked, judged[qid]))
    out = {}
    for label, keep in (
        ("all", lambda q: True),
        ("odd", lambda q: int(q) % 2 == 1),
        ("even", lambda q: int(q) % 2 == 0),
    ):
        chosen = [v for q, v in per.items() if keep(q)]
        if chosen:
            out[label] = {
                "n": len(chosen),
                "ndcg10": sum(c[0] for c in chosen) / len(chosen),
                "map": sum(c[1] for c in chosen) / len(chosen),
            }
    return out


def report(name: str, searcher, ids, queries, judged, fusion: FusionParams) -> None:
    print(
        f"\n{name}: {len(ids)} documents, {sum(1 for q in queries if q in judged)} judged queries"
    )
    print(f"hybrid fusion: {fusion}")
    naive = FusionParams(method="rrf", rrf_k=60, dense_weight=1, keyword_weight=1, depth=DEPTH)
    rows = [
        ("keyword (BM25)", "keyword", fusion),
        ("dense (MiniLM, exact)", "dense", fusion),
        ("hybrid, naive RRF", "hybrid", naive),
        ("hybrid (Veille default)", "hybrid", fusion),
    ]
    print(
        f"{'mode':<26} {'queries':>8} {'nDCG@10':>8} {'MAP':>7} | {'even nDCG':>9} {'even MAP':>8} | {'odd nDCG':>8} {'odd MAP':>7}"
    )
    for label, mode, params in rows:
        res = evaluate(searcher, ids, queries, judged, mode, params)
        a, e, o = (
            res["all"],
            res.get("even", {"ndcg10": float("nan"), "map": float("nan")}),
            res.get("odd", {"ndcg10": float("nan"), "map": float("nan")}),
        )
        print(
            f"{label:<26} {a['n']:>8} {a['ndcg10']:>8.3f} {a['map']:>7.3f} | {e['ndcg10']:>9.3f} {e['map']:>8.3f} | {o['ndcg10']:>8.3f} {o['map']:>7.3f}"
        )


def tune(searcher, ids, queries, judged) -> None:
    odd = {q: t for q, t in queries.items() if q in judged and int(q) % 2 == 1}
    results = []
    grid = [
        FusionParams(method="rrf", rrf_k=k, dense_weight=w, keyword_weight=1.0, depth=DEPTH)
        for k, w in itertools.product(
            (5, 10, 20, 40, 60, 100), (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
        )
    ]
    grid += [FusionParams(method="convex", alpha=a / 100, depth=DEPTH) for a in range(30, 100, 5)]
    for params in grid:
        res = evaluate(searcher, ids, odd, judged, "hybrid", params)["all"]
        results.append((res["ndcg10"] + res["map"], res["ndcg10"], res["map"], params))
    results.sort(key=lambda r: -r[0])
    print("best fusion settings on the odd-numbered queries:")
    for _, n, m, p in results[:8]:
        print(f"  nDCG@10 {n:.3f} MAP {m:.3f}  {p}")


def cisi_collection():
    docs, queries, judged = cisi.load(need(SHARED / "benchmarks" / "CISI"))
    documents = [
        Document(f"cisi-{i}", d["title"] or f"CISI {i}", d["text"], source="cisi")
        for i, d in docs.items()
    ]
    judged = {q: {f"cisi-{d}" for d in rel} for q, rel in judged.items()}
    return documents, queries, judged


def arxiv_collection():
    spec = json.loads((HERE / "queries" / "arxiv_judged.json").read_text(encoding="utf-8"))
    wanted = set(spec["corpus_ids"])
    documents = []
    with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["id"] in wanted:
                documents.append(Document(rec["id"], rec["title"], rec["abstract"], source="arxiv"))
    queries = {str(i + 1): q["query"] for i, q in enumerate(spec["queries"])}
    judged = {
        str(i + 1): set(q["relevant"]) for i, q in enumerate(spec["queries"]) if q["relevant"]
    }
    return documents, queries, judged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("collection", choices=["cisi", "arxiv", "pool-arxiv"])
    parser.add_argument("--tune", action="store_true")
    args = parser.parse_args()
    if args.collection == "pool-arxiv":
        pool()
        return
    documents, queries, judged = (
        cisi_collection() if args.collection == "cisi" else arxiv_collection()
    )
    searcher, ids = open_searcher(args.collection, documents)
    fusion = replace(DEFAULT_FUSION, depth=DEPTH)
    if args.tune:
        tune(searcher, ids, queries, judged)
    report(args.collection.upper(), searcher, ids, queries, judged, fusion)


def pool(depth: int = 5) -> None:
    """Print the pooled top results of the three modes for each arXiv query, to judge."""
    documents, queries, _ = arxiv_collection()
    searcher, ids = open_searcher("arxiv", documents)
    titles = {d.canonical_id: d.title for d in documents}
    for qid, text in queries.items():
        seen: dict[str, None] = {}
        for mode in ("dense", "keyword", "hybrid"):
            for doc, _ in searcher.rank_many([text], k=depth, mode=mode)[0]:
                seen.setdefault(ids[doc])
        print(f"\n[{qid}] {text}")
        for cid in seen:
            print(f"  {cid}  {titles[cid][:110]}")


if __name__ == "__main__":
    main()

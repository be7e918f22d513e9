"""`veille index` throughput against raw SentenceTransformer.encode on the same texts.

Usage: .venv/bin/python benchmarks/index_throughput.py [--docs 600] [--rounds 2]

Each round embeds the same real abstracts (title + ". " + abstract, as Veille does) twice:
once with the raw model, once through Veille's full path into a fresh data directory
(load into SQLite, embed, store the vectors, build FAISS + BM25, write the files). The
rounds alternate the two so that background load hits both alike. Then `veille index` runs
again on the unchanged corpus (nothing to embed).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import sample_records

from core.models import Document
from core.settings import load_settings
from core.store import Store
from index.embedder import get_embedder
from index.pipeline import index_and_match


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    records = sample_records(args.docs)
    docs = [
        Document(r["id"], r["title"], r["abstract"], published=r["published"], source="arxiv")
        for r in records
    ]
    texts = [d.embed_text for d in docs]
    embedder = get_embedder()
    model = embedder.model  # the raw SentenceTransformer
    model.encode(texts[:32], batch_size=64)  # warm-up
    raw_times, ours_times, rerun_times = [], [], []
    for round_no in range(args.rounds):
        start = time.perf_counter()
        model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        raw_times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(data_dir=tmp)
            store = Store.from_settings(settings)
            start = time.perf_counter()
            store.upsert(docs)
            report = index_and_match(store, settings, embedder=embedder)
            ours_times.append(time.perf_counter() - start)
            assert report.embedded == len(docs)
            start = time.perf_counter()
            again = index_and_match(store, settings, embedder=embedder)
            rerun_times.append(time.perf_counter() - start)
            assert again.embedded == 0
            store.close()
        print(
            f"round {round_no + 1}: raw encode {raw_times[-1]:.1f}s, veille store+index "
            f"{ours_times[-1]:.1f}s, unchanged re-run {rerun_times[-1] * 1000:.0f} ms"
        )
    raw = sum(raw_times)
    ours = sum(ours_times)
    n = len(docs) * args.rounds
    print(f"documents: {len(docs)} real abstracts x {args.rounds} rounds")
    print(f"raw SentenceTransformer.encode: {n / raw:.2f} docs/s")
    print(f"veille load + index:            {n / ours:.2f} docs/s")
    print(f"ratio veille/raw throughput:    {raw / ours:.3f} (target >= 0.90)")
    print(
        f"unchanged re-run: {sum(rerun_times) / len(rerun_times) * 1000:.0f} ms = "
        f"{sum(rerun_times) / ours * 100:.2f}% of the first run (target < 5%)"
    )


if __name__ == "__main__":
    main()

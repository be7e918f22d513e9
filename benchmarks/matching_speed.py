"""Cost of matching a new batch relative to embedding it.

Usage: .venv/bin/python benchmarks/matching_speed.py [--docs 300]

Embeds real abstracts through Veille, then times `match_documents` on the same batch (it
reads the stored vectors; nothing is embedded again) against the embedding time.
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
from index.indexer import embed_pending
from index.matching import match_documents


def matching_cost(n: int) -> None:
    records = sample_records(n, start=5000)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp)
        store = Store.from_settings(settings)
        store.upsert(
            [
                Document(r["id"], r["title"], r["abstract"], published=r["published"])
                for r in records
            ]
        )
        embedder = get_embedder()
        embedder.encode(["warm up"])
        t0 = time.perf_counter()
        embed_pending(store, embedder)
        embed_s = time.perf_counter() - t0
        match_documents(store, settings, doc_ids=[1], embedder=embedder)  # taxonomy vectors, once
        t1 = time.perf_counter()
        count = match_documents(store, settings, embedder=embedder)
        match_s = time.perf_counter() - t1
        store.close()
    print(
        f"{count} real abstracts: embedding {embed_s:.1f}s, matching {match_s:.2f}s = {match_s / embed_s * 100:.1f}% on top of embedding (target <= 10%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    args = parser.parse_args()
    matching_cost(args.docs)


if __name__ == "__main__":
    main()

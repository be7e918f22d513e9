"""Keyword (BM25) index: updating after a crawl vs rebuilding it, on a large store.

    .venv/bin/python benchmarks/keyword_update.py [--data-dir /tmp/veille-dashboard-bench-100000]
        [--changed 500]

Uses the store built by benchmarks/dashboard_render.py (100,000 real titles and abstracts).
Times, in one run: a full build from the store (read every document, tokenize, weigh), and an
update of that index where ``--changed`` documents are re-read and re-tokenized (what
`veille index` now does after a crawl), then checks that both give the same top-10 scores
for a few queries.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import peak_rss_mb

from core.settings import load_settings
from core.store import Store
from index.indexer import keyword_documents
from index.keyword import KeywordIndex

QUERIES = ["graph neural networks fraud", "diffusion models medical images", "reinforcement"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default="/tmp/veille-dashboard-bench-100000")
    ap.add_argument("--changed", type=int, default=500)
    args = ap.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    t0 = time.perf_counter()
    full = KeywordIndex.build(keyword_documents(store))
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(3)
    changed = np.sort(rng.choice(full.ids, size=args.changed, replace=False))
    t0 = time.perf_counter()
    docs = store.get_many(changed.tolist())
    updated = full.updated(changed, ((i, d.title, d.text) for i, d in sorted(docs.items())))
    update_s = time.perf_counter() - t0
    # The corpus repeats abstracts, so many documents tie: compare the top-10 scores.
    same = all(np.allclose(full.search(q, 10)[0], updated.search(q, 10)[0]) for q in QUERIES)
    print(
        f"{len(full):,} documents | full build {build_s:.1f} s | update of {args.changed} "
        f"changed documents {update_s:.2f} s ({update_s / build_s:.1%} of a build) | "
        f"same top-10 scores: {same} | peak RSS {peak_rss_mb():,.0f} MB"
    )


if __name__ == "__main__":
    main()

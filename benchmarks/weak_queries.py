"""How close a query's nearest document is, for queries on and off the watch's subject.

    .venv/bin/python benchmarks/weak_queries.py [--sizes 250,1000,7085] [--seed 7]

Search always returns the nearest documents, even for a query nothing stored is about; the
search pages then warn when the best cosine is below ``index.search.WEAK_SIMILARITY``. This
prints, for each query, the cosine of its nearest document among random samples of arXiv
sample papers published **before 2025-07-01** (later papers are held out), embedded as the
indexer embeds them ("title. abstract", the bundled model), and how many queries of each
group the floor calls weak. The queries are written here: analysts' kind of questions on
the five sectors' use cases, and phrases off the subject (food, sport, small talk, typing
noise).
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
from _common import SHARED, need

from index.embedder import get_embedder
from index.search import WEAK_SIMILARITY

ON_SUBJECT = [
    "graph neural networks for transaction fraud",
    "LSTM remaining useful life prediction",
    "medical image segmentation",
    "robot grasping with reinforcement learning",
    "large language model reasoning",
    "contract clause extraction",
    "demand forecasting for retail stores",
    "anomaly detection in sensor time series",
    "diffusion models for image generation",
    "credit scoring with machine learning",
    "visual inspection of manufacturing defects",
    "legal case retrieval",
    "recommender systems for e-commerce",
    "clinical decision support from electronic health records",
    "customer support chatbot",
    "stock price prediction with transformers",
    "federated learning privacy",
    "speech recognition",
    "clustering of customer segments",
    "convolutional neural network",
]
OFF_SUBJECT = [
    "chocolate cake recipe",
    "football world cup results",
    "my cat sleeps on the sofa",
    "weather tomorrow in Paris",
    "banana",
    "hello world",
    "asdf qwerty",
    "zzzz",
    "xkcd lorem ipsum dolor",
    "ok",
    "best hiking trails in the Alps",
    "how to knit a scarf",
    "cheap flights to Lisbon",
    "the history of the Roman empire",
    "guitar chords for beginners",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="250,1000,7085",
        help="corpus sizes, comma-separated: nested random samples (default 250,1000,7085; "
        "the starter corpus holds about 240 documents)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.sizes.split(",")})
    path = need(SHARED / "arxiv_sample.jsonl")
    with path.open(encoding="utf-8") as fh:
        papers = [r for r in map(json.loads, fh) if r["published"][:10] < "2025-07-01"]
    random.Random(args.seed).shuffle(papers)
    papers = papers[: sizes[-1]]
    embedder = get_embedder()
    started = time.perf_counter()
    vectors = embedder.encode([f"{p['title']}. {p['abstract']}" for p in papers], batch_size=32)
    print(f"{len(papers)} pre-July papers embedded in {time.perf_counter() - started:.0f} s")
    print(f"floor (index.search.WEAK_SIMILARITY): {WEAK_SIMILARITY:.2f}")
    groups = [
        (name, queries, embedder.encode(queries, batch_size=32))
        for name, queries in (("on subject", ON_SUBJECT), ("off subject", OFF_SUBJECT))
    ]
    for n in sizes:
        n = min(n, len(papers))
        print(f"\n== corpus of {n} papers (the first {n} of the shuffled sample)")
        for name, queries, q_vectors in groups:
            best = (q_vectors @ vectors[:n].T).max(axis=1)
            if n == len(papers):
                for query, value in sorted(zip(queries, best, strict=True), key=lambda qv: -qv[1]):
                    print(f"  {name:<11} {value:.3f}  {query}")
            weak = int((best < WEAK_SIMILARITY).sum())
            print(
                f"{name}: best cosine {best.min():.3f} to {best.max():.3f} "
                f"(median {float(np.median(best)):.3f}); called weak: {weak}/{len(queries)}"
            )


if __name__ == "__main__":
    main()

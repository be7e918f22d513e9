"""Cost of training the learned matcher and matching a new batch, against embedding it.

Usage: .venv/bin/python benchmarks/matching_speed.py [--docs 300] [--labels 10000]

1. Embeds ``--docs`` real abstracts of the pre-July-2025 sample through Veille, then times
   `match_documents` on the same batch (it reads the stored vectors; nothing is embedded
   again) as a share of their embedding time, and training the matcher (shipped labels +
   taxonomy, as `veille matcher train` does) as a share of the time embedding its training
   documents takes at the rate just measured.
2. Times training on ``--labels`` labelled vectors: the shipped judged set resampled with
   small noise to that size (every sector and use-case target, calibration folds included).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from _common import SHARED, need

from core.models import Document
from core.settings import load_settings
from core.store import Store
from index.embedder import get_embedder
from index.indexer import embed_pending
from index.learner import train_and_save
from index.matcher_model import Example
from index.matching import match_documents
from index.taxonomy import load_taxonomy
from index.training import NOT_DOCUMENTS, examples_for, train


def pre_july(n: int, skip: int) -> list[dict]:
    out = []
    with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record["published"] < "2025-07-01":
                if skip:
                    skip -= 1
                    continue
                out.append(record)
                if len(out) == n:
                    break
    return out


def matching_cost(n: int) -> None:
    records = pre_july(n, skip=3000)
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
        taxonomy = load_taxonomy(settings)
        t1 = time.perf_counter()
        model = train_and_save(store, settings, embedder, taxonomy)
        train_s = time.perf_counter() - t1
        # The taxonomy's vectors are computed once per process: warm them up first.
        match_documents(store, settings, doc_ids=[1], embedder=embedder, model=model)
        t2 = time.perf_counter()
        count = match_documents(store, settings, embedder=embedder, model=model)
        match_s = time.perf_counter() - t2
        store.close()
    examples = sum(model.counts.values())
    rate = count / embed_s
    print(
        f"{count} real abstracts: embedding {embed_s:.1f}s ({rate:.1f}/s); matching them "
        f"{match_s:.2f}s = {match_s / embed_s * 100:.1f}% of their embedding time "
        f"(target <= 10%)"
    )
    print(
        f"training the matcher: {train_s:.2f}s on {examples} examples, whose embedding at the "
        f"same rate takes {examples / rate:.0f}s: {train_s / (examples / rate) * 100:.1f}% "
        f"(target <= 10%); it runs once after new feedback, not per batch"
    )


def training_time(labels: int) -> None:
    settings = load_settings(data_dir="/tmp/veille-matching-speed")
    embedder = get_embedder()
    taxonomy = load_taxonomy(settings)
    base = [e for e in examples_for(None, taxonomy, embedder) if e.origin not in NOT_DOCUMENTS]
    rng = np.random.default_rng(0)
    grown: list[Example] = []
    while len(grown) < labels:
        e = base[int(rng.integers(len(base)))]
        noisy = e.vector + rng.normal(0, 0.01, e.vector.shape).astype(np.float32)
        grown.append(Example(e.key, noisy / np.linalg.norm(noisy), e.labels, "team"))
    t0 = time.perf_counter()
    model = train(grown, taxonomy, embedder)
    seconds = time.perf_counter() - t0
    learned = sum(1 for t in model.targets.values() if t.mode == "learned")
    print(
        f"training on {len(grown)} labelled vectors: {seconds:.1f}s for {len(model.targets)} "
        f"targets ({learned} calibrated with 5-fold cross-validation) (target <= 30 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--labels", type=int, default=10_000)
    args = parser.parse_args()
    matching_cost(args.docs)
    training_time(args.labels)


if __name__ == "__main__":
    main()

"""`veille trends` time on a 28k-document store, the model already loaded.

    .venv/bin/python benchmarks/themes_bench.py --docs 28000 --weeks 67

Builds a throwaway SQLite store under /tmp (kept between runs; --fresh rebuilds) of synthetic
papers spread over ``--weeks`` weeks like the arXiv sample (28k papers over 15 months): each
belongs to one of 80 topics (a random point of the 384-dimension space, documents scattered
around it), has a primary arXiv category (10% outside machine learning), one or two technique
tags, one use-case match, and a title and abstract built from its topic's words. Three topics
grow in the last four weeks. Then it loads the bundled model (not timed) and times what the
command does: ``trend_report`` and ``emerging_themes`` (scope, k-means, growth test, names
with phrase embeddings and keywords, sectors), three runs. The first run starts, as a new
process would, with no phrase vector in memory: on a store used before they come from its disk
cache.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from _common import peak_rss_mb, scratch_folder, size_args, synthetic_labels

from core.settings import load_settings
from core.store import Store, documents
from index.embedder import get_embedder
from index.matching import doc_matches, doc_techniques, week_number
from index.taxonomy import load_taxonomy
from index.theme_labels import forget_phrase_vectors
from index.trends import emerging_themes, trend_report
from index.vectors import embeddings

NOW = datetime(2026, 6, 30, 23, tzinfo=UTC)
WORDS = (
    "graph diffusion policy retrieval speech segmentation detection tracking reasoning agent "
    "planning molecule protein fraud forecasting anomaly contract imaging surgery robot "
    "grasping navigation translation summarization recommendation quantization pruning "
    "distillation attention memory federated privacy watermark video audio layout table "
    "chart medical legal retail tabular sensor"
).split()
CATEGORIES = ["cs.CV", "cs.CL", "cs.LG", "cs.AI", "cs.RO", "cs.IR", "eess.IV", "cs.IT", "cs.GT"]


def build(store: Store, settings, n: int, weeks: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    taxonomy = load_taxonomy(settings)
    techs = [t.key for t in taxonomy.techniques]
    ucs = [(u.key, u.sector) for u in taxonomy.use_cases]
    dim = get_embedder(settings.model, max_chars=settings.embed_max_chars).dim
    centres = nrng.normal(size=(80, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic_words = [rng.sample(WORDS, 4) for _ in range(80)]
    start = NOW - timedelta(weeks=weeks)
    span = (NOW - start).total_seconds()
    recent_from = NOW - timedelta(weeks=4)
    stamp = datetime(2026, 1, 1)
    batch = 5_000
    for lo in range(0, n, batch):
        docs, vecs, tags, matches = [], [], [], []
        for i in range(lo, min(n, lo + batch)):
            published = start + timedelta(seconds=rng.random() * span)
            topic = rng.randrange(80)
            if published >= recent_from and rng.random() < 0.08:
                topic = rng.choice([3, 17, 42])  # three growing topics
            vec = centres[topic] + 0.9 * nrng.normal(size=dim).astype(np.float32) / np.sqrt(dim)
            vec = (vec / np.linalg.norm(vec)).astype(np.float32)
            w = topic_words[topic]
            category = CATEGORIES[topic % len(CATEGORIES)]
            chash = f"{i:064x}"
            docs.append(
                {
                    "id": i + 1,
                    "canonical_id": f"syn:{i}",
                    "kind": "paper",
                    "source": "arxiv",
                    "title": f"{w[0].title()} {w[1]} for {w[2]} {w[3]}: study {i}",
                    "text": f"We present {w[0]} {w[1]} models for {w[2]} {w[3]}. "
                    f"Experiments on {rng.choice(WORDS)} data follow.",
                    "url": "",
                    "published": published.replace(tzinfo=None),
                    "authors": [],
                    "categories": [category, "cs.LG"] if topic % 3 == 0 else [category],
                    "language": "en",
                    "content_hash": chash,
                    "extra": {"primary_category": category},
                    "rev": 1,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            vecs.append({"model": settings.model, "content_hash": chash, "vector": vec.tobytes()})
            week = week_number(published)
            doc_tags, match = synthetic_labels(i + 1, week, techs, ucs, rng, rng.choice([1, 2]))
            tags.extend(doc_tags)
            matches.append(match)
        with store.engine.begin() as conn:
            conn.execute(documents.insert(), docs)
            conn.execute(embeddings.insert(), vecs)
            conn.execute(doc_techniques.insert(), tags)
            conn.execute(doc_matches.insert(), matches)


def main() -> None:
    args = size_args(__doc__, docs=28_000, weeks=67)
    folder = scratch_folder(f"veille-themes-bench-{args.docs}-{args.weeks}", fresh=args.fresh)
    settings = load_settings(data_dir=str(folder))
    store = Store.from_settings(settings)
    t0 = time.perf_counter()
    embedder = get_embedder(settings.model, max_chars=settings.embed_max_chars)
    embedder.encode(["warm up"])
    print(f"model loaded in {time.perf_counter() - t0:.1f} s (not counted)")
    with store.engine.connect() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(documents)).scalar()
    if not have:
        t0 = time.perf_counter()
        build(store, settings, args.docs, args.weeks)
        print(f"built {args.docs:,} synthetic documents in {time.perf_counter() - t0:.1f} s")
    for run in range(3):
        if run == 0:
            # as in a new `veille trends` process: phrase vectors only from the disk cache
            # (data_dir/cache, written by an earlier run; absent on a --fresh store)
            forget_phrase_vectors()
        t0 = time.perf_counter()
        report = trend_report(store, settings, by="technique", weeks=12, now=NOW)
        t1 = time.perf_counter()
        found = emerging_themes(store, settings, now=NOW)
        t2 = time.perf_counter()
        print(
            f"run {run + 1}{' (new process)' if run == 0 else ''}: trends {t1 - t0:.2f} s + themes {t2 - t1:.2f} s = {t2 - t0:.2f} s "
            f"({args.docs:,} documents, {sum(report.totals):,} in the 12 weeks, "
            f"{len(found)} theme(s): {'; '.join(t.heading for t in found)})"
        )
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

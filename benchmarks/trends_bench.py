"""Trend report latency on synthetic rows: N documents spread over 52 weeks, tagged.

    .venv/bin/python benchmarks/trends_bench.py --docs 1000000 --weeks 52

Builds a throwaway SQLite store under /tmp (kept between runs: pass --fresh to rebuild),
then times ``trend_report`` by technique and by use case (the full path the CLI and the
dashboard use: SQL aggregation, weekly series, burst tests).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from _common import peak_rss_mb, scratch_folder, size_args, synthetic_labels

from core.settings import load_settings
from core.store import Store, documents
from index.matching import doc_matches, doc_techniques, week_number
from index.taxonomy import load_taxonomy
from index.trends import trend_report

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def build(store: Store, n: int, weeks: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    settings = load_settings(data_dir="/tmp")
    taxonomy = load_taxonomy(settings)
    techs = [t.key for t in taxonomy.techniques]
    ucs = [(u.key, u.sector) for u in taxonomy.use_cases]
    start = NOW - timedelta(weeks=weeks)
    span = (NOW - start).total_seconds()
    stamp = datetime(2026, 1, 1)
    batch = 50_000
    for lo in range(0, n, batch):
        docs, tags, matches = [], [], []
        for i in range(lo, min(n, lo + batch)):
            published = (start + timedelta(seconds=rng.random() * span)).replace(tzinfo=None)
            docs.append(
                {
                    "id": i + 1,
                    "canonical_id": f"syn:{i}",
                    "kind": "paper",
                    "source": "synthetic",
                    "title": "t",
                    "text": "x",
                    "url": "",
                    "published": published,
                    "authors": [],
                    "categories": [],
                    "language": "en",
                    "content_hash": f"{i:064x}",
                    "extra": {},
                    "rev": 1,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            week = week_number(published.replace(tzinfo=UTC))
            doc_tags, match = synthetic_labels(i + 1, week, techs, ucs, rng, 2)
            tags.extend(doc_tags)
            matches.append(match)
        with store.engine.begin() as conn:
            conn.execute(documents.insert(), docs)
            conn.execute(doc_techniques.insert(), tags)
            conn.execute(doc_matches.insert(), matches)


def main() -> None:
    args = size_args(__doc__, docs=1_000_000, weeks=52)
    folder = scratch_folder(f"veille-trends-bench-v2-{args.docs}", fresh=args.fresh)
    store = Store(f"sqlite:///{folder}/veille.db")
    settings = load_settings(data_dir=str(folder))
    with store.engine.connect() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(documents)).scalar()
    if not have:
        t0 = time.perf_counter()
        build(store, args.docs, args.weeks)
        print(f"built {args.docs:,} synthetic documents in {time.perf_counter() - t0:.1f} s")
    for by in ("technique", "use_case"):
        for run in range(3):
            t0 = time.perf_counter()
            report = trend_report(store, settings, by=by, weeks=args.weeks, now=NOW)
            took = time.perf_counter() - t0
            print(
                f"trend_report by={by} docs={args.docs:,} weeks={args.weeks} run={run + 1}: "
                f"{took:.2f} s, {len(report.items)} items, {sum(report.totals):,} docs in window"
            )
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

"""Month by month: which techniques and sector use cases grow or decline on the real sample.

    .venv/bin/python benchmarks/monthly_trends.py --data-dir DIR [--top 3]

Reads the tagger's and matcher's output (``doc_techniques``, ``doc_matches``) of an indexed,
matched store of arXiv sample papers and counts, per calendar month of publication, the
documents per technique and per use case. For every month it prints the ``--top`` largest rises
and falls against the previous month with the raw counts and the share of the month's documents
(``--rank share`` ranks on the change of share instead, as the sample's monthly volume varies
from 81 to 329 papers), then a month x technique table.

The publication date is ``documents.published``; when the store has none (the matching-eval
store was built without dates), it is taken from the sample's own record
(../shared/data/arxiv_sample.jsonl, field ``published``), matched on the arXiv id.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict

import sqlalchemy as sa
from _common import SHARED, need

from core.settings import load_settings
from core.store import Store, documents
from index.matching import doc_matches, doc_techniques
from index.taxonomy import load_taxonomy


def month_of_docs(store: Store) -> tuple[dict[int, str], Counter]:
    """Publication month (YYYY-MM) per document id, and where each date came from."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(documents.c.id, documents.c.canonical_id, documents.c.published)
        ).all()
    fallback: dict[str, str] = {}
    if any(r.published is None for r in rows):
        with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if rec.get("published"):
                    fallback[rec["id"]] = rec["published"][:7]
    months, origin = {}, Counter()
    for r in rows:
        if r.published is not None:
            months[r.id] = r.published.strftime("%Y-%m")
            origin["store"] += 1
        elif r.canonical_id in fallback:
            months[r.id] = fallback[r.canonical_id]
            origin["jsonl"] += 1
        else:
            origin["undated"] += 1
    return months, origin


def monthly_counts(
    store: Store, months: dict[int, str], table: sa.Table, column: str
) -> dict[str, Counter]:
    """month -> Counter(name -> number of documents)."""
    out: dict[str, Counter] = defaultdict(Counter)
    with store.engine.connect() as conn:
        for doc_id, name in conn.execute(sa.select(table.c.doc_id, table.c[column])):
            if doc_id in months:
                out[months[doc_id]][name] += 1
    return out


def all_months(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def movers(
    prev: Counter, cur: Counter, names: list[str], top: int, *, totals: tuple[int, int], rank: str
) -> tuple[list[tuple], list[tuple]]:
    """The ``top`` largest rises and falls as (name, before, after, delta, share before, after)."""
    n0, n1 = max(totals[0], 1), max(totals[1], 1)
    rows = [(n, prev[n], cur[n], cur[n] - prev[n], prev[n] / n0, cur[n] / n1) for n in names]

    def change(row: tuple) -> float:
        return row[3] if rank == "count" else row[5] - row[4]

    up = sorted((r for r in rows if change(r) > 0), key=lambda r: (-change(r), r[0]))[:top]
    down = sorted((r for r in rows if change(r) < 0), key=lambda r: (change(r), r[0]))[:top]
    return up, down


def fmt(items: list[tuple]) -> str:
    return (
        "; ".join(
            f"{n} {a} -> {b} ({d:+d}; {100 * s0:.0f}% -> {100 * s1:.0f}%)"
            for n, a, b, d, s0, s1 in items
        )
        or "none"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True, help="an indexed store of arXiv sample papers")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--rank", choices=["count", "share"], default="count")
    args = ap.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    taxonomy = load_taxonomy(settings)
    months, origin = month_of_docs(store)
    print(f"{len(months)} dated documents; dates from: {dict(origin)}")
    docs_per_month = Counter(months.values())
    span = all_months(min(docs_per_month), max(docs_per_month))
    techniques = [t.key for t in taxonomy.techniques]
    use_cases = [uc.key for uc in taxonomy.use_cases]
    by_tech = monthly_counts(store, months, doc_techniques, "technique")
    by_case = monthly_counts(store, months, doc_matches, "use_case")

    print(f"\n## Growing and declining, month over month (ranked by {args.rank})\n")
    for prev, cur in zip(span, span[1:], strict=False):
        print(f"### {cur} ({docs_per_month[prev]} -> {docs_per_month[cur]} documents)")
        for label, counts, names in (
            ("techniques", by_tech, techniques),
            ("use cases", by_case, use_cases),
        ):
            totals = (docs_per_month[prev], docs_per_month[cur])
            up, down = movers(
                counts[prev], counts[cur], names, args.top, totals=totals, rank=args.rank
            )
            print(f"- {label} up:   {fmt(up)}")
            print(f"- {label} down: {fmt(down)}")
        print()

    print("## Documents per month and technique\n")
    short = {
        k: k.replace("reinforcement_learning", "rl").replace("machine_learning", "ml")
        for k in techniques
    }
    print("| month | docs | " + " | ".join(short[k] for k in techniques) + " |")
    print("|---|---:|" + "---:|" * len(techniques))
    for month in span:
        cells = " | ".join(str(by_tech[month][k]) for k in techniques)
        print(f"| {month} | {docs_per_month[month]} | {cells} |")


if __name__ == "__main__":
    main()

"""Sector matching quality on arXiv categories: semantic matcher vs a keyword-only baseline.

    .venv/bin/python benchmarks/matching_eval.py --data-dir /tmp/veille-match-eval

The data directory must hold an indexed store of arXiv sample papers (e.g. a copy of the
one benchmarks/search_quality.py builds under /tmp/veille-bench-arxiv): matching reuses the
stored vectors, nothing is embedded again. Labels come from arXiv categories only
(``CATEGORY_SECTORS``): a paper is relevant to a sector when one of its categories maps to
it. Legal and retail have no category signal; they need hand labels (not done yet).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa
from _common import SHARED, need, peak_rss_mb

from core.settings import load_settings
from core.store import Store, documents
from index.embedder import get_embedder
from index.keyword import tokenize
from index.matching import _find, doc_matches, match_documents, prepare
from index.taxonomy import load_taxonomy

# category prefix -> sector key (only unambiguous ones)
CATEGORY_SECTORS = {
    "q-fin.": "finance",
    "q-bio.": "health",
    "physics.med-ph": "health",
    "cs.RO": "industry",
    "eess.SY": "industry",
}


def sectors_of(categories: list[str]) -> set[str]:
    return {s for c in categories for p, s in CATEGORY_SECTORS.items() if c.startswith(p)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default="/tmp/veille-match-eval")
    ap.add_argument("--k", type=int, default=20)
    args = ap.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    embedder = get_embedder(settings.model, max_chars=settings.embed_max_chars)
    t0 = time.perf_counter()
    n = match_documents(store, settings, embedder=embedder)
    print(f"matched {n} documents in {time.perf_counter() - t0:.1f} s (stored vectors)")
    prepared = prepare(load_taxonomy(settings), embedder)
    cats_of = {}
    with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            cats_of[rec["id"]] = rec.get("categories") or []
    labels: dict[int, set[str]] = {}
    cid_of: dict[int, str] = {}
    keyword: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with store.engine.connect() as conn:
        for doc_id, cid, title, text in conn.execute(
            sa.select(documents.c.id, documents.c.canonical_id, documents.c.title, documents.c.text)
        ):
            labels[doc_id] = sectors_of(cats_of.get(cid, []))
            cid_of[doc_id] = cid
            tokens = tokenize(f"{title}. {text}")
            best: dict[str, int] = defaultdict(int)
            for uc, phrases in zip(prepared.use_cases, prepared.use_case_phrases, strict=True):
                found = sum(_find(tokens, p) for _, p in phrases)
                best[uc.sector] = max(best[uc.sector], found)
            for sector, found in best.items():
                if found:
                    keyword[sector].append((found, doc_id))
        semantic: dict[str, dict[int, float]] = defaultdict(dict)
        for doc_id, sector, score in conn.execute(
            sa.select(doc_matches.c.doc_id, doc_matches.c.sector, doc_matches.c.score)
        ):
            semantic[sector][doc_id] = max(score, semantic[sector].get(doc_id, 0.0))
    print(f"{len(labels)} papers; labels from categories {sorted(CATEGORY_SECTORS)}")
    print(
        f"{'sector':8} {'relevant':>8} | {'sem P@' + str(args.k):>9} {'sem recall':>10} "
        f"{'matched':>7} | {'kw P@' + str(args.k):>8} {'kw recall':>9} {'kw hits':>7}"
    )
    for sector in sorted(set(CATEGORY_SECTORS.values())):
        relevant = {d for d, s in labels.items() if sector in s}
        sem = sorted(semantic[sector], key=lambda d: -semantic[sector][d])
        kw = [d for _, d in sorted(keyword[sector], key=lambda x: (-x[0], x[1]))]

        def p_at(ranked: list[int], rel: set[int] = relevant) -> float:
            top = ranked[: args.k]
            return sum(d in rel for d in top) / args.k

        def recall(ranked: list[int], rel: set[int] = relevant) -> float:
            return len(rel & set(ranked)) / max(len(rel), 1)

        print(
            f"{sector:8} {len(relevant):>8} | {p_at(sem):>9.2f} {recall(sem):>10.2f} "
            f"{len(sem):>7} | {p_at(kw):>8.2f} {recall(kw):>9.2f} {len(kw):>7}"
        )
    judged = _hand_labels()
    print(f"\nhand-judged precision@{args.k} (benchmarks/labels/sector_top20_judged.tsv)")
    print(f"{'sector':8} {'semantic':>9} {'judged':>7} | {'keyword':>8} {'judged':>7}")
    for sector in ("finance", "legal", "retail", "industry", "health"):
        sem = sorted(semantic[sector], key=lambda d: -semantic[sector][d])[: args.k]
        kw = [d for _, d in sorted(keyword[sector], key=lambda x: (-x[0], x[1]))][: args.k]
        cells = []
        for ranked in (sem, kw):
            marks = [judged.get((sector, cid_of[d])) for d in ranked]
            known = [m for m in marks if m is not None]
            cells.append((sum(known) / args.k, f"{len(known)}/{len(ranked)}"))
        print(
            f"{sector:8} {cells[0][0]:>9.2f} {cells[0][1]:>7} | {cells[1][0]:>8.2f} {cells[1][1]:>7}"
        )
    print(f"peak RSS {peak_rss_mb():.0f} MB")


def _hand_labels() -> dict[tuple[str, str], int]:
    path = Path(__file__).resolve().parent / "labels" / "sector_top20_judged.tsv"
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sector, aid, rel = line.split("\t")
        out[(sector, aid)] = int(rel)
    return out


if __name__ == "__main__":
    main()

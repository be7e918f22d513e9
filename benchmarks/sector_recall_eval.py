"""Sector matching recall on pooled hand judgments, reported on a tuning and a held-out half.

    cp -r /tmp/veille-match-eval /tmp/veille-sector-eval
    .venv/bin/python benchmarks/sector_recall_eval.py --data-dir /tmp/veille-sector-eval --rematch
    .venv/bin/python benchmarks/sector_recall_eval.py --data-dir /tmp/veille-sector-eval \\
        --dump-pool /tmp/veille-sector-eval/pool.txt    # titles + abstracts to judge by hand
    .venv/bin/python benchmarks/sector_recall_eval.py --data-dir /tmp/veille-sector-eval

The data directory must hold an indexed, matched store of arXiv sample papers (a copy of
/tmp/veille-match-eval). The matcher's output is read from its ``doc_matches`` table;
``--rematch`` first re-runs matching from the stored vectors (nothing is embedded again apart
from the few taxonomy texts). Nothing in the matcher or the taxonomy is changed.

Pooling (as in TREC), per sector:
  (a) every paper the semantic matcher matched to the sector;
  (b) the keyword-only baseline's top 40 over the whole store and its top 20 in each half
      (the baseline is the one of benchmarks/matching_eval.py: a paper's keyword score for a
      sector is the largest number of a use case's keyword phrases found in title + abstract;
      ties are broken by store id);
  (c) 40 papers drawn at random, with a fixed seed, from the papers outside (a) and (b).
Every pooled (sector, paper) is judged by hand from title and abstract. Labels come from
benchmarks/labels/sector_pool_judged.tsv, falling back on the earlier top-20 judgments of
benchmarks/labels/sector_top20_judged.tsv for the same (sector, id).

Split: ``tuning`` when int(sha1(arXiv id)) is even, ``heldout`` otherwise (the rule of
benchmarks/technique_eval.py). The random sample (c) estimates how many relevant papers
neither (a) nor (b) contains: relevant rate in the sample x size of that unpooled remainder,
with a 95 % Wilson interval on the rate.
The keyword baseline's recall is given both at the matcher's list length (``kw rec=n``) and
over all its hits (any keyword found; a much longer list).

Before/after a taxonomy change, ``--pool-from DIR --pool-taxonomy FILE`` keeps the strata (a),
(b) and (c) of the earlier run (its store and taxonomy) fixed and adds the current matches as a
new stratum; ``--extra-matches DIR`` adds another run's matches, so that the earlier matcher can
be scored on the very same pool (see RESULTS-issue5-sectors.md).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa
from _common import peak_rss_mb

from core.settings import load_settings
from core.store import Store, documents
from index.embedder import get_embedder
from index.keyword import tokenize
from index.matching import _find, doc_matches, match_documents, prepare
from index.taxonomy import load_taxonomy

SECTORS = ("finance", "legal", "retail", "industry", "health")
LABELS = Path(__file__).resolve().parent / "labels"
KW_POOL = 40
KW_POOL_PER_SPLIT = 20
RANDOM_PER_SECTOR = 40
SEED = 20261125
K = 20


def split_of(arxiv_id: str) -> str:
    return "tuning" if int(hashlib.sha1(arxiv_id.encode()).hexdigest(), 16) % 2 == 0 else "heldout"


def load_labels() -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """(new pool judgments, earlier top-20 judgments), each keyed by (sector, arxiv id)."""
    new: dict[tuple[str, str], int] = {}
    path = LABELS / "sector_pool_judged.tsv"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            sector, aid, split, rel = line.split("\t")
            if split != split_of(aid):
                sys.exit(f"{path}: split of {aid} should be {split_of(aid)}")
            new[(sector, aid)] = int(rel)
    old: dict[tuple[str, str], int] = {}
    for line in (LABELS / "sector_top20_judged.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sector, aid, rel = line.split("\t")
        old[(sector, aid)] = int(rel)
    return new, old


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def build(store: Store, settings, embedder) -> dict:
    prepared = prepare(load_taxonomy(settings), embedder)
    cid_of: dict[int, str] = {}
    text_of: dict[int, tuple[str, str]] = {}
    keyword: dict[str, dict[int, int]] = defaultdict(dict)
    with store.engine.connect() as conn:
        for doc_id, cid, title, text in conn.execute(
            sa.select(documents.c.id, documents.c.canonical_id, documents.c.title, documents.c.text)
        ):
            cid_of[doc_id] = cid
            text_of[doc_id] = (title, text)
            tokens = tokenize(f"{title}. {text}")
            best: dict[str, int] = defaultdict(int)
            for uc, phrases in zip(prepared.use_cases, prepared.use_case_phrases, strict=True):
                found = sum(_find(tokens, p) for _, p in phrases)
                best[uc.sector] = max(best[uc.sector], found)
            for sector, found in best.items():
                if found:
                    keyword[sector][doc_id] = found
        semantic: dict[str, dict[int, float]] = defaultdict(dict)
        for doc_id, sector, score in conn.execute(
            sa.select(doc_matches.c.doc_id, doc_matches.c.sector, doc_matches.c.score)
        ):
            semantic[sector][doc_id] = max(score, semantic[sector].get(doc_id, 0.0))
    split = {d: split_of(c) for d, c in cid_of.items()}
    out = {"cid_of": cid_of, "text_of": text_of, "split": split, "sectors": {}}
    for sector in SECTORS:
        sem = sorted(semantic[sector], key=lambda d: (-semantic[sector][d], d))
        kw = sorted(keyword[sector], key=lambda d: (-keyword[sector][d], d))
        kw_pool = set(kw[:KW_POOL])
        for half in ("tuning", "heldout"):
            kw_pool |= set([d for d in kw if split[d] == half][:KW_POOL_PER_SPLIT])
        rest = sorted(set(cid_of) - set(sem) - kw_pool)
        rng = random.Random(f"{SEED}-{sector}")
        sample = set(rng.sample(rest, min(RANDOM_PER_SECTOR, len(rest))))
        out["sectors"][sector] = {
            "sem": sem,
            "kw": kw,
            "kw_pool": kw_pool,
            "rest": set(rest),
            "sample": sample,
            "pool": set(sem) | kw_pool | sample,
        }
    return out


def dump_pool(data: dict, path: Path) -> None:
    """Write every pooled (sector, paper) with its title and abstract, for hand judging."""
    new, old = load_labels()
    cid_of, text_of = data["cid_of"], data["text_of"]
    with path.open("w", encoding="utf-8") as fh:
        for sector in SECTORS:
            s = data["sectors"][sector]
            for d in sorted(s["pool"], key=lambda d: cid_of[d]):
                key = (sector, cid_of[d])
                known = new.get(key, old.get(key))
                src = "".join(
                    tag
                    for tag, part in (("S", set(s["sem"])), ("K", s["kw_pool"]), ("R", s["sample"]))
                    if d in part
                )
                title, text = text_of[d]
                fh.write(
                    f"=== {sector}\t{cid_of[d]}\t{split_of(cid_of[d])}\t{src}\t"
                    f"known={'' if known is None else known}\n{title}\n{' '.join(text.split())}\n\n"
                )
    print(f"wrote {path}")


def report(data: dict) -> None:
    new, old = load_labels()
    cid_of, split = data["cid_of"], data["split"]
    missing = 0
    reused = 0

    def rel(sector: str, d: int) -> int | None:
        nonlocal missing, reused
        key = (sector, cid_of[d])
        if key in new:
            return new[key]
        if key in old:
            reused += 1
            return old[key]
        missing += 1
        return None

    rows = []
    for sector in SECTORS:
        s = data["sectors"][sector]
        labels = {d: rel(sector, d) for d in s["pool"]}
        for half in ("tuning", "heldout", "all"):

            def keep(d: int, half: str = half) -> bool:
                return half == "all" or split[d] == half

            pool = [d for d in s["pool"] if keep(d)]
            relevant = {d for d in pool if labels[d] == 1}
            sem = [d for d in s["sem"] if keep(d)]
            kw = [d for d in s["kw"] if keep(d)]
            sample = [d for d in s["sample"] if keep(d)]
            rest = [d for d in s["rest"] if keep(d)]
            sem_rel = sum(labels[d] == 1 for d in sem)
            top = sem[:K]
            kw_top = kw[:K]
            s_hits = sum(labels[d] == 1 for d in sample)
            rate = s_hits / len(sample) if sample else 0.0
            lo, hi = wilson(s_hits, len(sample))
            # relevant papers found by (a) or (b), plus the estimate for the unpooled rest
            found_ab = len({d for d in relevant if d not in s["rest"]})
            est_total = found_ab + rate * len(rest)
            rows.append(
                {
                    "sector": sector,
                    "half": half,
                    "judged": len(pool),
                    "relevant": len(relevant),
                    "matched": len(sem),
                    "sem_prec": sem_rel / len(sem) if sem else float("nan"),
                    "sem_p20": sum(labels[d] == 1 for d in top) / max(len(top), 1),
                    "sem_top": len(top),
                    "sem_recall": len(relevant & set(sem)) / max(len(relevant), 1),
                    "kw_p20": sum(labels[d] == 1 for d in kw_top) / max(len(kw_top), 1),
                    "kw_recall": len(relevant & set(kw)) / max(len(relevant), 1),
                    "kw_recall_eq": len(relevant & set(kw[: len(sem)])) / max(len(relevant), 1),
                    "kw_hits": len(kw),
                    "sample": f"{s_hits}/{len(sample)}",
                    "rest": len(rest),
                    "missed_est": rate * len(rest),
                    "missed_lo": lo * len(rest),
                    "missed_hi": hi * len(rest),
                    "sem_recall_est": sem_rel / est_total if est_total else float("nan"),
                    "sem_recall_low": sem_rel / (found_ab + hi * len(rest)) if sem_rel else 0.0,
                }
            )
    if missing:
        print(f"warning: {missing} pooled (sector, paper) pairs have no judgment yet")
    print(f"labels: {len(new)} in sector_pool_judged.tsv, {reused} reused from the top-20 file")
    head = (
        f"{'sector':8} {'half':7} {'judged':>6} {'rel':>4} | {'matched':>7} {'prec':>5} "
        f"{'P@20':>9} {'recall':>6} | {'kw P@20':>7} {'kw rec=n':>8} {'kw rec':>6} {'kw hits':>7} | "
        f"{'sample':>6} {'unpooled':>8} {'missed est [95%]':>17} {'est rec [low]':>13}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['sector']:8} {r['half']:7} {r['judged']:>6} {r['relevant']:>4} | "
            f"{r['matched']:>7} {r['sem_prec']:>5.2f} {r['sem_p20']:>5.2f}/{r['sem_top']:<3} "
            f"{r['sem_recall']:>6.2f} | {r['kw_p20']:>7.2f} {r['kw_recall_eq']:>8.2f} "
            f"{r['kw_recall']:>6.2f} "
            f"{r['kw_hits']:>7} | {r['sample']:>6} {r['rest']:>8} "
            f"{r['missed_est']:>5.0f} [{r['missed_lo']:>3.0f}-{r['missed_hi']:>4.0f}]    "
            f"{r['sem_recall_est']:>7.2f} [{r['sem_recall_low']:.2f}]"
        )


def freeze_pool(data: dict, old: dict, extra: list[dict]) -> dict:
    """Compare matchers on one pool: the strata (a), (b), (c) of an earlier run, plus the matches
    of the current run (and of ``extra`` runs) as a new stratum. The unpooled remainder loses
    the newly matched papers, and the earlier random sample is kept where it still lies in that
    remainder (it stays a uniform sample of it); the keyword baseline is the earlier one."""
    for sector in SECTORS:
        s, o = data["sectors"][sector], old["sectors"][sector]
        new_sem = set(s["sem"]).union(*(set(e["sectors"][sector]["sem"]) for e in extra))
        rest = o["rest"] - new_sem
        s.update(
            kw=o["kw"],
            kw_pool=o["kw_pool"],
            rest=rest,
            sample=o["sample"] & rest,
            pool=o["pool"] | new_sem,
        )
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default="/tmp/veille-sector-eval")
    ap.add_argument("--rematch", action="store_true", help="re-run matching from stored vectors")
    ap.add_argument("--dump-pool", type=Path, help="write the pool with texts for judging")
    ap.add_argument(
        "--pool-from",
        help="data dir of an earlier run whose pool (a, b, c) is kept fixed, for before/after",
    )
    ap.add_argument("--pool-taxonomy", help="taxonomy file of that earlier run (keyword pool)")
    ap.add_argument(
        "--extra-matches",
        action="append",
        default=[],
        help="data dir of another run whose matches join the pool (repeatable)",
    )
    args = ap.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    embedder = get_embedder(settings.model, max_chars=settings.embed_max_chars)
    if args.rematch:
        t0 = time.perf_counter()
        n = match_documents(store, settings, embedder=embedder)
        print(f"matched {n} documents in {time.perf_counter() - t0:.1f} s (stored vectors)")
    data = build(store, settings, embedder)
    if args.pool_from:
        old_settings = load_settings(data_dir=args.pool_from, taxonomy_file=args.pool_taxonomy)
        old = build(Store.from_settings(old_settings), old_settings, embedder)
        extra = []
        for d in args.extra_matches:
            more = load_settings(data_dir=d)
            extra.append(build(Store.from_settings(more), more, embedder))
        data = freeze_pool(data, old, extra)
    for sector in SECTORS:
        s = data["sectors"][sector]
        print(
            f"{sector:8} pool {len(s['pool']):>3} = matched {len(s['sem'])}, "
            f"keyword {len(s['kw_pool'])}, random {len(s['sample'])} (overlaps counted once)"
        )
    if args.dump_pool:
        dump_pool(data, args.dump_pool)
    else:
        report(data)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

"""Sector matching on the team's judged papers: learned matcher against simple baselines.

Usage: .venv/bin/python benchmarks/sector_eval.py [--curve-seeds 5] [--without-written]
                                                   [--leave-out-pools near,top,random3,rest]

Labels: index/data/labels/sector_labels.tsv (two independent judges, a third on
disagreements; see the README beside it). Only papers listed before 2025-07-01 are there.
The split is by listing date: ``train`` (before 2025-06-01) is the only part anything was
tuned on; ``test`` (June 2025) is scored here and nowhere else. ``audit`` papers (listed
before June 2025, drawn from the shipped matcher's top predictions among papers nobody had
judged) are never trained on: they show the matcher's precision where it is most likely wrong.

Printed, per sector, on the test split (precision and recall with Wilson 95% intervals):
* veille: what Veille matches (index/matching.py): the learned classifiers, trained on the
  train split only, plus the description-and-keywords rule kept for rare use cases;
* learned: the sector classifier of index/training.py alone (its threshold chosen on
  out-of-fold train scores), trained exactly as `veille matcher train` trains it (the
  judged train papers, the use-case descriptions and the team's written examples, see
  index/labels.py; --without-written leaves the last out, to measure what they add);
* rules: the description-and-keywords scorer the matcher falls back to (the matcher before
  this one);
* dense@1t: one MiniLM similarity threshold to the sector's use-case descriptions, the
  threshold picked for best F1 on the train split;
* keywords: a paper fits when one of the sector's taxonomy keywords occurs in it.
Then the learning curve of a new use case (its description, then 10/20/50/100 answers
asked near the threshold, five at a time, or at random; random is averaged over
--curve-seeds orders), and the answers needed to reach F1 0.8; then
technique tagging, micro- and macro-F1 on the judged techniques. The audit papers are
scored right after the test split.

Every June paper of the sample is judged: 776 were drawn by the first round's pools, the rest
in the round that judged every paper no pool had drawn (pool ``rest``). Each sector's line
for the 776 alone shows how much the pools, which favour papers with the sector's words or
meaning, flatter recall. --leave-out-pools trains without the train papers of the pools
named, to show what later judging rounds added.

Texts for the rules, keyword and technique baselines come from ../shared/data (the arXiv
sample); the learned matcher and the dense baseline use only the shipped vectors.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from _common import SHARED, need

from core.models import Document
from core.settings import load_settings
from index.embedder import get_embedder
from index.keyword import find_phrase, tokenize
from index.labels import ALL_THE_REST, SECTORS, read_labels, shipped_vectors
from index.match_rules import match_one, prepare
from index.matcher_model import Example, calibrated
from index.taxonomy import load_taxonomy
from index.training import NOT_DOCUMENTS, examples_for, pick_threshold, train, train_target

Z = 1.959964


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def scores(pred: np.ndarray, gold: np.ndarray) -> dict:
    tp = int((pred & gold).sum())
    fp = int((pred & ~gold).sum())
    fn = int((~pred & gold).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "p": p,
        "r": r,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "p_ci": wilson(tp, tp + fp),
        "r_ci": wilson(tp, tp + fn),
    }


def f1_interval(pred: np.ndarray, gold: np.ndarray, reps: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of F1, resampling the judged papers (F1 has no
    closed-form interval like Wilson's for P and R; with 10 to 17 relevant test papers in
    some sectors it is wide)."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(gold), size=(reps, len(gold)))
    hit, flag, real = (pred & gold)[picks], pred[picks], gold[picks]
    tp = hit.sum(axis=1)
    denominator = flag.sum(axis=1) + real.sum(axis=1)
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return float(np.percentile(f1, 2.5)), float(np.percentile(f1, 97.5))


def fmt(s: dict) -> str:
    return (
        f"P {s['p']:.2f} [{s['p_ci'][0]:.2f}-{s['p_ci'][1]:.2f}]  "
        f"R {s['r']:.2f} [{s['r_ci'][0]:.2f}-{s['r_ci'][1]:.2f}]  F1 {s['f1']:.2f}"
    )


def load_texts(ids: set[str]) -> dict[str, dict]:
    out = {}
    with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record["id"] in ids:
                out[record["id"]] = record
    return out


def learning_curve(
    pool: list[Example],
    test: list[Example],
    target: str,
    description: Example,
    background: list[Example],
    steps: list[int],
    seeds: int,
) -> dict[str, list[float]]:
    """F1 on ``test`` for ``target`` after n answers, asked near the threshold or at random.

    The use case starts as new: its description is its only example, plus ``background``
    (known negatives, if any). Answers come from ``pool`` (the judges' label for the use case
    plays the user)."""
    gold_test = np.array([e.labels[target] for e in test])
    x_test = np.stack([e.vector for e in test])

    def fit_eval(answered: list[Example]) -> tuple[float, callable]:
        data = [description, *background, *answered]
        x = np.stack([e.vector for e in data])
        y = np.array([int(e.labels[target]) for e in data])
        w = np.array([e.weight for e in data])
        real = np.array([e.origin not in NOT_DOCUMENTS for e in data])
        tgt, coef, b, (pa, pb, _) = train_target(target, x, y, w, real)  # no neighbours
        s = x_test @ coef + b
        probs = calibrated(pa * s + pb)
        pred = probs >= tgt.threshold
        return scores(pred, gold_test)["f1"], (coef, b, pa, pb, tgt.threshold)

    x_pool = np.stack([e.vector for e in pool])
    out: dict[str, list[float]] = {}
    for strategy in ("active", "random"):
        runs = []
        for seed in range(seeds if strategy == "random" else 1):
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(pool))
            asked: list[int] = []
            curve = []
            for n in steps:
                while len(asked) < n:
                    if strategy == "random":
                        nxt = next(i for i in order if i not in asked)
                        asked.append(int(nxt))
                        continue
                    _, (coef, b, pa, pb, thr) = fit_eval([pool[i] for i in asked])
                    s = x_pool @ coef + b
                    probs = calibrated(pa * s + pb)
                    confirmed = sum(pool[i].labels[target] for i in asked)
                    if confirmed < 5:
                        # Too few positives to know where the boundary is: ask the most
                        # likely ones first (as the product does), then near the threshold.
                        gap = -probs
                    else:
                        gap = np.abs(np.log(probs + 1e-9) - np.log(thr + 1e-9))
                    gap[asked] = np.inf
                    # Five answers per round, as the Sectors page shows a few at a time.
                    for i in np.argsort(gap)[: min(5, n - len(asked))]:
                        asked.append(int(i))
                curve.append(fit_eval([pool[i] for i in asked])[0])
            runs.append(curve)
        out[strategy] = list(np.mean(np.array(runs), axis=0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--curve-seeds", type=int, default=5)
    ap.add_argument(
        "--without-written",
        action="store_true",
        help="train without the team's written examples (index/labels.py)",
    )
    ap.add_argument(
        "--leave-out-pools",
        default="",
        metavar="POOLS",
        help="train without the train papers of these pools, comma separated (e.g. "
        "near,top,random3,rest: only the first three judging rounds)",
    )
    args = ap.parse_args()
    left_out = {p.strip() for p in args.leave_out_pools.split(",") if p.strip()}
    settings = load_settings(data_dir="/tmp/veille-sector-eval")
    embedder = get_embedder(settings.model)
    taxonomy = load_taxonomy(settings)
    rows = read_labels()
    known_pools = {r.pool for r in rows}
    if left_out - known_pools:
        ap.error(f"--leave-out-pools: no pool named {', '.join(sorted(left_out - known_pools))}")
    train_rows = [r for r in rows if r.split == "train" and r.pool not in left_out]
    test_rows = [r for r in rows if r.split == "test"]
    rows = [r for r in rows if r.split != "train" or r.pool not in left_out]
    print(
        f"Judged papers: {len(rows)} ({len(train_rows)} train, {len(test_rows)} test, "
        f"{len(rows) - len(train_rows) - len(test_rows)} audit)"
    )
    for split, part in (("train", train_rows), ("test", test_rows)):
        counts = ", ".join(
            f"{s} {sum(1 for r in part if r.sectors[s])}/{sum(1 for r in part if r.sectors[s] is not None)}"
            for s in SECTORS
        )
        print(f"  {split}: positives/judged per sector: {counts}")

    started = time.perf_counter()
    train_ex = examples_for(
        None,
        taxonomy,
        embedder,
        rows=train_rows,
        feedback=[],
        use_written=not args.without_written,
    )
    model = train(train_ex, taxonomy, embedder)
    print(
        f"\nLearned matcher trained on the train split in {time.perf_counter() - started:.2f}s "
        f"({len(train_ex)} examples: "
        + ", ".join(f"{n} {origin}" for origin, n in sorted(model.counts.items()))
        + f"; {len(model.order)} targets)"
    )
    test_ex = examples_for(
        None,
        taxonomy,
        embedder,
        rows=test_rows,
        feedback=[],
        use_descriptions=False,
        use_written=False,
    )
    x_test = np.stack([e.vector for e in test_ex])
    probs = model.predict(x_test)

    texts = load_texts({r.arxiv_id for r in rows})
    prepared = prepare(taxonomy, embedder)
    uc_vectors = prepared.use_case_vectors

    def sector_sims(x: np.ndarray, sector: str) -> np.ndarray:
        idx = [i for i, uc in enumerate(prepared.use_cases) if uc.sector == sector]
        return (x @ uc_vectors[idx].T).max(axis=1)

    rules_sectors: dict[str, set[str]] = {}
    product_sectors: dict[str, set[str]] = {}
    use_cases_of = {r.arxiv_id: r.use_cases for r in test_rows}
    uc_hits: list[bool] = []
    for row, e in enumerate(test_ex):
        r = texts[e.key]
        doc = Document(e.key, r["title"], r["abstract"])
        matches, _ = match_one(doc, e.vector, prepared)
        rules_sectors[e.key] = {m.sector for m in matches}
        mine = {t: float(v[row]) for t, v in probs.items()}
        matches, _ = match_one(doc, e.vector, prepared, model, mine)
        product_sectors[e.key] = {m.sector for m in matches}
        first: dict[str, str] = {}
        for m in matches:  # best first: the use case shown first for each sector
            first.setdefault(m.sector, m.use_case)
        for sector_key, shown in first.items():
            named = use_cases_of.get(e.key, {}).get(sector_key)
            if named:
                uc_hits.append(shown == named)

    def keyword_hit(key: str, sector: str) -> bool:
        r = texts[key]
        tokens = tokenize(f"{r['title']}. {r['abstract']}")
        token_set = set(tokens)
        for uc, phrases in zip(prepared.use_cases, prepared.use_case_phrases, strict=True):
            if uc.sector == sector and any(
                p[0] in token_set and find_phrase(tokens, p) for _, p in phrases
            ):
                return True
        return False

    # Judged because every paper of its period was (not drawn by a pool): the pools favoured
    # papers with sector words or meaning, so scores on them alone flatter recall.
    pool_of = {r.arxiv_id: r.pool for r in test_rows}
    x_train = np.stack([e.vector for e in train_ex if e.origin not in NOT_DOCUMENTS])
    train_real = [e for e in train_ex if e.origin not in NOT_DOCUMENTS]
    print("\nSector relevance on the test split (never tuned on):")
    summary = {}
    for sector in SECTORS:
        mask = np.array([sector in e.labels for e in test_ex])
        gold = np.array([e.labels.get(sector, False) for e in test_ex])[mask]
        t = model.targets[sector]
        learned = scores((probs[sector] >= t.threshold)[mask], gold)
        product = scores(np.array([sector in product_sectors[e.key] for e in test_ex])[mask], gold)
        rules = scores(np.array([sector in rules_sectors[e.key] for e in test_ex])[mask], gold)
        # one dense threshold, picked on the train split
        tr_mask = np.array([sector in e.labels for e in train_real])
        tr_gold = np.array([e.labels.get(sector, False) for e in train_real])[tr_mask]
        thr, *_ = pick_threshold(
            sector_sims(x_train[tr_mask], sector), tr_gold.astype(int), min_precision=0.0
        )
        dense = scores((sector_sims(x_test, sector) >= thr)[mask], gold)
        kw = scores(np.array([keyword_hit(e.key, sector) for e in test_ex])[mask], gold)
        summary[sector] = product
        drawn = np.array([pool_of[e.key] != ALL_THE_REST for e in test_ex])[mask]
        drawn_only = None
        if not drawn.all():
            picked = np.array([sector in product_sectors[e.key] for e in test_ex])[mask]
            drawn_only = scores(picked[drawn], gold[drawn])
        print(
            f"\n  {sector} ({int(gold.sum())} relevant of {int(mask.sum())}; threshold {t.threshold:.2f}, "
            f"validation F1 {t.f1:.2f})"
        )
        sector_pred = np.array([sector in product_sectors[e.key] for e in test_ex])[mask]
        low, high = f1_interval(sector_pred, gold)
        print(f"    veille    {fmt(product)} [{low:.2f}-{high:.2f}, bootstrap]")
        if drawn_only is not None:
            print(
                f"    (veille on the {int(drawn.sum())} papers drawn by pools: {fmt(drawn_only)})"
            )
        print(f"    learned   {fmt(learned)}")
        print(f"    rules     {fmt(rules)}")
        print(f"    dense@1t  {fmt(dense)}")
        print(f"    keywords  {fmt(kw)}")
    micro = scores(
        np.concatenate(
            [
                np.array([s in product_sectors[e.key] for e in test_ex if s in e.labels])
                for s in SECTORS
            ]
        ),
        np.concatenate(
            [np.array([e.labels[s] for e in test_ex if s in e.labels]) for s in SECTORS]
        ),
    )
    print(
        f"\n  all sectors, veille: {fmt(micro)}; macro-F1 "
        f"{np.mean([summary[s]['f1'] for s in SECTORS]):.2f}"
    )

    print(
        f"  use case shown for a correctly matched sector = the judges' use case: "
        f"{sum(uc_hits)}/{len(uc_hits)} ({sum(uc_hits) / max(len(uc_hits), 1):.2f})"
    )

    # -- audit: papers drawn from the matcher's own top predictions ------------------
    audit_rows = [r for r in rows if r.split == "audit"]
    if audit_rows:
        _, shipped = shipped_vectors()
        x_audit = np.stack([shipped[r.arxiv_id] for r in audit_rows])
        audit_probs = model.predict(x_audit)
        flagged: dict[str, set[str]] = {s: set() for s in SECTORS}
        for row, r in enumerate(audit_rows):
            t = texts[r.arxiv_id]
            mine = {k: float(v[row]) for k, v in audit_probs.items()}
            doc = Document(r.arxiv_id, t["title"], t["abstract"])
            for m in match_one(doc, x_audit[row], prepared, model, mine)[0]:
                flagged[m.sector].add(r.arxiv_id)
        print(
            f"\nAudit: {len(audit_rows)} unjudged train-period papers the shipped matcher ranked "
            "highest or nearest its thresholds, then judged (never trained on). The matcher "
            "trained on the train split, on them:"
        )
        for sector in SECTORS:
            judged = [r for r in audit_rows if r.sectors[sector] is not None]
            gold = np.array([bool(r.sectors[sector]) for r in judged])
            pred = np.array([r.arxiv_id in flagged[sector] for r in judged])
            tp = int((pred & gold).sum())
            lo, hi = wilson(tp, int(pred.sum()))
            prec = f"P {tp / pred.sum():.2f} [{lo:.2f}-{hi:.2f}]" if pred.sum() else "P -"
            print(
                f"  {sector}: {int(gold.sum())} relevant of {len(judged)}; veille flags "
                f"{int(pred.sum())}, {tp} relevant ({prec}), finds {tp} of {int(gold.sum())}"
            )

    # -- learning curve for a new use case ------------------------------------------
    steps = [10, 20, 50, 100]
    print(
        "\nA new use case: F1 on the test split after n answers (asked near the threshold, or at random)"
    )
    for target in ("industry/robotics", "health/augmented_surgery"):
        # As in the product: a use case added to an existing sector starts from its
        # description, with the papers judged outside the sector as known negatives; the
        # lead is asked about papers of the sector, and the judges' label answers.
        sector = target.split("/")[0]
        background = [e for e in train_real if e.labels.get(sector) is False]
        asked_pool = [e for e in train_real if e.labels.get(sector) and target in e.labels]
        test_t = [e for e in test_ex if target in e.labels]
        desc = next(e for e in train_ex if e.key == f"use case: {target}")
        start = learning_curve(asked_pool, test_t, target, desc, background, [0], 1)["active"][0]
        fine = sorted({*range(5, min(len(asked_pool), 100) + 1, 5), *steps} - {0})
        fine = [n for n in fine if n <= len(asked_pool)]
        detail = learning_curve(
            asked_pool, test_t, target, desc, background, fine, args.curve_seeds
        )
        n_test = sum(e.labels[target] for e in test_t)
        print(
            f"  {target} ({n_test} relevant of {len(test_t)} in test; "
            f"{len(asked_pool)} papers of the sector to ask about; description only: F1 {start:.2f}):"
        )
        for strategy in ("active", "random"):
            values = dict(zip(fine, detail[strategy], strict=True))
            row = "  ".join(f"n={n}: {values[n]:.2f}" for n in steps if n in values)
            got = next((n for n in fine if values[n] >= 0.8), None)
            print(
                f"    {strategy:<6} {row}   F1>=0.8 after {got if got else f'>{fine[-1]}'} answers"
            )

    # -- techniques -------------------------------------------------------------------
    # Every test paper has a technique label; its vector and probabilities are those above.
    row_of = {e.key: i for i, e in enumerate(test_ex)}
    tech_rows = [r for r in test_rows if r.techniques is not None and r.arxiv_id in row_of]
    keys = [t.key for t in taxonomy.techniques]
    counts = {"rules": {k: [0, 0, 0] for k in keys}, "veille": {k: [0, 0, 0] for k in keys}}
    for r in tech_rows:
        rec = texts[r.arxiv_id]
        row = row_of[r.arxiv_id]
        doc = Document(r.arxiv_id, rec["title"], rec["abstract"])
        mine = {t: float(v[row]) for t, v in probs.items()}
        found = {
            "rules": match_one(doc, test_ex[row].vector, prepared)[1],
            "veille": match_one(doc, test_ex[row].vector, prepared, model, mine)[1],
        }
        for name, tags in found.items():
            got = {t.technique for t in tags}
            for k in keys:
                if k in r.disputed_techniques:
                    continue
                g, p = k in r.techniques, k in got
                counts[name][k][0] += g and p
                counts[name][k][1] += p and not g
                counts[name][k][2] += g and not p
    print(f"\nTechnique tagging on {len(tech_rows)} test papers (techniques both judges named):")
    for name, per in counts.items():
        f1s = {}
        for k, (tp, fp, fn) in per.items():
            f1s[k] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        tp, fp, fn = (sum(v[i] for v in per.values()) for i in range(3))
        label = "before (aliases, similarity)" if name == "rules" else "veille (aliases, learned)"
        print(
            f"  {label}: micro-F1 {2 * tp / (2 * tp + fp + fn):.2f}, "
            f"macro-F1 {np.mean(list(f1s.values())):.2f}"
        )
        print("    " + ", ".join(f"{k} {v:.2f} ({per[k][0] + per[k][2]})" for k, v in f1s.items()))


if __name__ == "__main__":
    main()

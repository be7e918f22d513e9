"""Does the opportunity score order innovations the way project leads would?

Usage:
    .venv/bin/python benchmarks/opportunity_eval.py                # score the stored judgments
    .venv/bin/python benchmarks/opportunity_eval.py --dump DIR     # cards for new judges

The pool: papers of the judged set's test split (listed in June 2025, never tuned on) that the
judges found relevant to a sector, each paired with a use case they named for it: up to 30 for
health/diagnosis_support, up to 30 for industry/robotics, and every one of finance, legal and
retail (their use case as judged). Papers from 2025-07-01 on are never used.

`--dump` writes the cards (title, abstract, use case and its description; no score, nothing
from Veille) shuffled under opaque ids, and a guide. Two judges answer independently, per card,
whether a project lead of that use case should propose a pilot now (1) or not (0).

The judges' guide, in short: answer 1 only when (1) the paper serves this use case directly,
(2) it could be tried in such a company within months (no survey, position paper, or dataset
or benchmark without a method to adopt; nothing that needs a lab's hardware or scale), and
(3) there is evidence that it works (realistic experiments, a real-world study, a deployment
or released code). Their answers are in benchmarks/labels/opportunity_judgments.tsv.

Scoring rebuilds a store of all the judged papers from their bundled vectors (nothing is
embedded), matches them, and scores every card with Veille's opportunity score and its parts.
A card counts as "worth a pilot" when both judges said so. Printed: agreement (Cohen's kappa),
the base rate with its Wilson 95% interval, and for each ordering (opportunity, relevance only,
maturity only, momentum only, a random order) the precision of its top 10 per use case group
(mean over groups) and Kendall's tau-b between the score and the judges' verdict.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import ROOT, SHARED, need

GROUPS = {"health/diagnosis_support": 30, "industry/robotics": 30}
SMALL_SECTORS = ("finance", "legal", "retail")


def labels() -> list[dict]:
    path = ROOT / "index" / "data" / "labels" / "sector_labels.tsv"
    lines = [line for line in path.open(encoding="utf-8") if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def abstracts() -> dict[str, dict]:
    out = {}
    with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if (rec.get("published") or "") < "2025-07-01":
                out[rec["id"]] = rec
    return out


def pool() -> list[tuple[str, str]]:
    """(arxiv id, sector/use_case) pairs, drawn without looking at Veille's output."""
    rng = random.Random(15)
    test = [r for r in labels() if r["split"] == "test"]
    pairs: list[tuple[str, str]] = []
    for target, n in GROUPS.items():
        sector = target.split("/")[0]
        found = [
            r["arxiv_id"]
            for r in test
            if r[sector] == "1" and target in (r["use_cases"] or "").split(",")
        ]
        pairs += [(i, target) for i in rng.sample(sorted(found), min(n, len(found)))]
    for sector in SMALL_SECTORS:
        for r in test:
            named = [u for u in (r["use_cases"] or "").split(",") if u.startswith(f"{sector}/")]
            if r[sector] == "1" and named:
                pairs.append((r["arxiv_id"], named[0]))
    return pairs


def dump(folder: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from core.settings import load_settings
    from index.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(load_settings())
    records = abstracts()
    pairs = pool()
    rng = random.Random(7)
    rng.shuffle(pairs)
    cards = []
    for number, (arxiv_id, target) in enumerate(pairs, 1):
        sector, uc = target.split("/")
        use_case = taxonomy.use_case(uc, sector)
        rec = records[arxiv_id]
        cards.append(
            {
                "card": f"c{number:03d}",
                "arxiv_id": arxiv_id,
                "target": target,
                "use_case": f"{taxonomy.sector(sector).name} › {use_case.name}",
                "use_case_description": use_case.description,
                "title": rec["title"],
                "abstract": " ".join(rec["abstract"].split()),
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cards.json").write_text(json.dumps(cards, indent=1, ensure_ascii=False))
    print(f"{len(cards)} cards written to {folder / 'cards.json'}")


def kappa(a: list[int], b: list[int]) -> float:
    n = len(a)
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def build_store(tmp: str):
    """The judged pre-July papers in a fresh store, with their bundled vectors, matched."""
    sys.path.insert(0, str(ROOT))
    from core.models import Document, as_utc
    from core.settings import load_settings
    from core.store import Store
    from index.embedder import get_embedder
    from index.pipeline import index_and_match
    from index.vectors import embeddings

    settings = load_settings(data_dir=tmp)
    store = Store.from_settings(settings)
    records = abstracts()
    bundle = np.load(ROOT / "index" / "data" / "labels" / "vectors.npz")
    docs = []
    for arxiv_id in bundle["ids"]:
        rec = records.get(str(arxiv_id))
        if rec is None:
            continue
        docs.append(
            Document(
                rec["id"],
                rec["title"],
                rec["abstract"],
                source="arxiv",
                url=f"https://arxiv.org/abs/{rec['id']}",
                published=as_utc(rec["published"]),
                categories=rec.get("categories") or [],
                extra={"comment": rec.get("comment"), "version": rec.get("version") or ""},
            )
        )
    store.upsert(docs)
    embedder = get_embedder()
    vector_of = {str(i): v for i, v in zip(bundle["ids"], bundle["vectors"], strict=True)}
    with store.write() as conn:
        conn.execute(
            embeddings.insert(),
            [
                {
                    "model": embedder.name,
                    "content_hash": d.content_hash,
                    "vector": np.asarray(vector_of[d.canonical_id], dtype=np.float32).tobytes(),
                }
                for d in docs
            ],
        )
    index_and_match(store, settings, embedder=embedder)
    return settings, store


def kendall_tau_b(x: list[float], y: list[int]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(x, y, variant="b").statistic)


JUDGMENTS = ROOT / "benchmarks" / "labels" / "opportunity_judgments.tsv"


def score(path: Path = JUDGMENTS) -> None:
    lines = [line for line in path.open(encoding="utf-8") if not line.startswith("#")]
    cards = list(csv.DictReader(lines, delimiter="\t"))
    ids = [c["card"] for c in cards]
    va = [int(c["judge_a"]) for c in cards]
    vb = [int(c["judge_b"]) for c in cards]
    worth = {c["card"]: int(c["judge_a"] == "1" and c["judge_b"] == "1") for c in cards}
    k = sum(worth.values())
    low, high = wilson(k, len(ids))
    print(f"{len(ids)} cards answered by both judges; kappa {kappa(va, vb):.3f}")
    print(
        f"worth a pilot (both judges): {k}/{len(ids)} = {k / len(ids):.2f} "
        f"(Wilson 95% {low:.2f}-{high:.2f}); cards where the judges differ count as not worth"
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings, store = build_store(tmp)
        from index.opportunity import Scorer

        scorer = Scorer(store, settings)
        by_card = {c["card"]: c for c in cards}
        rows = []
        for card_id in ids:
            c = by_card[card_id]
            target = c["target"]
            sector, uc = target.split("/")
            o = scorer.score(c["arxiv_id"], sector, uc)
            rows.append((card_id, target, o))
        store.close()
    rng = np.random.default_rng(3)
    orderings = {
        "opportunity": lambda o: o.total,
        "relevance only": lambda o: o.parts["relevance"],
        "maturity only": lambda o: o.parts["maturity"],
        "momentum only": lambda o: o.parts["momentum"],
        "random": lambda o: float(rng.random()),
    }
    groups = {"health": "health/", "industry": "industry/", "finance+legal+retail": ""}
    print(
        f"{'ordering':<16} {'P@10 health':>11} {'P@10 industry':>13} {'P@10 fin+leg+ret':>16} "
        f"{'mean P@10':>9} {'tau-b':>6}"
    )
    for name, key in orderings.items():
        scores = {card: key(o) for card, _, o in rows}
        precisions = []
        for prefix in groups.values():
            members = [
                (card, t)
                for card, t, _ in rows
                if (t.startswith(prefix) if prefix else t.split("/")[0] in SMALL_SECTORS)
            ]
            top = sorted(members, key=lambda m: -scores[m[0]])[:10]
            precisions.append(sum(worth[c] for c, _ in top) / max(1, len(top)))
        tau = kendall_tau_b([scores[c] for c, _, _ in rows], [worth[c] for c, _, _ in rows])
        print(
            f"{name:<16} {precisions[0]:>11.2f} {precisions[1]:>13.2f} {precisions[2]:>16.2f} "
            f"{np.mean(precisions):>9.2f} {tau:>6.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dump", type=Path, help="Write judging cards to this folder.")
    parser.add_argument("--judgments", type=Path, default=JUDGMENTS)
    args = parser.parse_args()
    if args.dump:
        dump(args.dump)
    else:
        score(args.judgments)


if __name__ == "__main__":
    main()

"""Technique tagging quality on hand labels: the tagger vs a keyword-only baseline.

    .venv/bin/python benchmarks/technique_eval.py --data-dir /tmp/veille-tech-eval [--rematch]
    .venv/bin/python benchmarks/technique_eval.py --sample     # print the drawn ids and splits
    .venv/bin/python benchmarks/technique_eval.py --errors     # tuning-half mistakes, per id

The data directory must hold an indexed, matched store of arXiv sample papers (a copy of
/tmp/veille-match-eval). The tagger's output is read from its ``doc_techniques`` table;
``--rematch`` first re-runs matching and tagging from the stored vectors (nothing is embedded
again, apart from the few taxonomy texts).

Labels: benchmarks/labels/technique_judged.tsv, 150 papers drawn with a fixed seed from the
store and judged by hand from title and abstract (a technique counts when the paper uses or
studies it as a method). ``split`` is ``tuning`` when the SHA-1 of the arXiv id is even,
``heldout`` otherwise; only the tuning half may guide changes to the tagger.

The keyword baseline tags a technique when one of its aliases occurs anywhere in the title or
abstract (the same aliases the tagger uses, no vectors).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import time
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa
from _common import ROOT

from core.settings import load_settings
from core.store import Store, documents
from index.matching import _find, _phrases, doc_techniques, match_documents
from index.taxonomy import load_taxonomy

LABELS = ROOT / "benchmarks" / "labels" / "technique_judged.tsv"
SEED = 20260525
SAMPLE_SIZE = 150
_RAW_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def split_of(arxiv_id: str) -> str:
    """Fixed rule: even SHA-1 -> tuning, odd -> heldout."""
    return "tuning" if int(hashlib.sha1(arxiv_id.encode()).hexdigest(), 16) % 2 == 0 else "heldout"


def draw_sample(all_ids: list[str], n: int = SAMPLE_SIZE, seed: int = SEED) -> list[str]:
    return sorted(random.Random(seed).sample(sorted(all_ids), n))


def read_labels(path: Path) -> dict[str, tuple[str, set[str]]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("arxiv_id\t"):
            continue
        parts = line.split("\t")
        techniques = set(parts[2].split()) if len(parts) > 2 else set()
        out[parts[0]] = (parts[1], techniques)
    return out


def keyword_tags(title: str, text: str, phrases_of: dict[str, list]) -> set[str]:
    tokens = _RAW_TOKEN.findall(f"{title}. {text}".lower())
    return {key for key, phrases in phrases_of.items() if any(_find(tokens, p) for _, p in phrases)}


def scores(
    gold: dict[str, set[str]], pred: dict[str, set[str]], keys: list[str]
) -> tuple[dict[str, tuple[int, int, int]], tuple[int, int, int]]:
    """Per technique and micro-summed (true positives, false positives, false negatives)."""
    per = {}
    for key in keys:
        tp = sum(1 for i in gold if key in gold[i] and key in pred[i])
        fp = sum(1 for i in gold if key not in gold[i] and key in pred[i])
        fn = sum(1 for i in gold if key in gold[i] and key not in pred[i])
        per[key] = (tp, fp, fn)
    micro = tuple(sum(v[j] for v in per.values()) for j in range(3))
    return per, micro  # type: ignore[return-value]


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def report(name: str, gold: dict[str, set[str]], preds: dict[str, dict[str, set[str]]], keys):
    print(f"\n## {name} ({len(gold)} papers, {sum(len(v) for v in gold.values())} labels)\n")
    header = "| technique | support |" + "".join(f" {m} P | {m} R | {m} F1 |" for m in preds)
    print(header)
    print("|" + "---|" * (2 + 3 * len(preds)))
    micros = {}
    for m, pred in preds.items():
        micros[m] = scores(gold, pred, keys)
    for key in keys:
        support = sum(1 for g in gold.values() if key in g)
        cells = "".join(
            " {:.2f} | {:.2f} | {:.2f} |".format(*prf(*micros[m][0][key])) for m in preds
        )
        print(f"| {key} | {support} |{cells}")
    cells = "".join(
        " **{:.2f}** | **{:.2f}** | **{:.2f}** |".format(*prf(*micros[m][1])) for m in preds
    )
    print(f"| micro | {sum(len(v) for v in gold.values())} |{cells}")
    present = [k for k in keys if any(k in g for g in gold.values())]
    macro = {m: sum(prf(*micros[m][0][k])[2] for k in present) / len(present) for m in preds}
    cells = "".join(f" | | {macro[m]:.2f} |" for m in preds)
    print(f"| macro F1 ({len(present)} techniques with support) | |{cells}")
    return {m: prf(*micros[m][1]) for m in preds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default="/tmp/veille-tech-eval")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--rematch", action="store_true", help="re-tag from stored vectors first")
    ap.add_argument("--sample", action="store_true", help="print the drawn ids and exit")
    ap.add_argument("--errors", action="store_true", help="list tuning-half mistakes")
    args = ap.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    store = Store.from_settings(settings)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(documents.c.id, documents.c.canonical_id, documents.c.title, documents.c.text)
        ).all()
    if args.sample:
        for arxiv_id in draw_sample([r.canonical_id for r in rows]):
            print(f"{arxiv_id}\t{split_of(arxiv_id)}")
        return
    if args.rematch:
        t0 = time.perf_counter()
        n = match_documents(store, settings)
        print(f"re-tagged {n} documents from stored vectors in {time.perf_counter() - t0:.1f} s")
    taxonomy = load_taxonomy(settings)
    keys = [t.key for t in taxonomy.techniques]
    phrases_of = {t.key: _phrases(t.aliases, stem=False) for t in taxonomy.techniques}
    labels = read_labels(args.labels)
    unknown = {k for _, ts in labels.values() for k in ts} - set(keys)
    if unknown:
        raise SystemExit(f"labels use techniques missing from the taxonomy: {sorted(unknown)}")
    by_cid = {r.canonical_id: r for r in rows}
    missing = set(labels) - set(by_cid)
    if missing:
        raise SystemExit(f"{len(missing)} labelled ids are not in the store, e.g. {min(missing)}")
    doc_of = {by_cid[a].id: a for a in labels}
    tagger: dict[str, set[str]] = defaultdict(set)
    with store.engine.connect() as conn:
        for doc_id, technique in conn.execute(
            sa.select(doc_techniques.c.doc_id, doc_techniques.c.technique).where(
                doc_techniques.c.doc_id.in_(list(doc_of))
            )
        ):
            tagger[doc_of[doc_id]].add(technique)
    keyword = {a: keyword_tags(by_cid[a].title, by_cid[a].text, phrases_of) for a in labels}
    summary = {}
    for split in ("tuning", "heldout"):
        gold = {a: ts for a, (s, ts) in labels.items() if s == split}
        preds = {
            "tagger": {a: tagger[a] for a in gold},
            "keyword": {a: keyword[a] for a in gold},
        }
        summary[split] = report(f"{split} half", gold, preds, keys)
        if args.errors and split == "tuning":
            print("\nTuning-half mistakes (id: missed / extra):")
            for a in sorted(gold):
                missed, extra = gold[a] - tagger[a], tagger[a] - gold[a]
                if missed or extra:
                    print(f"  {a}: missed {sorted(missed)} extra {sorted(extra)}")
    print("\n## Summary (micro P / R / F1)\n")
    print("| split | tagger | keyword baseline |")
    print("|---|---|---|")
    for split, res in summary.items():
        cells = " | ".join(
            "{:.2f} / {:.2f} / {:.2f}".format(*res[m]) for m in ("tagger", "keyword")
        )
        print(f"| {split} | {cells} |")


if __name__ == "__main__":
    main()

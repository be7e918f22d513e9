"""What the team's written examples, and the neighbour score, add to the sector classifiers,
measured on `train` only.

Usage: .venv/bin/python benchmarks/written_cv.py [--seeds 18] [--file written.jsonl]

The judged `train` papers (index/data/labels) are split into 5 folds, stratified on which
sectors each paper fits, and this is repeated for each seed. Every fold is scored by sector
classifiers trained on the other four folds and the use-case descriptions, in four ways:

* without: no written example;
* with: the written examples as Veille trains on them (index/training.py: finance, legal and
  retail labels only);
* all sectors: the written examples with every sector the judges labelled, industry and
  health included (the choice that was not kept);
* linear only: as shipped, but no sector weighs its neighbour score (index/training.py):
  what the neighbour score adds.

Each classifier uses the threshold it picked on its own out-of-fold scores. Out-of-fold
predictions are pooled over folds and seeds: P, R and F1 per sector. ``--file`` scores
another written set (same format) in place of the shipped one. Nothing here reads `test`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import ROOT  # noqa: F401 - puts the repository on sys.path

import index.training as training
from core.settings import load_settings
from index.embedder import get_embedder
from index.labels import SECTORS, parse_written, read_labels
from index.matcher_model import Example
from index.taxonomy import load_taxonomy

FOLDS = 5


def folds(team: list[Example], seed: int) -> np.ndarray:
    """Fold of each paper: stratified on the set of sectors it fits."""
    rng = np.random.default_rng(seed)
    pattern = np.array(
        [sum(1 << i for i, s in enumerate(SECTORS) if e.labels.get(s)) for e in team]
    )
    fold = np.zeros(len(team), dtype=int)
    for p in np.unique(pattern):
        idx = np.flatnonzero(pattern == p)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + rng.integers(FOLDS)) % FOLDS
    return fold


def cross_validate(team, extra, taxonomy, embedder, seeds: int) -> dict[str, tuple[int, ...]]:
    """(tp, fp, fn) per sector, pooled over folds and seeds."""
    x = np.stack([e.vector for e in team]).astype(np.float32)
    counts = {s: np.zeros(3, dtype=int) for s in SECTORS}
    for seed in range(seeds):
        fold = folds(team, seed)
        for f in range(FOLDS):
            held = np.flatnonzero(fold == f)
            kept = [team[i] for i in np.flatnonzero(fold != f)]
            model = training.train(kept + extra, taxonomy, embedder, targets=list(SECTORS))
            probs = model.predict(x[held], list(SECTORS))
            for s in SECTORS:
                pred = probs[s] >= model.targets[s].threshold
                known = np.array([s in team[i].labels for i in held])
                gold = np.array([bool(team[i].labels.get(s)) for i in held])
                counts[s] += [
                    int((pred & gold & known).sum()),
                    int((pred & ~gold & known).sum()),
                    int((~pred & gold & known).sum()),
                ]
    return {s: tuple(int(v) for v in c) for s, c in counts.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=18, help="repetitions of the 5-fold split")
    ap.add_argument("--file", type=Path, help="a written set to score in place of the shipped one")
    args = ap.parse_args()
    settings = load_settings(data_dir="/tmp/veille-written-cv")
    embedder = get_embedder(settings.model)
    taxonomy = load_taxonomy(settings)
    rows = [r for r in read_labels() if r.split == "train"]
    team = training.examples_for(
        None, taxonomy, embedder, rows=rows, feedback=[], use_descriptions=False, use_written=False
    )
    descriptions = training.description_examples(taxonomy, embedder)
    if args.file:
        written_rows = parse_written(args.file.read_text(encoding="utf-8"), str(args.file))
        training.read_written = lambda: written_rows
        import index.labels  # noqa: PLC0415

        index.labels.read_written = lambda: written_rows
    written = training.written_examples(taxonomy, embedder)
    every = []
    for row, e in zip(training.read_written(), written, strict=True):
        labels = dict(e.labels)
        for sector, fits in row.sectors.items():
            if fits is not None and sector not in labels:
                labels[sector] = fits
        every.append(Example(e.key, e.vector, labels, e.origin, e.by, e.weight))
    print(
        f"{len(team)} judged train papers, {len(written)} written examples; "
        f"{FOLDS}-fold CV x {args.seeds} seeds; F1 (P/R) per sector, pooled out-of-fold"
    )
    print(f"{'':<14}" + "".join(f"{s:>19}" for s in SECTORS))
    with_neighbours = training.is_sector
    variants = (
        ("without", [], with_neighbours),
        ("with", written, with_neighbours),
        ("all sectors", every, with_neighbours),
        ("linear only", written, lambda key: False),
    )
    for name, extra, neighbours in variants:
        started = time.perf_counter()
        training.is_sector = neighbours  # which targets get a neighbour score
        counts = cross_validate(team, descriptions + extra, taxonomy, embedder, args.seeds)
        training.is_sector = with_neighbours
        cells = []
        for s in SECTORS:
            tp, fp, fn = counts[s]
            p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            cells.append(f"{f1:.3f} ({p:.2f}/{r:.2f})")
        print(f"{name:<14}" + "".join(f"{c:>19}" for c in cells), end="")
        print(f"   [{time.perf_counter() - started:.0f}s]")


if __name__ == "__main__":
    main()

"""Helpers shared by the benchmark scripts (not run by CI)."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"skipped: {path} is missing (put ../shared beside the repository)")
    return path


def sample_records(n: int, *, start: int = 0) -> list[dict]:
    out = []
    with need(SHARED / "arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < start:
                continue
            if len(out) >= n:
                break
            out.append(json.loads(line))
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def synthetic_labels(
    doc_id: int, week: int, techniques: list, use_cases: list, rng, n_techniques: int
) -> tuple[list[dict], dict]:
    """Rows of doc_techniques (``n_techniques`` random techniques) and one doc_matches row
    (a random (use case, sector)) for a synthetic document, as the matcher would store them."""
    tags = [
        {"doc_id": doc_id, "technique": t, "score": 0.7, "why": "", "week": week}
        for t in rng.sample(techniques, n_techniques)
    ]
    use_case, sector = rng.choice(use_cases)
    match = {
        "doc_id": doc_id,
        "use_case": use_case,
        "sector": sector,
        "score": 0.6,
        "similarity": 0.5,
        "why": "",
        "passage": "",
        "terms": [],
        "week": week,
    }
    return tags, match


def scratch_folder(name: str, *, fresh: bool) -> Path:
    """A folder under /tmp that keeps a benchmark's built store between runs (``fresh``: start over)."""
    import shutil

    folder = Path("/tmp") / name
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def size_args(description: str | None, *, docs: int, weeks: int) -> Any:
    """The options of the synthetic-store benchmarks: --docs, --weeks and --fresh."""
    import argparse

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--docs", type=int, default=docs)
    ap.add_argument("--weeks", type=int, default=weeks)
    ap.add_argument("--fresh", action="store_true", help="build the store again")
    return ap.parse_args()

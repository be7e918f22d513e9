"""The team's judged sector labels, shipped with Veille, and the vectors that go with them.

``index/data/labels/sector_labels.tsv`` holds one line per judged arXiv paper: its id, the
split it belongs to (``train`` or ``test``, by listing date), the pool it was drawn from, one
column per sector (``1`` fits, ``0`` does not, ``-`` the two judges disagreed and the paper is
left out for that sector), the use case the judges named for each sector it fits, and the
techniques it uses (``?name`` when the judges disagreed on one).
``vectors.npz`` beside it holds the bundled model's vector of each of those papers (title and
abstract embedded the way the indexer does), so that the learned matcher can train on a fresh
install that has none of the papers in its store. No third-party text is shipped: ids, labels
and numbers only. How the set was made: ``index/data/labels/README.md``.

    rows = read_labels()
    rows[0].sectors["health"]   # True, False or None (left out)
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

SECTORS: tuple[str, ...] = ("finance", "legal", "retail", "industry", "health")
LABEL_FILE = "sector_labels.tsv"
VECTOR_FILE = "vectors.npz"


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One judged paper: per sector True / False / None (left out), and use cases."""

    arxiv_id: str
    split: str
    sectors: dict[str, bool | None]
    use_cases: dict[str, str] = field(default_factory=dict)
    techniques: tuple[str, ...] | None = None
    disputed_techniques: tuple[str, ...] = ()
    pool: str = ""


def _labels_dir():
    return resources.files("index") / "data" / "labels"


def parse_labels(text: str, source: str = LABEL_FILE) -> list[LabelRow]:
    """Parse the TSV; a malformed line raises ValueError naming the file and the line."""
    rows = []
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header: list[str] | None = None
    for number, fields in enumerate(reader, start=1):
        if not fields or fields[0].startswith("#"):
            continue
        if header is None:
            header = fields
            missing = {"arxiv_id", "split", *SECTORS} - set(header)
            if missing:
                raise ValueError(f"{source}, line {number}: missing columns {sorted(missing)}")
            continue
        if len(fields) != len(header):
            raise ValueError(
                f"{source}, line {number}: {len(fields)} fields, expected {len(header)}"
            )
        record = dict(zip(header, fields, strict=True))
        sectors: dict[str, bool | None] = {}
        for sector in SECTORS:
            value = record[sector]
            if value not in ("0", "1", "-"):
                raise ValueError(f"{source}, line {number}: {sector} must be 0, 1 or -")
            sectors[sector] = None if value == "-" else value == "1"
        use_cases = {}
        for item in filter(None, record.get("use_cases", "").split(",")):
            sector, _, use_case = item.partition("/")
            if sector not in SECTORS or not use_case:
                raise ValueError(f"{source}, line {number}: bad use case {item!r}")
            use_cases[sector] = use_case
        techniques = record.get("techniques")
        names = [] if techniques in (None, "-") else [t for t in techniques.split(",") if t]
        rows.append(
            LabelRow(
                arxiv_id=record["arxiv_id"],
                split=record["split"],
                sectors=sectors,
                use_cases=use_cases,
                techniques=(
                    None
                    if techniques in (None, "-")
                    else tuple(t for t in names if t != "none" and not t.startswith("?"))
                ),
                disputed_techniques=tuple(t[1:] for t in names if t.startswith("?")),
                pool=record.get("pool", ""),
            )
        )
    return rows


@cache
def read_labels() -> list[LabelRow]:
    """The shipped judged set (parsed once per process)."""
    try:
        text = (_labels_dir() / LABEL_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return parse_labels(text)


@cache
def labels_fingerprint() -> str:
    """Changes whenever the shipped labels or vectors change (a saved matcher is then stale)."""
    digest = hashlib.sha256()
    for name in (LABEL_FILE, VECTOR_FILE):
        try:
            digest.update((_labels_dir() / name).read_bytes())
        except FileNotFoundError:
            digest.update(b"-")
    return digest.hexdigest()[:16]


@cache
def shipped_vectors() -> tuple[str, dict[str, np.ndarray]]:
    """(model name, {arxiv id: vector}) of the shipped vectors; empty when absent."""
    path = _labels_dir() / VECTOR_FILE
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            model = str(data["model"])
            ids = [str(i) for i in data["ids"]]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
    except (OSError, KeyError, ValueError):
        return "", {}
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    vectors = vectors / norms
    return model, dict(zip(ids, vectors, strict=True))

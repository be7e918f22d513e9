"""Example papers the team wrote for the rarer sectors, judged like the real ones.

The pre-July-2025 sample holds only 35 training papers each for finance, legal and retail, so
their classifiers see few of the many ways a paper can fit (a shelf camera, a returns model, a
clause extractor, an AML transaction graph). ``index/data/labels/written_examples.jsonl`` holds
short invented paper abstracts, written by the team for one use case each or as "near misses"
(a sector word in another sense, a sector as one benchmark among many), then judged blind by
two judges like the real papers: a sector is labelled only where both agreed.

They train the sector and use-case classifiers beside the judged papers, with the use-case
descriptions' status: they never count in the validation figures, never pick a threshold,
and are never shown as "like ..." evidence. ``written_vectors.npz`` holds the bundled model's
vector of each one, with a digest of the text it came from; after editing the file, run

    python -m index.labels --written

Another model embeds them once per process. How they were made: index/data/labels/README.md.

    examples = read_written()
    examples[0].sectors["retail"]   # True, False or None (the judges disagreed)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache

import numpy as np

from index.labels import (
    SECTORS,
    WRITTEN_FILE,
    WRITTEN_VECTORS,
    _labels_dir,
    shipped_text,
    unit_rows,
)

KINDS = ("fits", "near_miss")


@dataclass(frozen=True, slots=True)
class WrittenExample:
    """One written abstract: the sector and use case its author aimed at, and the judged
    label per sector (True / False / None where the two judges disagreed)."""

    key: str
    written_for: str
    kind: str
    use_case: str
    sectors: dict[str, bool | None]
    title: str
    abstract: str

    @property
    def text(self) -> str:
        """What the embedder sees, as for a stored document: title, then abstract."""
        return f"{self.title}. {self.abstract}"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def parse_written(text: str, source: str = WRITTEN_FILE) -> list[WrittenExample]:
    """Parse the JSON Lines; a malformed line raises ValueError naming the file and line."""
    out: list[WrittenExample] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}, line {number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected an object")
        try:
            key, written_for, kind = str(raw["key"]), str(raw["written_for"]), str(raw["kind"])
            title, abstract = str(raw["title"]).strip(), str(raw["abstract"]).strip()
            judged = raw["sectors"]
        except KeyError as exc:
            raise ValueError(f"{where}: missing field {exc.args[0]!r}") from None
        if key in seen:
            raise ValueError(f"{where}: key {key!r} appears twice")
        if kind not in KINDS:
            raise ValueError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if not title or not abstract:
            raise ValueError(f"{where}: empty title or abstract")
        if not isinstance(judged, dict) or set(judged) != set(SECTORS):
            raise ValueError(f"{where}: 'sectors' must give a label for {', '.join(SECTORS)}")
        sectors: dict[str, bool | None] = {}
        for sector, value in judged.items():
            if value not in (True, False, None):
                raise ValueError(f"{where}: sector {sector!r} has label {value!r}")
            sectors[sector] = value
        seen.add(key)
        out.append(
            WrittenExample(
                key,
                written_for,
                kind,
                str(raw.get("use_case") or ""),
                sectors,
                title,
                abstract,
            )
        )
    return out


@cache
def read_written() -> list[WrittenExample]:
    """The shipped written examples (parsed once per process); [] when not shipped."""
    text = shipped_text(WRITTEN_FILE)
    return [] if text is None else parse_written(text)


@cache
def written_vectors() -> tuple[str, dict[str, tuple[str, np.ndarray]]]:
    """(model name, {key: (text digest, unit vector)}) of the shipped vectors; empty when
    absent or unreadable."""
    path = _labels_dir() / WRITTEN_VECTORS
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            model = str(data["model"])
            keys = [str(k) for k in data["keys"]]
            digests = [str(d) for d in data["digests"]]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
    except (OSError, KeyError, ValueError):
        return "", {}
    if len(keys) != len(digests) or vectors.shape[0] != len(keys):
        return "", {}
    return model, dict(zip(keys, zip(digests, unit_rows(vectors), strict=True), strict=True))


def vectors_for_written(embedder) -> dict[str, np.ndarray]:
    """{key: vector} of every written example for ``embedder``: the shipped vectors when they
    are the bundled model's and their text is unchanged, else embedded now (once per process
    and model, see index/training.py)."""
    from index.embedder import BUNDLED  # noqa: PLC0415 - keeps this module light

    rows = read_written()
    model, shipped = written_vectors()
    out: dict[str, np.ndarray] = {}
    todo: list[WrittenExample] = []
    for row in rows:
        have = shipped.get(row.key) if model == embedder.name == BUNDLED else None
        if have is not None and have[0] == row.digest and have[1].shape[0] == embedder.dim:
            out[row.key] = have[1]
        else:
            todo.append(row)
    if todo:
        # Another model than the bundled one: a few hundred abstracts, once per process.
        vectors = embedder.encode([row.text for row in todo], show_progress=len(todo) >= 100)
        out.update({row.key: v for row, v in zip(todo, vectors, strict=True)})
    return out


def write_written_vectors(out=None) -> dict[str, int]:
    """Embed the written examples whose shipped vector is missing or stale, and rewrite
    ``written_vectors.npz``. Returns counts (kept, embedded, written)."""
    from pathlib import Path  # noqa: PLC0415

    from core.fsutil import atomic_write  # noqa: PLC0415
    from index.embedder import BUNDLED, get_embedder  # noqa: PLC0415
    from index.labels import labels_fingerprint  # noqa: PLC0415

    rows = read_written()
    model, shipped = written_vectors()
    kept = {
        r.key: shipped[r.key][1]
        for r in rows
        if model == BUNDLED and r.key in shipped and shipped[r.key][0] == r.digest
    }
    todo = [r for r in rows if r.key not in kept]
    fresh: dict[str, np.ndarray] = {}
    if todo:
        embedder = get_embedder(BUNDLED)
        vectors = embedder.encode([r.text for r in todo], show_progress=True)
        fresh = {r.key: v for r, v in zip(todo, vectors, strict=True)}
    matrix = (
        np.stack([kept.get(r.key, fresh.get(r.key)) for r in rows]).astype(np.float16)
        if rows
        else np.zeros((0, 0), np.float16)
    )

    def write(tmp) -> None:
        with tmp.open("wb") as fh:
            np.savez_compressed(
                fh,
                model=np.array(BUNDLED),
                keys=np.array([r.key for r in rows]),
                digests=np.array([r.digest for r in rows]),
                vectors=matrix,
            )

    atomic_write(Path(str(out or (_labels_dir() / WRITTEN_VECTORS))), write)
    for reader in (written_vectors, labels_fingerprint):
        reader.cache_clear()
    return {"kept": len(kept), "embedded": len(fresh), "written": len(rows)}

"""The team's judged sector labels, shipped with Veille, and the vectors that go with them.

``index/data/labels/sector_labels.tsv`` holds one line per judged arXiv paper: its id, the
split it belongs to (``train`` or ``test`` by listing date, or ``audit``: drawn from the
matcher's own top predictions, never trained on), the pool it was drawn from, one
column per sector (``1`` fits, ``0`` does not, ``-`` the two judges disagreed and the paper is
left out for that sector), the use case the judges named for each sector it fits, and the
techniques it uses (``?name`` when the judges disagreed on one). ``written_examples.jsonl``
holds abstracts the team wrote for the rarer sectors and had judged the same way, with their
judged labels per sector (``read_written``), and ``written_vectors.npz`` their vectors, each
with a digest of its text.
``vectors.npz`` beside it holds the bundled model's vector of each of those papers (title and
abstract embedded the way the indexer does) and which techniques each one's text names (by the
shipped taxonomy's aliases), so that the learned matcher can train on a fresh install that has
none of the papers in its store. No third-party text is shipped: ids, labels and numbers only.
How the set was made: ``index/data/labels/README.md``. After adding judged papers, fill in
their vectors from the arXiv records they came from:

    python -m index.labels ../shared/data/arxiv_sample.jsonl
    python -m index.labels --written      # after editing the written examples

    rows = read_labels()
    rows[0].sectors["health"]   # True, False or None (left out)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

SECTORS: tuple[str, ...] = ("finance", "legal", "retail", "industry", "health")
LABEL_FILE = "sector_labels.tsv"
VECTOR_FILE = "vectors.npz"
# Abstracts the team wrote and had judged (read_written below), and their vectors.
WRITTEN_FILE = "written_examples.jsonl"
WRITTEN_VECTORS = "written_vectors.npz"
# The split of papers drawn from the matcher's own top predictions: they measure its precision
# where it is most likely wrong, and are never trained on.
AUDIT = "audit"
# The pool of the last round: every paper of the period that no earlier pool had drawn.
ALL_THE_REST = "rest"


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


def shipped_text(name: str) -> str | None:
    """A file of index/data/labels as text; None when it is not shipped."""
    try:
        return (_labels_dir() / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (float16 storage loses a little; zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


@cache
def read_labels() -> list[LabelRow]:
    """The shipped judged set (parsed once per process)."""
    text = shipped_text(LABEL_FILE)
    return [] if text is None else parse_labels(text)


@cache
def labels_fingerprint() -> str:
    """Changes whenever the shipped labels, written examples or their vectors change (a saved
    matcher is then stale)."""
    digest = hashlib.sha256()
    for name in (LABEL_FILE, VECTOR_FILE, WRITTEN_FILE, WRITTEN_VECTORS):
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
    return model, dict(zip(ids, unit_rows(vectors), strict=True))


@cache
def shipped_named() -> dict[str, frozenset[str]]:
    """{arxiv id: technique keys its title or abstract names}; empty when not shipped."""
    path = _labels_dir() / VECTOR_FILE
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            ids = [str(i) for i in data["ids"]]
            keys = [str(k) for k in data["named_keys"]]
            named = np.asarray(data["named"], dtype=bool)
    except (OSError, KeyError, ValueError):
        return {}
    if named.shape != (len(ids), len(keys)):
        return {}
    return {
        i: frozenset(k for k, hit in zip(keys, row, strict=True) if hit)
        for i, row in zip(ids, named, strict=True)
    }


# -- writing vectors.npz (for the team, after judging more papers) ---------------------


def named_techniques(title: str, text: str, taxonomy, *, phrases=None) -> frozenset[str]:
    """Technique keys whose aliases the title or text names, as the matcher reads them.

    ``phrases`` is :func:`alias_phrases` of the taxonomy, parsed once by a caller that asks
    about many papers.
    """
    from index.match_rules import _has_alias, technique_tokens  # noqa: PLC0415

    phrases = alias_phrases(taxonomy) if phrases is None else phrases
    streams = (technique_tokens(title), technique_tokens(text))
    return frozenset(
        key for key, aliases in phrases if any(_has_alias(s, p) for p in aliases for s in streams)
    )


def alias_phrases(taxonomy) -> list[tuple[str, list]]:
    """Each technique's key with its parsed alias phrases (parsing is the slow part)."""
    from index.match_rules import _alias_phrases  # noqa: PLC0415

    return [(t.key, [p for _, p in _alias_phrases(t.aliases)]) for t in taxonomy.techniques]


def write_vectors(records_path, *, out=None, progress=print) -> dict[str, int]:
    """Embed every judged paper that has no shipped vector yet (title and abstract read from
    ``records_path``, arXiv JSON Lines as in ``../shared/data/arxiv_sample.jsonl``), recompute
    which techniques each paper names, and rewrite ``vectors.npz`` atomically.

    Returns counts: ``kept`` (vectors reused), ``embedded`` and ``labelled``. Raises
    ValueError naming the file when it is unreadable or lacks a judged paper.
    """
    from pathlib import Path  # noqa: PLC0415

    from core.fsutil import atomic_write  # noqa: PLC0415
    from core.models import Document  # noqa: PLC0415
    from index.embedder import BUNDLED, get_embedder  # noqa: PLC0415
    from index.taxonomy import parse_taxonomy  # noqa: PLC0415

    records_path = Path(records_path)
    wanted = [r.arxiv_id for r in read_labels()]
    want = set(wanted)
    docs: dict[str, Document] = {}
    try:
        with records_path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{records_path}, line {number}: not JSON ({exc})") from exc
                key = str(record.get("id", ""))
                if key in want and key not in docs:
                    docs[key] = Document(key, record.get("title", ""), record.get("abstract", ""))
    except OSError as exc:
        raise ValueError(f"cannot read {records_path}: {exc}") from exc
    missing = [i for i in wanted if i not in docs]
    if missing:
        raise ValueError(
            f"{records_path} lacks {len(missing)} judged papers, e.g. {', '.join(missing[:3])}"
        )
    model, old = shipped_vectors()
    kept = {i: old[i] for i in wanted if i in old} if model == BUNDLED else {}
    todo = [i for i in wanted if i not in kept]
    fresh: dict[str, np.ndarray] = {}
    if todo:
        progress(f"embedding {len(todo)} judged papers with the bundled model ...")
        embedder = get_embedder(BUNDLED)
        vectors = embedder.encode([docs[i].embed_text for i in todo], show_progress=True)
        fresh = dict(zip(todo, vectors, strict=True))
    shipped = resources.files("index") / "data" / "taxonomy.toml"
    taxonomy = parse_taxonomy(shipped.read_text(encoding="utf-8"), str(shipped))
    keys = [t.key for t in taxonomy.techniques]
    phrases = alias_phrases(taxonomy)
    rows = [
        named_techniques(docs[i].title, docs[i].text, taxonomy, phrases=phrases) for i in wanted
    ]
    named = np.array([[k in row for k in keys] for row in rows], dtype=bool)
    named = named.reshape(len(wanted), len(keys))
    matrix = np.stack([kept.get(i, fresh.get(i)) for i in wanted]).astype(np.float16)

    def write(tmp) -> None:
        with tmp.open("wb") as fh:
            np.savez_compressed(
                fh,
                model=np.array(BUNDLED),
                ids=np.array(wanted),
                vectors=matrix,
                named_keys=np.array(keys),
                named=named,
            )

    path = Path(str(out or (_labels_dir() / VECTOR_FILE)))
    atomic_write(path, write)
    for reader in (shipped_vectors, shipped_named, labels_fingerprint):
        reader.cache_clear()
    return {"kept": len(kept), "embedded": len(fresh), "labelled": len(wanted)}


# -- written examples ------------------------------------------------------------------
# The sample holds only about 35 training papers each for finance, legal and retail. So the
# team wrote short abstracts for their use cases, and "near misses" (a sector word in another
# sense, the sector as one benchmark among many), and had them judged blind like the papers.
# index/training.py trains on them but never validates on them or cites them as evidence.

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


def main(argv=None) -> int:
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m index.labels",
        description="Fill in index/data/labels/vectors.npz for the judged papers: embed the "
        "ones without a vector, and record which techniques each one's text names. With "
        "--written, do the same for the team's written examples (written_vectors.npz).",
    )
    parser.add_argument(
        "records",
        nargs="?",
        help="arXiv records as JSON Lines (e.g. ../shared/data/arxiv_sample.jsonl)",
    )
    parser.add_argument(
        "--written",
        action="store_true",
        help="embed the written examples whose vector is missing or stale",
    )
    args = parser.parse_args(argv)
    if not args.records and not args.written:
        parser.error("give the arXiv records, --written, or both")
    lines = []
    try:
        if args.records:
            counts = write_vectors(args.records)
            lines.append(
                f"vectors.npz: {counts['labelled']} judged papers, {counts['kept']} vectors "
                f"kept, {counts['embedded']} embedded."
            )
        if args.written:
            counts = write_written_vectors()
            lines.append(
                f"written_vectors.npz: {counts['written']} written examples, {counts['kept']} "
                f"vectors kept, {counts['embedded']} embedded."
            )
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write("\n".join(lines) + "\nNow run: python -m index.learner\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

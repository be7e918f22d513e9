"""The learned matcher as data: its classifiers, their validation figures, and its file.

One :class:`MatcherModel` holds a linear classifier per target (a sector, "sector/use case",
or "technique:key"), its Platt calibration and threshold, and the positive examples that
explain matches ("like 2504.01234, which ana confirmed"). A sector's probability also weighs
how much closer a document lies to the sector's nearest labelled examples than to its nearest
counter-examples (:func:`neighbour_scores`): a linear boundary alone misses small clusters of
relevant papers, such as one kind of robot among many robotics papers. It is trained by
index/training.py, kept on disk by index/learner.py, and applied by index/match_rules.py.

    model = MatcherModel.load(path)
    probabilities = model.predict(vectors)   # {"finance": array, "finance/fraud_detection": ...}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.fsutil import atomic_write

FORMAT_VERSION = 3
TECHNIQUE = "technique:"  # the prefix of technique targets: "technique:cnn"
NEIGHBOURS = 5  # how many nearest examples, and as many counter-examples, a sector compares
_CHUNK = 1024  # query rows per similarity block: 1,024 x 10,000 float32 is 40 MB


def neighbour_scores(
    queries: np.ndarray, vectors: np.ndarray, labels: np.ndarray, *, k: int = NEIGHBOURS
) -> np.ndarray:
    """(queries, targets): for each target (a column of ``labels``: 1 fits, 0 does not,
    -1 unknown), the mean similarity of a query to its ``k`` most similar examples that fit,
    minus that to its ``k`` most similar examples that do not. 0 where either side is empty."""
    out = np.zeros((len(queries), labels.shape[1]), dtype=np.float32)
    if len(queries) == 0 or len(vectors) == 0:
        return out
    vectors = np.asarray(vectors, dtype=np.float32)
    sides = [
        (np.flatnonzero(labels[:, j] == 1), np.flatnonzero(labels[:, j] == 0))
        for j in range(labels.shape[1])
    ]
    for start in range(0, len(queries), _CHUNK):
        sims = np.asarray(queries[start : start + _CHUNK], dtype=np.float32) @ vectors.T
        for j, (pos, neg) in enumerate(sides):
            if len(pos) == 0 or len(neg) == 0:
                continue
            out[start : start + len(sims), j] = _top_mean(sims[:, pos], k) - _top_mean(
                sims[:, neg], k
            )
    return out


def calibrated(z: np.ndarray) -> np.ndarray:
    """The calibration's sign convention: p = 1 / (1 + exp(z)), z = a*s + b (+ c*n)."""
    return 1.0 / (1.0 + np.exp(np.clip(z, -50, 50)))


def _top_mean(sims: np.ndarray, k: int) -> np.ndarray:
    if sims.shape[1] <= k:
        return sims.mean(axis=1)
    return np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)


@dataclass(slots=True)
class Example:
    """One labelled vector: ``labels`` maps targets ("health", "health/diagnosis_support")
    to fits / does not fit."""

    key: str
    vector: np.ndarray
    labels: dict[str, bool]
    origin: str  # "team", "feedback", "description" or "written" (index/labels.py)
    by: str = ""
    weight: float = 1.0
    named: frozenset[str] | None = None  # technique keys its text names; None: not known


@dataclass(slots=True)
class Target:
    """One trained binary classifier and how it did on validation."""

    key: str
    mode: str  # "learned" (calibrated), "description" (few examples) or "fallback"
    positives: int
    negatives: int
    threshold: float = 0.5
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    # Techniques only: the probability a paper that names the technique needs to be tagged
    # (None: naming it is enough). ``threshold`` then applies to papers that do not name it.
    named_threshold: float | None = None
    # Fitted on whitened vectors (index/training.py: a sector or technique with few positives).
    whitened: bool = False
    # Use cases with too few positives only: scored by similarity to their description
    # (index/training.py: description_rule), so the probability compares with a learned one.
    by_description: bool = False


@dataclass(slots=True)
class MatcherModel:
    """Weights, calibration and thresholds of every target, and positive examples."""

    embedder: str
    dim: int
    taxonomy: str
    trained_at: str
    feedback_mark: str
    seconds: float
    labels: str
    targets: dict[str, Target]
    coef: np.ndarray  # (targets, dim), rows in ``order``
    intercept: np.ndarray  # (targets,)
    # (targets, 3): p = 1 / (1 + exp(a * s + c * n + b)), s the linear score and n the
    # neighbour score (c is 0 for targets without neighbours)
    platt: np.ndarray
    order: list[str]
    example_vectors: np.ndarray  # (n, dim) float16: positives, for "like ..." explanations
    example_keys: list[str]
    example_targets: list[list[str]]
    example_origins: list[str]
    orphaned: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    # The labelled documents a sector's neighbour score compares with: their vectors, and one
    # column per target of ``neighbour_targets`` (1 fits, 0 does not, -1 not labelled).
    neighbour_targets: list[str] = field(default_factory=list)
    neighbour_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))
    neighbour_labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))

    @property
    def version(self) -> str:
        return f"{self.trained_at}|{self.feedback_mark}"

    def learned(self, target: str) -> bool:
        t = self.targets.get(target)
        return t is not None and t.mode != "fallback"

    def uses_neighbours(self, target: str) -> bool:
        """Whether ``target``'s probability also weighs its neighbour score."""
        return (
            target in self.neighbour_targets
            and target in self.order
            and float(self.platt[self.order.index(target), 2]) != 0.0
        )

    def predict(self, vectors: np.ndarray, targets: Sequence[str] | None = None) -> dict:
        """Calibrated probabilities per target for each row of ``vectors``."""
        wanted = [t for t in (targets or self.order) if t in self.targets and self.learned(t)]
        if not wanted or len(vectors) == 0:
            return {t: np.zeros(len(vectors), dtype=np.float32) for t in wanted}
        rows = [self.order.index(t) for t in wanted]
        scores = vectors @ self.coef[rows].T + self.intercept[rows]
        a, b, c = self.platt[rows, 0], self.platt[rows, 1], self.platt[rows, 2]
        near = np.zeros_like(scores)
        columns = [  # only the targets whose calibration weighs the score
            (i, self.neighbour_targets.index(t))
            for i, t in enumerate(wanted)
            if t in self.neighbour_targets and float(c[i]) != 0.0
        ]
        if columns and len(self.neighbour_vectors):
            if self.neighbour_vectors.dtype != np.float32:
                self.neighbour_vectors = self.neighbour_vectors.astype(np.float32)
            found = neighbour_scores(
                vectors, self.neighbour_vectors, self.neighbour_labels[:, [j for _, j in columns]]
            )
            near[:, [i for i, _ in columns]] = found
        probs = calibrated(a * scores + c * near + b)
        return {t: probs[:, i] for i, t in enumerate(wanted)}

    def nearest_examples(
        self, vector: np.ndarray, target: str, *, exclude: str = "", k: int = 2
    ) -> list[tuple[str, str, float]]:
        """(key, origin, similarity) of the closest positive examples of ``target``."""
        if len(self.example_keys) == 0:
            return []
        if self.example_vectors.dtype != np.float32:
            self.example_vectors = self.example_vectors.astype(np.float32)
        sims = self.example_vectors @ vector
        out = []
        for i in np.argsort(-sims):
            if target in self.example_targets[i] and self.example_keys[i] != exclude:
                if self.example_origins[i] != "description":
                    out.append((self.example_keys[i], self.example_origins[i], float(sims[i])))
                if len(out) == k:
                    break
        return out

    # -- persistence -------------------------------------------------------------------

    def save(self, path: Path) -> None:
        meta = {
            "format": FORMAT_VERSION,
            "embedder": self.embedder,
            "dim": self.dim,
            "taxonomy": self.taxonomy,
            "trained_at": self.trained_at,
            "feedback_mark": self.feedback_mark,
            "seconds": self.seconds,
            "labels": self.labels,
            "targets": {k: asdict(t) for k, t in self.targets.items()},
            "order": self.order,
            "example_keys": self.example_keys,
            "example_targets": self.example_targets,
            "example_origins": self.example_origins,
            "orphaned": self.orphaned,
            "counts": self.counts,
            "neighbour_targets": self.neighbour_targets,
        }

        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.savez(
                    fh,
                    meta=np.array(json.dumps(meta)),
                    coef=self.coef.astype(np.float32),
                    intercept=self.intercept.astype(np.float32),
                    platt=self.platt.astype(np.float32),
                    example_vectors=self.example_vectors.astype(np.float16),
                    neighbour_vectors=self.neighbour_vectors.astype(np.float16),
                    neighbour_labels=self.neighbour_labels.astype(np.int8),
                )

        atomic_write(path, write)

    @classmethod
    def load(cls, path: Path) -> MatcherModel:
        """Read a saved model; ValueError when the file is missing, corrupt or too old."""
        try:
            with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {
                    k: np.asarray(data[k])
                    for k in (
                        "coef",
                        "intercept",
                        "platt",
                        "example_vectors",
                        "neighbour_vectors",
                        "neighbour_labels",
                    )
                }
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise ValueError(f"cannot read matcher file {path}: {exc}") from exc
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"matcher file {path} has format {meta.get('format')!r}")
        try:
            model = cls(
                embedder=meta["embedder"],
                dim=int(meta["dim"]),
                taxonomy=meta["taxonomy"],
                trained_at=meta["trained_at"],
                feedback_mark=meta["feedback_mark"],
                seconds=float(meta["seconds"]),
                labels=str(meta.get("labels", "")),
                targets={k: Target(**v) for k, v in meta["targets"].items()},
                coef=arrays["coef"],
                intercept=arrays["intercept"],
                platt=arrays["platt"],
                order=list(meta["order"]),
                example_vectors=arrays["example_vectors"],
                example_keys=list(meta["example_keys"]),
                example_targets=[list(t) for t in meta["example_targets"]],
                example_origins=list(meta["example_origins"]),
                orphaned=int(meta.get("orphaned", 0)),
                counts=dict(meta.get("counts", {})),
                neighbour_targets=list(meta["neighbour_targets"]),
                neighbour_vectors=arrays["neighbour_vectors"],
                neighbour_labels=arrays["neighbour_labels"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"matcher file {path} is incomplete: {exc}") from exc
        shapes_ok = (
            model.platt.shape == (len(model.order), 3)
            and model.coef.shape == (len(model.order), model.dim)
            and model.neighbour_labels.shape
            == (len(model.neighbour_vectors), len(model.neighbour_targets))
        )
        if not shapes_ok:
            raise ValueError(f"matcher file {path} is incomplete: its arrays do not match")
        return model

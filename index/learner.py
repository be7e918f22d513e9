"""The matcher file: where the learned matcher is kept, and when it is trained again.

The trained model (index/matcher_model.py) is saved under the data directory, one file per
embedder, and loaded once per process (again when the file changes). It is trained again
(index/training.py) when the file is missing, unreadable, or made for another embedder,
taxonomy or label set; answers users give wait for the next training (the scheduler's
``matcher`` job, or `veille matcher train`). A fresh install starts from the model shipped
beside the labels: run ``python -m index.learner`` after changing the labels or the shipped
taxonomy to write it again.

    model = ensure_matcher(store, settings, embedder, taxonomy)
    matcher_status(store, settings, taxonomy)["targets"][0]["f1"]
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from core.settings import Settings
from core.store import Store, documents
from index.embedder import BUNDLED, Embedder, get_embedder, model_slug
from index.feedback import Feedback, feedback_mark, feedback_rows, orphaned
from index.labels import labels_fingerprint
from index.matcher_model import TECHNIQUE, MatcherModel
from index.taxonomy import Taxonomy, parse_taxonomy
from index.training import MIN_PRECISION, examples_for, train
from index.vectors import vectors_for

log = logging.getLogger(__name__)

SHIPPED_MODEL = "matcher.npz"
NO_FEEDBACK = "0:0"


def matcher_path(settings: Settings, embedder_name: str) -> Path:
    return settings.data_dir / "matcher" / f"{model_slug(embedder_name)}.npz"


def train_and_save(
    store: Store, settings: Settings, embedder: Embedder, taxonomy: Taxonomy
) -> MatcherModel:
    """Train from the shipped labels, users' answers and the taxonomy, and save atomically."""
    mark = feedback_mark(store)
    examples = examples_for(store, taxonomy, embedder)
    model = train(examples, taxonomy, embedder, mark=mark, orphans=len(orphaned(store, taxonomy)))
    model.save(matcher_path(settings, embedder.name))
    log.info("matcher trained in %.1fs on %d examples", model.seconds, len(examples))
    return model


_loaded: dict[Path, tuple[tuple[int, int, int], MatcherModel]] = {}


def _load_cached(path: Path) -> MatcherModel:
    """The model in ``path``, read again only when the file changed (FileNotFoundError when
    there is none, ValueError when it is unreadable)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise FileNotFoundError(str(path)) from exc
    stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
    cached = _loaded.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    model = MatcherModel.load(path)
    _loaded[path] = (stamp, model)
    return model


def load_matcher(settings: Settings, embedder_name: str, taxonomy: Taxonomy) -> MatcherModel | None:
    """The saved model, or None when it is missing, unreadable or made for another
    embedder or taxonomy (logged)."""
    try:
        model = _load_cached(matcher_path(settings, embedder_name))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        log.warning("%s; it will be retrained", exc)
        return None
    if (
        model.embedder != embedder_name
        or model.taxonomy != taxonomy.fingerprint
        or model.labels != labels_fingerprint()
    ):
        return None
    return model


def ensure_matcher(
    store: Store, settings: Settings, embedder: Embedder, taxonomy: Taxonomy
) -> MatcherModel:
    """The current model; trained now when the file is missing, corrupt or stale.

    A fresh install with the shipped taxonomy, the bundled model and no feedback yet starts
    from the model shipped beside the labels (what training would produce), so the first
    `veille index` does not spend seconds training."""
    model = load_matcher(settings, embedder.name, taxonomy)
    if model is None and feedback_mark(store) == NO_FEEDBACK:
        model = shipped_matcher(embedder.name, taxonomy)
        if model is not None:
            model.save(matcher_path(settings, embedder.name))
    if model is None:
        model = train_and_save(store, settings, embedder, taxonomy)
    return model


def shipped_matcher(embedder_name: str, taxonomy: Taxonomy) -> MatcherModel | None:
    """The model shipped in index/data/labels, when it fits this embedder, taxonomy and
    label set; None otherwise."""
    try:
        with resources.as_file(resources.files("index") / "data" / "labels" / SHIPPED_MODEL) as p:
            model = _load_cached(Path(p))
    except (ValueError, FileNotFoundError):
        return None
    if (
        model.embedder != embedder_name
        or model.taxonomy != taxonomy.fingerprint
        or model.labels != labels_fingerprint()
        or model.feedback_mark != NO_FEEDBACK
    ):
        return None
    return model


def write_shipped_matcher(path: Path | None = None) -> MatcherModel:
    """Train from the shipped labels and the shipped taxonomy with the bundled model, and
    write the result beside the labels (run `python -m index.learner` after changing them)."""
    embedder = get_embedder(BUNDLED)
    shipped = resources.files("index") / "data" / "taxonomy.toml"
    taxonomy = parse_taxonomy(shipped.read_text(encoding="utf-8"), str(shipped))
    model = train(examples_for(None, taxonomy, embedder), taxonomy, embedder, mark=NO_FEEDBACK)
    target = path or Path(str(resources.files("index"))) / "data" / "labels" / SHIPPED_MODEL
    model.save(target)
    return model


def needs_training(store: Store, settings: Settings, taxonomy: Taxonomy) -> bool:
    """True when answers were added since the last training (or no usable model exists)."""
    model = load_matcher(settings, settings.model, taxonomy)
    return model is None or model.feedback_mark != feedback_mark(store)


def matcher_status(store: Store, settings: Settings, taxonomy: Taxonomy) -> dict[str, Any]:
    """What `veille matcher status` and the Sectors page show: per sector and use case, the
    labels trained on and the validation P/R/F1; answers waiting for the next training;
    answers orphaned by a taxonomy change. A data directory with no model and no answers yet
    shows the shipped model its first indexing will start from."""
    model = load_matcher(settings, settings.model, taxonomy)
    mark = feedback_mark(store)
    source = "trained" if model is not None else None
    if model is None and mark == NO_FEEDBACK:
        # A fresh data directory: the first `veille index` starts from the shipped model
        # (ensure_matcher), so show what it will use rather than an empty table.
        model = shipped_matcher(settings.model, taxonomy)
        source = "shipped" if model is not None else None
    # The first indexing saves the shipped model in the data directory: it is still the one
    # shipped with Veille until this directory trains its own.
    shipped_copy = source == "shipped" or (
        model is not None
        and model.feedback_mark == NO_FEEDBACK
        and (shipped := shipped_matcher(settings.model, taxonomy)) is not None
        and shipped.version == model.version
    )
    answers = feedback_rows(store)
    per_sector: dict[str, dict[str, int]] = {}
    for f in answers:
        slot = per_sector.setdefault(f.sector, {"fits": 0, "does_not_fit": 0})
        slot["fits" if f.fits else "does_not_fit"] += 1
    lost = orphaned(store, taxonomy)
    targets = []
    named = [
        pair
        for sector in taxonomy.sectors
        for pair in [(sector.key, sector.name)]
        + [(f"{sector.key}/{uc.key}", f"{sector.name} › {uc.name}") for uc in sector.use_cases]
    ] + [(f"{TECHNIQUE}{t.key}", f"Technique: {t.name}") for t in taxonomy.techniques]
    for key, name in named:
        t = model.targets.get(key) if model else None
        targets.append(
            {
                "target": key,
                "name": name,
                "mode": t.mode if t else "untrained",
                # a sector that also weighs its nearest judged papers (index/matcher_model.py)
                "neighbours": bool(model and t and model.uses_neighbours(key)),
                # fitted on whitened vectors: a sector or technique with few positives
                "whitened": bool(t and t.whitened),
                "positives": t.positives if t else 0,
                "negatives": t.negatives if t else 0,
                "threshold": t.threshold if t else None,
                "named_threshold": t.named_threshold if t else None,
                "precision": t.precision if t else None,
                "recall": t.recall if t else None,
                "f1": t.f1 if t else None,
                "answers": per_sector.get(key, {}) if "/" not in key else {},
            }
        )
    return {
        # "trained": this data directory's own model; "shipped": none yet, the first
        # indexing starts from the model shipped with Veille; None: training is needed.
        "source": source,
        "shipped": shipped_copy,  # the model is the one shipped with Veille
        "trained_at": model.trained_at if model else None,
        "seconds": model.seconds if model else None,
        "examples": model.counts if model else {},
        "answers": len(answers),
        "waiting": source != "shipped" and (model is None or model.feedback_mark != mark),
        "orphaned": [
            {
                "document": f.canonical_id,
                "sector": f.sector,
                "use_case": f.use_case,
                "verdict": "fits" if f.fits else "does_not_fit",
            }
            for f in lost
        ],
        "targets": targets,
        "min_precision": MIN_PRECISION,
    }


@dataclass(slots=True)
class AskPool:
    """The documents questions are drawn from, read once for several questions: their
    vectors, and the answers already given (see ask_pool)."""

    store: Store
    taxonomy: Taxonomy
    model: MatcherModel
    ids: np.ndarray
    vectors: np.ndarray
    answers: list[Feedback]

    def pick(
        self,
        sector: str,
        *,
        n: int = 3,
        use_case: str | None = None,
        skip: Collection[int] = (),
    ) -> list[tuple[int, float]]:
        """(document row id, probability) of the ``n`` documents whose answer would teach the
        matcher most about ``sector``: those closest to its threshold that nobody has
        answered about yet (uncertainty sampling), leaving out the row ids in ``skip``.

        With ``use_case``, about that use case of the sector instead; while it has too few
        confirmed papers to be learned (it is scored by its description), the most likely
        documents come first: near a threshold nobody has checked, most answers would be
        "no"."""
        sector_key = self.taxonomy.sector(sector).key
        if not self.model.learned(sector_key):
            return []
        key, uc_key = sector_key, None
        if use_case is not None:
            uc_key = self.taxonomy.use_case(use_case, sector_key).key
            key = f"{sector_key}/{uc_key}"
            target = self.model.targets.get(key)
            if target is None or not (target.mode == "learned" or target.by_description):
                return []
        probs = self.model.predict(self.vectors, [key])[key]
        threshold = self.model.targets[key].threshold
        answered = {
            f.canonical_id
            for f in self.answers
            if f.sector == sector_key
            and (uc_key is None or f.use_case == uc_key or (f.use_case is None and not f.fits))
        }
        if uc_key is not None and self.model.targets[key].by_description:
            order = np.argsort(-probs, kind="stable")
        else:
            order = np.argsort(np.abs(np.log(probs + 1e-9) - np.log(threshold + 1e-9)))
        order = [i for i in order if int(self.ids[i]) not in skip]
        picked: list[tuple[int, float]] = []
        with self.store.engine.connect() as conn:
            for start in range(0, len(order), 200):
                chunk = [int(self.ids[i]) for i in order[start : start + 200]]
                canon = dict(
                    conn.execute(
                        sa.select(documents.c.id, documents.c.canonical_id).where(
                            documents.c.id.in_(chunk)
                        )
                    ).all()
                )
                for i in order[start : start + 200]:
                    doc_id = int(self.ids[i])
                    if canon.get(doc_id) not in answered:
                        picked.append((doc_id, float(probs[i])))
                    if len(picked) == n:
                        return picked
        return picked


def ask_pool(
    store: Store,
    settings: Settings,
    taxonomy: Taxonomy,
    *,
    candidates: Iterable[int] | None = None,
    recent: int = 2000,
) -> AskPool | None:
    """The pool questions are drawn from: ``candidates``, or the ``recent`` newest documents,
    with their stored vectors; None without a trained matcher or a document to ask about."""
    model = load_matcher(settings, settings.model, taxonomy)
    if model is None:
        return None
    if candidates is None:
        # The newest documents: questions about what is current, and a bounded cost.
        with store.engine.connect() as conn:
            candidates = [
                r[0]
                for r in conn.execute(
                    sa.select(documents.c.id)
                    .order_by(documents.c.published.desc().nulls_last(), documents.c.id.desc())
                    .limit(recent)
                )
            ]
    ids, vectors = vectors_for(
        store, model.embedder, model.dim, ids=np.fromiter(candidates, dtype=np.int64)
    )
    if len(ids) == 0:
        return None
    return AskPool(store, taxonomy, model, ids, vectors, feedback_rows(store))


def uncertain_documents(
    store: Store,
    settings: Settings,
    taxonomy: Taxonomy,
    sector: str,
    *,
    n: int = 3,
    candidates: Iterable[int] | None = None,
    recent: int = 2000,
    use_case: str | None = None,
) -> list[tuple[int, float]]:
    """AskPool.pick on a pool read for this one question (see ask_pool)."""
    pool = ask_pool(store, settings, taxonomy, candidates=candidates, recent=recent)
    return pool.pick(sector, n=n, use_case=use_case) if pool else []


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    written = write_shipped_matcher()
    log.info("wrote the shipped matcher (labels %s, taxonomy %s)", written.labels, written.taxonomy)

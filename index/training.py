"""Training the learned sector matcher: labelled examples, then calibrated classifiers.

Why it is shaped this way:

* Every document already has a vector in the embeddings cache, so a linear classifier over
  it costs one matrix product per batch: nothing is embedded again, and training on a few
  thousand labels takes seconds on two cores.
* One binary classifier per sector decides *whether* a document fits the sector; one per use
  case says *which* use case, for the per-use-case lists and the explanation.
* Labels come from three places, later ones winning for the same document: the judged set
  shipped with Veille (index/labels.py), the answers users give (index/feedback.py), and the
  taxonomy itself — each use case's description is one positive example, so a use case an
  operator adds starts matching from its description and improves with a few confirmed
  examples.
* Scores are probabilities: Platt scaling fitted on out-of-fold scores. For a sector, the
  calibration also weighs the document's neighbour score (how much closer it lies to the
  nearest documents labelled as fitting than to the nearest labelled as not fitting,
  index/matcher_model.py), itself computed out of fold, where it does better on those
  out-of-fold scores: it finds small clusters a linear boundary misses, and raised
  industry's F1 by 0.03 in cross-validation on `train` (benchmarks/written_cv.py). Each
  threshold is chosen on those same out-of-fold scores, as the best F1 with precision at least
  ``MIN_PRECISION``; the out-of-fold figures are the validation P/R/F1 `veille matcher status`
  shows. A technique gets two thresholds, one for papers that name it (by the taxonomy's
  aliases) and one for papers that do not, chosen together for the best F1: naming it is
  strong evidence, yet a baseline named in passing is not use (pick_named_gate).
* The rarer sectors also learn from abstracts the team wrote and had judged (index/labels.py):
  like the descriptions, they train the classifiers but never count in validation, never pick
  a threshold and never explain a match.
* A sector or technique with few positives (finance, legal and retail have 35 judged ones
  each; RNN, GNN and time series 51 to 76) is learned in whitened coordinates: the
  documents' vectors are centred and every direction scaled to the same variance (with
  shrinkage) before the logistic fit, and the weights are mapped back, so the model is
  still one linear classifier over stored vectors. MiniLM vectors spend most of their
  variance on a few directions (what a paper is about in general); with a few dozen
  positives the penalty otherwise keeps the weights on those, and the quieter directions
  that tell a shop's recommender from another recommender are left out. In cross-validation
  on `train` it raised retail's F1 from 0.67 to 0.73 (benchmarks/written_cv.py); the
  common sectors lost by it there, so they keep raw vectors.
* A sector with too few labels (one an operator just added) is not learned: matching keeps
  the description-and-keywords scorer for it (index/match_rules.py) until it has some.
* A use case with fewer than five positives (one an operator just added to a sector) is
  scored by its description instead of a fit on a single positive: how many standard
  deviations a document's similarity to it stands above the judged documents' mean
  similarity to it (description_rule). That scale is the same for every use case, so one
  level serves them all, and the answers a lead gives about the papers it ranks first are
  the ones most likely to fit.

When to train and where the model is kept is index/learner.py.

    model = train(examples_for(store, taxonomy, embedder), taxonomy, embedder)
    probabilities = model.predict(vectors)   # {"finance": array, "finance/fraud_detection": ...}
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from core.store import Store, documents
from index.embedder import BUNDLED, Embedder
from index.feedback import Feedback, Verdict, feedback_rows, resolve
from index.labels import (
    AUDIT,
    LabelRow,
    labels_fingerprint,
    read_labels,
    read_written,
    shipped_named,
    shipped_vectors,
    vectors_for_written,
)
from index.matcher_model import (
    TECHNIQUE,
    Example,
    MatcherModel,
    Target,
    calibrated,
    neighbour_scores,
)
from index.taxonomy import Taxonomy
from index.vectors import vectors_for

MIN_PRECISION = 0.85
MIN_POSITIVES = 5
MIN_NEGATIVES = 10
DESCRIPTION_WEIGHT = 2.0
WRITTEN_WEIGHT = 1.0
# Examples that are not documents: they train, but validation figures and thresholds come
# from documents only, and they never explain a match.
NOT_DOCUMENTS = ("description", "written")
# Examples a sector's neighbour score never compares with: use-case descriptions are not
# documents, and written examples are labelled for three sectors only.
NOT_NEIGHBOURS = ("description", "written")
FEEDBACK_WEIGHT = 2.0
C = 16.0
FOLDS = 5
# A sector or technique with fewer judged positives than this learns in whitened coordinates.
WHITEN_BELOW = 100
# Shrinkage of the whitening, as a share of the mean variance, added to every direction's
# variance: the quietest directions (mostly noise) are stretched at most about 3.3 times
# (the square root of 1.1 / 0.1) where plain whitening would stretch them without bound.
WHITEN_SHRINK = 0.1
# A use case with fewer than MIN_POSITIVES positives (one an operator just added) is scored by
# its description alone: a document fits when its similarity to the description stands
# DESCRIPTION_Z standard deviations above the judged documents' mean similarity to it, a
# level picked on `train` as the best for the taxonomy's use cases taken together (and
# checked use case by use case, each time with the others only). The probability is
# 1 / (1 + exp(-DESCRIPTION_SLOPE * (z - DESCRIPTION_Z))): 0.5 at that level.
DESCRIPTION_Z = 3.0
DESCRIPTION_SLOPE = 3.0
# How many judged documents the spread of similarities is measured on, at least.
DESCRIPTION_SPREAD_DOCS = 50


# -- examples --------------------------------------------------------------------------


def label_targets(row: LabelRow, taxonomy: Taxonomy) -> dict[str, bool]:
    """The targets a judged paper labels: each judged sector, its use cases, and each
    technique both judges agreed on ("technique:cnn")."""
    out: dict[str, bool] = {}
    for sector in taxonomy.sectors:
        fits = row.sectors.get(sector.key)
        if fits is None:
            continue
        out[sector.key] = fits
        named = row.use_cases.get(sector.key)
        for uc in sector.use_cases:
            # A paper that fits the sector under another use case is a negative for this one.
            if fits and named is None:
                continue
            out[f"{sector.key}/{uc.key}"] = bool(fits and named == uc.key)
    if row.techniques is not None:
        for tech in taxonomy.techniques:
            if tech.key not in row.disputed_techniques:
                out[f"{TECHNIQUE}{tech.key}"] = tech.key in row.techniques
    return out


def apply_feedback(
    labels: dict[str, bool], answers: dict[tuple[str, str | None], Verdict], taxonomy: Taxonomy
) -> dict[str, bool]:
    """Overlay users' resolved answers (latest wins) on a document's labels.

    ``answers`` maps (sector, use case or None) to a Verdict. "Does not fit" the sector makes
    every use case of it a negative; "fits use case U" makes the sector a positive.
    """
    out = dict(labels)
    for (sector_key, uc_key), verdict in sorted(answers.items(), key=lambda kv: kv[1].when):
        try:
            sector = taxonomy.sector(sector_key)
        except KeyError:
            continue
        if uc_key is None:
            out[sector.key] = verdict.fits
            if not verdict.fits:
                for uc in sector.use_cases:
                    out[f"{sector.key}/{uc.key}"] = False
        else:
            out[f"{sector.key}/{uc_key}"] = verdict.fits
            if verdict.fits:
                out[sector.key] = True
    return out


def examples_for(
    store: Store | None,
    taxonomy: Taxonomy,
    embedder: Embedder,
    *,
    rows: Iterable[LabelRow] | None = None,
    feedback: Iterable[Feedback] | None = None,
    use_descriptions: bool = True,
    use_written: bool = True,
) -> list[Example]:
    """Labelled vectors for training: judged papers, users' answers, use-case descriptions,
    the team's written examples.

    A judged paper's vector is read from the store when the paper is there (embedded with the
    current model), else from the vectors shipped for the bundled model; without either it
    is left out. Answers about documents with no vector yet are left out too.
    """
    # Audit papers were drawn by the matcher's own top predictions: they check its precision
    # and are never trained on (index/data/labels/README.md).
    rows = [r for r in (read_labels() if rows is None else rows) if r.split != AUDIT]
    answers_list = list(
        feedback if feedback is not None else (feedback_rows(store) if store else [])
    )
    by_doc: dict[str, dict] = {}
    who: dict[str, str] = {}
    for key, verdict in resolve(answers_list).items():
        doc, sector, uc = key
        by_doc.setdefault(doc, {})[(sector, uc)] = verdict
        who[doc] = verdict.by
    wanted = {r.arxiv_id for r in rows} | set(by_doc)
    stored = _stored_vectors(store, embedder, wanted) if store is not None else {}
    shipped_model, shipped = shipped_vectors()
    use_shipped = shipped_model == embedder.name == BUNDLED
    named = shipped_named()
    out: list[Example] = []
    for row in rows:
        vector = stored.get(row.arxiv_id)
        if vector is None and use_shipped:
            vector = shipped.get(row.arxiv_id)
        if vector is None or vector.shape[0] != embedder.dim:
            continue
        labels = label_targets(row, taxonomy)
        origin, weight, by = "team", 1.0, ""
        if row.arxiv_id in by_doc:
            labels = apply_feedback(labels, by_doc.pop(row.arxiv_id), taxonomy)
            origin, weight, by = "feedback", FEEDBACK_WEIGHT, who[row.arxiv_id]
        if labels:
            out.append(
                Example(row.arxiv_id, vector, labels, origin, by, weight, named.get(row.arxiv_id))
            )
    for doc, answers in by_doc.items():
        vector = stored.get(doc)
        if vector is None:
            continue
        labels = apply_feedback({}, answers, taxonomy)
        if labels:
            out.append(Example(doc, vector, labels, "feedback", who[doc], FEEDBACK_WEIGHT))
    if use_descriptions:
        out += description_examples(taxonomy, embedder)
    if use_written:
        out += written_examples(taxonomy, embedder)
    return out


_description_vectors: dict[tuple[str, str], np.ndarray] = {}


def description_examples(taxonomy: Taxonomy, embedder: Embedder) -> list[Example]:
    """Each use case's description as one positive example of it and of its sector."""
    cases = taxonomy.use_cases
    key = (embedder.name, taxonomy.fingerprint)
    if key not in _description_vectors:  # embedded once per taxonomy and process
        _description_vectors[key] = embedder.encode([uc.text for uc in cases])
    vectors = _description_vectors[key]
    out = []
    for uc, vector in zip(cases, vectors, strict=True):
        labels = {s.key: s.key == uc.sector for s in taxonomy.sectors}
        for other in taxonomy.sector(uc.sector).use_cases:
            labels[f"{uc.sector}/{other.key}"] = other.key == uc.key
        out.append(
            Example(
                f"use case: {uc.sector}/{uc.key}",
                vector,
                labels,
                "description",
                "",
                DESCRIPTION_WEIGHT,
            )
        )
    return out


def _stored_vectors(store: Store, embedder: Embedder, canonical_ids: set[str]) -> dict:
    if not canonical_ids:
        return {}
    found: dict[int, str] = {}
    wanted = sorted(canonical_ids)
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            rows = conn.execute(
                sa.select(documents.c.id, documents.c.canonical_id).where(
                    documents.c.canonical_id.in_(wanted[start : start + 500])
                )
            )
            found.update({int(r[0]): r[1] for r in rows})
    if not found:
        return {}
    ids, vectors = vectors_for(store, embedder.name, embedder.dim, ids=np.array(list(found)))
    return {found[int(i)]: v for i, v in zip(ids.tolist(), vectors, strict=True)}


_written_vectors: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def written_examples(taxonomy: Taxonomy, embedder: Embedder) -> list[Example]:
    """The team's judged written abstracts (index/labels.py) as examples, for the sectors
    they were written for (finance, legal, retail): each such sector the two judges agreed on,
    and the author's use case where they judged it fits that sector. Other sectors are not
    labelled: their near misses were never sought, and on `train` their negatives only cost
    industry recall. Sectors and use cases the taxonomy no longer has are skipped."""
    rows = read_written()
    if not rows:
        return []
    covered = {row.written_for for row in rows}
    key = (embedder.name, labels_fingerprint())
    if key not in _written_vectors:  # embedded at most once per model and process
        _written_vectors[key] = vectors_for_written(embedder)
    vectors = _written_vectors[key]
    known = {s.key: s for s in taxonomy.sectors}
    out = []
    for row in rows:
        vector = vectors.get(row.key)
        if vector is None or vector.shape[0] != embedder.dim:
            continue
        labels: dict[str, bool] = {}
        for sector_key, fits in row.sectors.items():
            sector = known.get(sector_key)
            if sector is None or fits is None or sector_key not in covered:
                continue
            labels[sector_key] = fits
            aimed = sector_key == row.written_for and row.use_case
            if fits and not aimed:
                continue  # fits, but under which use case nobody said
            for uc in sector.use_cases:
                labels[f"{sector_key}/{uc.key}"] = bool(fits and uc.key == row.use_case)
        if labels:
            out.append(
                Example(f"written: {row.key}", vector, labels, "written", "", WRITTEN_WEIGHT)
            )
    return out


# -- training --------------------------------------------------------------------------


Whitening = tuple[np.ndarray, np.ndarray]  # (mean, symmetric scaling matrix)


def whitening(x: np.ndarray) -> Whitening | None:
    """(mean, W) such that (x - mean) @ W has about the same variance in every direction;
    None with too few documents to estimate it (fewer than twice the dimension)."""
    if len(x) < 2 * x.shape[1]:
        return None
    x = x.astype(np.float64)
    mean = x.mean(axis=0)
    variances, directions = np.linalg.eigh(np.cov(x - mean, rowvar=False))
    variances = np.maximum(variances, 0.0)
    shrink = WHITEN_SHRINK * float(variances.mean())
    # Scaled so that a direction of mean variance keeps its length: C means the same thing.
    scale = np.sqrt((variances.mean() + shrink) / (variances + shrink))
    return mean, (directions * scale) @ directions.T


def description_rule(
    x: np.ndarray, y: np.ndarray, real: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """(weights, intercept) scoring documents by their similarity to a use case's
    description, in standard deviations above the judged documents' mean similarity to it
    (see DESCRIPTION_Z). The few documents confirmed so far, if any, pull the direction
    towards them: their mean vector is added to the description's (unit) vector. None
    without a description or with too few judged documents."""
    texts = ~real & (y == 1)
    if not texts.any() or int(real.sum()) < DESCRIPTION_SPREAD_DOCS:
        return None
    direction = x[texts].astype(np.float64).mean(axis=0)
    direction /= np.linalg.norm(direction) or 1.0
    confirmed = real & (y == 1)
    if confirmed.any():
        direction = direction + x[confirmed].astype(np.float64).mean(axis=0)
        direction /= np.linalg.norm(direction) or 1.0
    sims = x[real].astype(np.float64) @ direction
    mean, spread = float(sims.mean()), float(sims.std())
    if spread <= 1e-9:
        return None
    coef = direction * (DESCRIPTION_SLOPE / spread)
    return coef.astype(np.float32), -DESCRIPTION_SLOPE * (mean / spread + DESCRIPTION_Z)


def _fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, whiten: Whitening | None = None
) -> tuple[np.ndarray, float]:
    """(weights, intercept) of a balanced logistic regression over ``x``; with ``whiten``
    it is fitted on the whitened vectors and mapped back to weights over the raw ones."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - slow import

    model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
    if whiten is None:
        model.fit(x, y, sample_weight=w)
        return model.coef_[0].astype(np.float32), float(model.intercept_[0])
    mean, scaling = whiten
    model.fit((x.astype(np.float64) - mean) @ scaling, y, sample_weight=w)
    coef = scaling @ model.coef_[0]
    return coef.astype(np.float32), float(model.intercept_[0] - mean @ coef)


def _platt(
    scores: np.ndarray, y: np.ndarray, near: np.ndarray | None = None
) -> tuple[float, float, float]:
    """(a, b, c) of p = 1 / (1 + exp(a*s + c*n + b)), fitted on out-of-fold linear scores s
    and, when given, neighbour scores n (Platt's target smoothing; c is 0 without them)."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    pos = float(y.sum())
    neg = float(len(y) - pos)
    soft = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2))
    features = scores.reshape(-1, 1) if near is None else np.column_stack([scores, near])
    # Logistic regression on soft targets = two weighted copies of every point.
    xs = np.concatenate([features, features])
    ys = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    ws = np.concatenate([soft, 1 - soft])
    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(xs, ys, sample_weight=ws)
    weights = -model.coef_[0]
    return (
        float(weights[0]),
        -float(model.intercept_[0]),
        float(weights[1]) if near is not None else 0.0,
    )


def pick_threshold(
    probs: np.ndarray, y: np.ndarray, *, min_precision: float = MIN_PRECISION
) -> tuple[float, float, float, float]:
    """(threshold, precision, recall, F1): best F1 with precision >= min_precision, or the
    best F1 at all when no threshold reaches that precision."""
    order = np.argsort(-probs)
    p_sorted = probs[order]
    y_sorted = y[order].astype(bool)
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    total = max(int(y.sum()), 1)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / total
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0)
    # Only cut between distinct scores.
    last_of_run = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    ok = last_of_run & (precision >= min_precision)
    candidates = np.flatnonzero(ok) if ok.any() else np.flatnonzero(last_of_run)
    best = candidates[np.argmax(f1[candidates])]
    below = p_sorted[best + 1] if best + 1 < len(p_sorted) else 0.0
    threshold = float((p_sorted[best] + below) / 2)
    return threshold, float(precision[best]), float(recall[best]), float(f1[best])


def _folds(y: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return [np.flatnonzero(fold == i) for i in range(k)]


def pick_named_gate(
    probs: np.ndarray, y: np.ndarray, named: np.ndarray
) -> tuple[float | None, float, float, float, float]:
    """(named threshold, other threshold, precision, recall, F1) for a technique tag.

    A paper that names the technique is tagged when its probability reaches the first
    threshold (None: naming it is enough), one that does not when it reaches the second.
    Both are chosen together, for the best F1 of the combined rule: naming a technique is
    strong evidence, but "random forest" as a baseline or "graph" in passing is not use.
    """
    y = y.astype(bool)
    total = max(int(y.sum()), 1)

    def cuts(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(-p)
        s, ts = p[order], t[order]
        tp = np.r_[0, np.cumsum(ts)]
        fp = np.r_[0, np.cumsum(~ts)]
        # Cut after k papers: halfway between the k-th and the next probability.
        hi = np.r_[1.0 + 1e-6, s]
        lo = np.r_[s, 0.0]
        # Only cuts that end a run of positives can be best for F1 (moving such a cut past
        # the negatives that follow only adds false positives); keep none and all too.
        ends = np.r_[True, ts & np.r_[~ts[1:], True]]
        ends[-1] = True
        return tp[ends], fp[ends], ((hi + lo) / 2)[ends]

    tp_n, fp_n, th_n = cuts(probs[named], y[named])
    tp_u, fp_u, th_u = cuts(probs[~named], y[~named])
    tp = tp_n[:, None] + tp_u[None, :]
    fp = fp_n[:, None] + fp_u[None, :]
    f1 = 2 * tp / np.maximum(2 * tp + fp + (total - tp), 1)
    i, j = np.unravel_index(int(np.argmax(f1)), f1.shape)
    tpv, fpv = int(tp[i, j]), int(fp[i, j])
    precision = tpv / max(tpv + fpv, 1)
    named_threshold = None if i == len(th_n) - 1 else float(th_n[i])  # all named: no gate
    return named_threshold, float(th_u[j]), precision, tpv / total, float(f1[i, j])


def train_target(
    key: str,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    real: np.ndarray,
    named: np.ndarray | None = None,
    neighbours: np.ndarray | None = None,
    whiten: Whitening | None = None,
) -> tuple[Target, np.ndarray, float, tuple[float, float, float]]:
    """Train one target: (Target, coef, intercept, (a, b, c)). ``real`` marks examples that
    are documents (not descriptions): only they count in validation figures. ``named``
    (techniques only, one flag per real example) says whose text names the technique: the
    tag then gets a threshold for each case (pick_named_gate). ``neighbours`` (sectors only)
    marks the examples a neighbour score may compare with; the calibration then weighs it.
    ``whiten`` (see whitening) fits the classifier in whitened coordinates when the target is
    a sector or technique with fewer than WHITEN_BELOW positives; a use case only says which
    one within a matched sector, and keeps raw vectors."""
    positives = int(y[real].sum())
    negatives = int(real.sum() - positives)
    if "/" in key or positives >= WHITEN_BELOW:
        whiten = None
    if y.sum() == 0 or y.sum() == len(y):
        return (
            Target(key, "fallback", positives, negatives),
            np.zeros(x.shape[1]),
            0.0,
            (0.0, 0.0, 0.0),
        )
    rule = description_rule(x, y, real) if "/" in key and positives < MIN_POSITIVES else None
    if rule is not None:
        # A new use case: a description and a few answers are no sample to fit a boundary on.
        target = Target(key, "description", positives, negatives, by_description=True)
        return target, *rule, (-1.0, 0.0, 0.0)
    coef, intercept = _fit(x, y, w, whiten)
    if positives < MIN_POSITIVES or negatives < MIN_NEGATIVES:
        # Too few examples to calibrate: the balanced logistic's own 0.5 is the threshold.
        return (
            Target(key, "description", positives, negatives),
            coef,
            intercept,
            (-1.0, 0.0, 0.0),
        )
    k = min(FOLDS, positives)
    scores = np.zeros(len(y), dtype=np.float64)
    near = None if neighbours is None else np.zeros(len(y), dtype=np.float64)
    for test in _folds(y * real, k):
        train = np.setdiff1d(np.arange(len(y)), test)
        c, b = _fit(x[train], y[train], w[train], whiten)
        scores[test] = x[test] @ c + b
        if near is not None:
            others = train[neighbours[train]]
            near[test] = neighbour_scores(x[test], x[others], y[others, None].astype(np.int8))[:, 0]
    # Sectors decide what is shown, so they keep precision >= MIN_PRECISION; a use case
    # only says which use case within a matched sector, so it takes its best F1.
    min_precision = 0.0 if "/" in key else MIN_PRECISION
    a, b, c_near = _platt(scores[real], y[real])
    probs = calibrated(a * scores[real] + b)
    named_threshold = None
    if named is not None and len(named) == len(probs):
        named_threshold, threshold, precision, recall, f1 = pick_named_gate(probs, y[real], named)
    else:
        threshold, precision, recall, f1 = pick_threshold(
            probs, y[real], min_precision=min_precision
        )
    if near is not None:
        # Keep the neighbour score only where it does better on the same out-of-fold data
        # (it helps industry most; with 35 judged papers, retail can lose by it).
        a2, b2, c2 = _platt(scores[real], y[real], near[real])
        probs2 = calibrated(a2 * scores[real] + b2 + c2 * near[real])
        picked = pick_threshold(probs2, y[real], min_precision=min_precision)
        if picked[3] > f1:
            a, b, c_near = a2, b2, c2
            threshold, precision, recall, f1 = picked
    target = Target(
        key,
        "learned",
        positives,
        negatives,
        round(threshold, 4),
        round(precision, 4),
        round(recall, 4),
        round(f1, 4),
        None if named_threshold is None else round(named_threshold, 4),
        whiten is not None,
    )
    return target, coef, intercept, (a, b, c_near)


def _label_matrix(examples: Sequence[Example], keys: Sequence[str]) -> np.ndarray:
    """(examples, keys) int8: 1 fits, 0 does not, -1 not labelled."""
    out = np.full((len(examples), len(keys)), -1, dtype=np.int8)
    for i, e in enumerate(examples):
        for j, k in enumerate(keys):
            if k in e.labels:
                out[i, j] = int(e.labels[k])
    return out


def is_sector(key: str) -> bool:
    """A sector target ("health"), not a use case ("health/diagnosis_support") or a
    technique ("technique:cnn")."""
    return "/" not in key and not key.startswith(TECHNIQUE)


def train(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    embedder: Embedder,
    *,
    mark: str = "",
    orphans: int = 0,
    targets: Iterable[str] | None = None,
) -> MatcherModel:
    """Train every sector and use-case target from ``examples``."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - comes with scikit-learn

    # One BLAS thread: these problems are small, and threads cost more than they save.
    with threadpool_limits(1):
        return _train(examples, taxonomy, embedder, mark=mark, orphans=orphans, targets=targets)


def _train(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    embedder: Embedder,
    *,
    mark: str,
    orphans: int,
    targets: Iterable[str] | None,
) -> MatcherModel:
    started = time.perf_counter()
    keys = (
        list(targets)
        if targets is not None
        else [
            k
            for s in taxonomy.sectors
            for k in (s.key, *(f"{s.key}/{uc.key}" for uc in s.use_cases))
        ]
        + [f"{TECHNIQUE}{t.key}" for t in taxonomy.techniques]
    )
    dim = embedder.dim
    matrix = (
        np.stack([e.vector for e in examples]).astype(np.float32)
        if examples
        else np.zeros((0, dim), np.float32)
    )
    weights = np.array([e.weight for e in examples], dtype=np.float64)
    real_all = np.array([e.origin not in NOT_DOCUMENTS for e in examples], dtype=bool)
    # A sector's neighbour score compares with labelled texts (judged papers, answers,
    # written examples), not with use-case descriptions.
    texts_all = np.array([e.origin not in NOT_NEIGHBOURS for e in examples], dtype=bool)
    near_keys = [k for k in keys if is_sector(k)]
    whiten = whitening(matrix[texts_all])
    trained: dict[str, Target] = {}
    coefs, intercepts, platts = [], [], []
    for key in keys:
        rows = np.array([i for i, e in enumerate(examples) if key in e.labels], dtype=np.int64)
        if len(rows) == 0:
            trained[key] = Target(key, "fallback", 0, 0)
            coefs.append(np.zeros(dim, np.float32))
            intercepts.append(0.0)
            platts.append((0.0, 0.0, 0.0))
            continue
        y = np.array([examples[i].labels[key] for i in rows], dtype=np.int64)
        named = None
        if key.startswith(TECHNIQUE):
            known = [examples[i].named for i in rows if real_all[i]]
            if known and all(n is not None for n in known):
                tech = key.removeprefix(TECHNIQUE)
                named = np.array([tech in n for n in known if n is not None], dtype=bool)
        target, coef, intercept, ab = train_target(
            key,
            matrix[rows],
            y,
            weights[rows],
            real_all[rows],
            named,
            texts_all[rows] if key in near_keys else None,
            whiten,
        )
        if "/" not in key and target.mode == "description":
            # A sector or technique needs real labels before it replaces the rules.
            target.mode = "fallback"
        trained[key] = target
        coefs.append(np.asarray(coef, np.float32))
        intercepts.append(intercept)
        platts.append(ab)

    def shown(label: str) -> bool:  # sector and use-case examples explain matches
        return not label.startswith(TECHNIQUE)

    positives = [
        i
        for i, e in enumerate(examples)
        if e.origin != "written" and any(v and shown(k) for k, v in e.labels.items())
    ]
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.origin] = counts.get(e.origin, 0) + 1
    return MatcherModel(
        embedder=embedder.name,
        dim=dim,
        taxonomy=taxonomy.fingerprint,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        feedback_mark=mark,
        seconds=round(time.perf_counter() - started, 3),
        labels=labels_fingerprint(),
        targets=trained,
        coef=np.stack(coefs) if coefs else np.zeros((0, dim), np.float32),
        intercept=np.array(intercepts, dtype=np.float32),
        platt=np.array(platts, dtype=np.float32).reshape(-1, 3),
        order=keys,
        example_vectors=matrix[positives].astype(np.float16),
        example_keys=[examples[i].key for i in positives],
        example_targets=[
            [k for k, v in examples[i].labels.items() if v and shown(k)] for i in positives
        ],
        example_origins=[
            examples[i].origin if not examples[i].by else f"{examples[i].origin}:{examples[i].by}"
            for i in positives
        ],
        orphaned=orphans,
        counts=counts,
        neighbour_targets=near_keys,
        neighbour_vectors=matrix[texts_all].astype(np.float16),
        neighbour_labels=_label_matrix([examples[i] for i in np.flatnonzero(texts_all)], near_keys),
    )

"""The growth test behind emerging themes, and the clustering it runs on: pure numpy.

A theme is a cluster of in-scope documents whose recent count is well above what its earlier
share predicts, stratum by stratum (a paper's primary arXiv category, a news item's source),
so a category or a source that enters the crawl is reported as a crawl change, never as a
theme. index/themes.py loads the documents and names the clusters that pass.

    assign, centroids = cluster(vectors)
    tests, judged = stratified_growth(assign, strata_idx, recent, earlier, len(centroids))
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import faiss
import numpy as np
from scipy.stats import poisson

from core.markup import counted

MIN_SIZE = 8  # judged recent documents a theme needs
MIN_RATIO = 1.5  # observed / expected, within strata
THEME_P = 0.01
MIN_STRATUM_BASE = 10  # earlier documents a stratum needs to be judged
DOCS_PER_CLUSTER = 40
SHRINK = 2.0  # pseudo-documents pulling a stratum's share towards the overall share
WEEK_SECONDS = 7 * 86400.0


def cluster(vectors: np.ndarray, *, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(assignment, unit centroids) of a seeded spherical k-means, about 40 documents each."""
    n, dim = vectors.shape
    k = int(min(256, max(2, round(n / DOCS_PER_CLUSTER))))
    kmeans = faiss.Kmeans(dim, k, niter=20, seed=seed, spherical=True, verbose=False)
    kmeans.train(vectors)
    _, assign = kmeans.index.search(vectors, 1)
    centroids = kmeans.centroids / np.maximum(
        np.linalg.norm(kmeans.centroids, axis=1, keepdims=True), 1e-9
    )
    return assign.ravel(), centroids


@dataclass(slots=True)
class GrowthTest:
    observed: int  # recent documents of the cluster in judged strata
    expected: float
    ratio: float
    p: float
    passed: bool


def stratified_growth(
    assign: np.ndarray,
    strata_idx: np.ndarray,
    recent: np.ndarray,
    earlier: np.ndarray,
    k: int,
) -> tuple[list[GrowthTest], np.ndarray]:
    """The growth test of every cluster; also which strata could be judged (pure numpy)."""
    n_strata = int(strata_idx.max()) + 1 if len(strata_idx) else 0
    base = np.zeros((k, n_strata))
    now = np.zeros((k, n_strata))
    np.add.at(base, (assign[earlier], strata_idx[earlier]), 1)
    np.add.at(now, (assign[recent], strata_idx[recent]), 1)
    base_s, now_s = base.sum(0), now.sum(0)
    judged = base_s >= MIN_STRATUM_BASE
    overall = (base[:, judged].sum(1) + 0.5) / (base_s[judged].sum() + 0.5 * k)
    share = (base[:, judged] + SHRINK * overall[:, None]) / (base_s[judged] + SHRINK)[None, :]
    expected = np.maximum((share * now_s[judged][None, :]).sum(1), 0.5)
    observed = now[:, judged].sum(1).astype(np.int64)
    p = np.where(observed > 0, poisson.sf(observed - 1, expected), 1.0)
    ratio = observed / expected
    passed = (observed >= MIN_SIZE) & (ratio >= MIN_RATIO) & (p < THEME_P)
    tests = [
        GrowthTest(int(o), float(e), float(r), float(q), bool(ok))
        for o, e, r, q, ok in zip(observed, expected, ratio, p, passed, strict=True)
    ]
    return tests, judged


def crawl_changes(strata: list[str], recent: np.ndarray, judged_names: set[str]) -> list[str]:
    """Sentences about strata present now that had no (or too little) earlier data."""
    counts = Counter(strata[i] for i in np.flatnonzero(recent))
    out = []
    for name, n in counts.most_common():
        if name not in judged_names and n >= MIN_SIZE:
            label = name.split(":", 1)[1]
            out.append(
                f"{label}: {counted(n, 'recent document')} but too few before to compare with; "
                "treated as a change in what is collected, not as a theme"
            )
    return out


def distinct_clusters(candidates: list[int], centroids: np.ndarray, limit: int) -> list[int]:
    """The best clusters, skipping one whose centre nearly repeats a chosen one."""
    out: list[int] = []
    for c in candidates:
        if all(float(centroids[c] @ centroids[o]) < 0.85 for o in out):
            out.append(c)
        if len(out) >= limit:
            break
    return out


def biggest_clusters(assign, centroids, recent, limit) -> list[int]:
    """The largest recent clusters (at least ``MIN_SIZE``), for a period with nothing before."""
    sizes = Counter(int(a) for a in assign[recent])
    ranked = [c for c, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])) if n >= MIN_SIZE]
    return distinct_clusters(ranked, centroids, limit)


def weeks_running(assign, strata_idx, times, chosen, recent_t0, weeks, baseline_weeks) -> dict:
    """For each chosen cluster, the consecutive weeks, ending now, whose own window passes the
    growth test (at least 1: this week's)."""
    running = dict.fromkeys(chosen, 0)
    alive = set(chosen)
    k = int(assign.max()) + 1
    for back in range(weeks):
        r0 = recent_t0 - back * WEEK_SECONDS
        recent = (times >= r0) & (times < r0 + weeks * WEEK_SECONDS)
        earlier = (times < r0) & (times >= r0 - baseline_weeks * WEEK_SECONDS)
        if not alive or not earlier.any():
            break
        tests, _ = stratified_growth(assign, strata_idx, recent, earlier, k)
        for c in list(alive):
            if tests[c].passed:
                running[c] += 1
            else:
                alive.discard(c)
    return {c: max(n, 1) for c, n in running.items()}

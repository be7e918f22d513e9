"""Emerging themes: machine-learning topics that grow, told apart from changes in the crawl.

Why it is shaped this way (issue 17). Clustering everything recent and comparing with the
weeks before reported whatever the crawl had started to collect (a new arXiv category made an
"x446" theme) and labelled it with frequent words. So:

1. **Scope.** Only documents in the watch's scope are clustered: papers with one of
   :data:`ML_CATEGORIES` among their arXiv categories, and any document (news, own loads) the
   technique tagger tagged. Another subject's weight in the crawl cannot make a theme.
2. **Growth within stable strata.** A stratum is a paper's primary arXiv category, or a news
   item's source. A theme's expected recent count is, stratum by stratum, its share of that
   stratum's earlier documents times that stratum's recent documents (shrunk towards its
   overall share). A stratum with fewer than :data:`MIN_STRATUM_BASE` earlier documents cannot
   be judged: its documents are reported as a crawl change, never as a theme. A theme needs at
   least :data:`MIN_SIZE` judged recent documents, :data:`MIN_RATIO` times the expected count,
   and a Poisson tail probability below :data:`THEME_P` (the test bursts use).
3. **Names.** Each theme is labelled from its most central documents' own noun phrases,
   scored by how distinctive they are (class-based TF-IDF against the other clusters) and how
   close their embedding is to the theme's centre; a technique phrase and a task phrase are
   joined ("reinforcement learning for LLM reasoning") when both stand out.
4. **Stability and carry-over.** Documents are ordered by date and id before a seeded
   k-means, so the same data gives the same themes. ``weeks_running`` is derived from the
   data: the number of consecutive weeks, ending now, whose own 4-week window passes the same
   test for the theme's documents. The theme's id is kept in the table ``theme_ids``, owned by
   this module: a theme whose centre is within cosine :data:`SAME_THEME` of a theme seen in
   the last :data:`ID_MEMORY_WEEKS` weeks takes its id; otherwise it gets a new one, a hash of
   its most central documents. A store that cannot be written keeps the computed ids.

    found = find_themes(store, settings, now=datetime(2025, 6, 30, tzinfo=UTC))
    print(found.note or [t.label for t in found])
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
import sqlalchemy as sa
from scipy.stats import poisson

from core.models import Document, as_utc, naive_utc
from core.schema import theme_ids
from core.settings import Settings
from core.store import Store, documents
from index.keyword import STOPWORDS
from index.matching import doc_techniques, matches_for, week_number
from index.taxonomy import load_taxonomy
from index.vectors import vectors_for

log = logging.getLogger(__name__)

# arXiv categories that are machine learning and AI for this watch. cs.RO and cs.IR are in:
# robot learning and recommender/retrieval models are what project leads ask about. eess.IV,
# cs.GR, cs.HC and the like are in only when cross-listed to one of these (or tagged).
ML_CATEGORIES = frozenset(
    {"cs.LG", "cs.AI", "cs.CL", "cs.CV", "cs.NE", "cs.IR", "cs.RO", "cs.MA", "stat.ML"}
)
RECENT_WEEKS = 4
BASELINE_WEEKS = 12
MIN_RECENT_DOCS = 40  # fewer in-scope recent documents: no themes, and a note says why
MIN_SIZE = 8  # judged recent documents a theme needs
MIN_RATIO = 1.5  # observed / expected, within strata
THEME_P = 0.01
MIN_STRATUM_BASE = 10  # earlier documents a stratum needs to be judged
DOCS_PER_CLUSTER = 40
CENTRAL_DOCS = 12
SHRINK = 2.0
_WEEK = 7 * 86400.0
SAME_THEME = 0.8
ID_MEMORY_WEEKS = 8


@dataclass(slots=True)
class SectorTouch:
    sector: str
    use_case: str
    name: str
    documents: int


@dataclass(slots=True)
class Theme:
    label: str
    terms: list[str]
    size: int  # recent documents in the theme
    earlier: int  # documents of the theme in the baseline weeks
    growth: float  # observed / expected recent documents, within strata (0.0 when new)
    documents: list[Document]  # the 3 most central recent documents
    theme_id: str = ""
    new: bool = False  # no earlier document to compare with
    summary: str = ""  # one sentence with the counts, for people
    expected: float = 0.0
    p_value: float = 1.0
    recent_share: float = 0.0  # of in-scope recent documents
    earlier_share: float = 0.0  # of in-scope earlier documents
    weeks_running: int = 1
    sectors: list[SectorTouch] = field(default_factory=list)


class ThemeList(list):
    """The themes found, plus ``note``: why there are none, or what the crawl changed."""

    def __init__(self, items=(), *, note: str = "", crawl_changes: Sequence[str] = ()) -> None:
        super().__init__(items)
        self.note = note
        self.crawl_changes = list(crawl_changes)


@dataclass(slots=True)
class Window:
    """Everything loaded for one call: in-scope documents ordered by (date, canonical id)."""

    ids: np.ndarray
    vectors: np.ndarray
    times: np.ndarray  # publication time per document, seconds since 1970-01-01 UTC
    strata: list[str]
    canonical: list[str]
    titles: list[str]
    title_df: Counter | None = None  # phrase -> titles holding it, filled on first use


def in_scope(categories: Sequence[str], tagged: bool) -> bool:
    return tagged or any(c in ML_CATEGORIES for c in categories)


def stratum_of(kind: str, source: str, categories: Sequence[str], extra: dict | None) -> str:
    """The stratum growth is compared within: primary arXiv category, or the news source."""
    if kind == "paper" and categories:
        primary = (extra or {}).get("primary_category") or categories[0]
        return f"arxiv:{primary}"
    return f"{kind}:{source}"


def load_window(
    store: Store, settings: Settings, start: datetime, end: datetime, dim: int
) -> tuple[Window, int]:
    """In-scope documents published in [start, end) with their vectors; also the count of
    documents left out as out of scope."""
    lo, hi = naive_utc(start), naive_utc(end)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                documents.c.id,
                documents.c.canonical_id,
                documents.c.published,
                documents.c.kind,
                documents.c.source,
                documents.c.categories,
                documents.c.extra,
                documents.c.title,
            ).where(documents.c.published >= lo, documents.c.published < hi)
        ).all()
        first = week_number(start.astimezone(UTC))
        tagged = {
            r[0]
            for r in conn.execute(
                sa.select(doc_techniques.c.doc_id)
                .where(
                    doc_techniques.c.week >= first - 7, doc_techniques.c.week <= week_number(end)
                )
                .distinct()
            )
        }
    keep = [r for r in rows if in_scope(r.categories or [], r.id in tagged)]
    ids, vecs = vectors_for(store, settings.model, dim, ids=np.array([r.id for r in keep]))
    by_id = {r.id: r for r in keep}
    order = sorted(
        range(len(ids)),
        key=lambda i: (by_id[int(ids[i])].published, by_id[int(ids[i])].canonical_id),
    )
    chosen = [by_id[int(ids[i])] for i in order]
    window = Window(
        ids=ids[order] if len(ids) else ids,
        vectors=np.ascontiguousarray(vecs[order]) if len(ids) else vecs,
        times=np.array([as_utc(r.published).timestamp() for r in chosen]),
        strata=[stratum_of(r.kind, r.source, r.categories or [], r.extra) for r in chosen],
        canonical=[r.canonical_id for r in chosen],
        titles=[r.title for r in chosen],
    )
    return window, len(rows) - len(keep)


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
                f"{label}: {n} recent document(s) but too few before to compare with; "
                "treated as a change in what is collected, not as a theme"
            )
    return out


def find_themes(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    weeks: int = RECENT_WEEKS,
    baseline_weeks: int = BASELINE_WEEKS,
    limit: int = 5,
) -> ThemeList:
    """Machine-learning topics whose share grew in the ``weeks`` weeks before ``now``.

    Returns a list of :class:`Theme`, most significant first; ``.note`` says why it is empty
    (too few documents, no growth) and ``.crawl_changes`` lists sources or categories that
    entered the crawl. ``index.trends.emerging_themes`` is the usual entry point.
    """
    from index.embedder import get_embedder  # noqa: PLC0415

    embedder = get_embedder(settings.model, max_chars=settings.embed_max_chars)
    use_phrase_file(settings, embedder)
    try:
        return _find_themes(
            store,
            settings,
            embedder,
            now=now,
            weeks=weeks,
            baseline_weeks=baseline_weeks,
            limit=limit,
        )
    finally:
        save_phrase_file()


def _find_themes(
    store: Store,
    settings: Settings,
    embedder,
    *,
    now: datetime,
    weeks: int,
    baseline_weeks: int,
    limit: int,
) -> ThemeList:
    recent_from = now - timedelta(weeks=weeks)
    extra_weeks = weeks - 1  # earlier windows, for weeks_running
    start = recent_from - timedelta(weeks=baseline_weeks + extra_weeks)
    window, out_of_scope = load_window(
        store, settings, start, now + timedelta(seconds=1), embedder.dim
    )
    times, recent_t0 = window.times, recent_from.timestamp()
    recent = times >= recent_t0
    earlier = (times < recent_t0) & (times >= recent_t0 - baseline_weeks * _WEEK)
    n_recent, n_earlier = int(recent.sum()), int(earlier.sum())
    if n_recent < MIN_RECENT_DOCS:
        return ThemeList(
            note=f"Too few documents to look for themes: {n_recent} machine-learning "
            f"document(s) in the last {weeks} weeks, at least {MIN_RECENT_DOCS} are needed"
            + (
                f" ({out_of_scope} other document(s) are outside the watch's scope)."
                if out_of_scope
                else "."
            )
        )
    assign, centroids = cluster(window.vectors)
    k = len(centroids)
    names = sorted(set(window.strata))
    strata_idx = np.array([names.index(s) for s in window.strata], dtype=np.int64)
    if n_earlier == 0:
        chosen = _new_period(window, assign, centroids, recent, limit)
        themes = [
            _card(store, settings, embedder, window, assign, centroids, c, recent, earlier, None)
            for c in chosen
        ]
        assign_ids(store, settings.model, themes, [centroids[c] for c in chosen], now)
        return ThemeList(
            themes,
            note=f"No earlier document in the {baseline_weeks} weeks before: every theme is "
            "new this period, and no growth can be measured.",
        )
    tests, judged = stratified_growth(assign, strata_idx, recent, earlier, k)
    changes = crawl_changes(window.strata, recent, {names[i] for i in np.flatnonzero(judged)})
    candidates = sorted(
        (c for c in range(k) if tests[c].passed), key=lambda c: (tests[c].p, -tests[c].observed)
    )
    chosen = _distinct(candidates, centroids, limit)
    running = _weeks_running(assign, strata_idx, times, chosen, recent_t0, weeks, baseline_weeks)
    themes = []
    for c in chosen:
        theme = _card(
            store, settings, embedder, window, assign, centroids, c, recent, earlier, tests[c]
        )
        theme.weeks_running = running[c]
        themes.append(theme)
    assign_ids(store, settings.model, themes, [centroids[c] for c in chosen], now)
    note = (
        ""
        if themes
        else (
            f"No theme grew enough in the last {weeks} weeks: none of {k} groups of "
            f"{n_recent + n_earlier} machine-learning documents has at least {MIN_SIZE} recent "
            f"documents, {MIN_RATIO}x its usual share and p < {THEME_P}."
        )
    )
    return ThemeList(themes, note=note, crawl_changes=changes)


def assign_ids(
    store: Store, model: str, themes: list[Theme], centres: list[np.ndarray], now: datetime
) -> None:
    """Give each theme the id of the same theme seen in recent weeks, and remember them."""
    week = week_number(now.astimezone(UTC))
    try:
        with store.engine.connect() as conn:
            known = conn.execute(
                sa.select(theme_ids.c.theme_id, theme_ids.c.centroid, theme_ids.c.first_week)
                .where(
                    theme_ids.c.model == model,
                    theme_ids.c.last_week >= week - 7 * ID_MEMORY_WEEKS,
                    theme_ids.c.first_week <= week,
                )
                .order_by(theme_ids.c.theme_id)
            ).all()
        dim = len(centres[0]) if centres else 0
        known = [r for r in known if len(r.centroid) == 4 * dim]
        taken: set[str] = set()
        rows = []
        for theme, centre in zip(themes, centres, strict=True):
            best, best_sim, first = None, SAME_THEME, week
            for r in known:
                sim = float(np.frombuffer(r.centroid, dtype=np.float32) @ centre)
                if r.theme_id not in taken and sim >= best_sim:
                    best, best_sim, first = r.theme_id, sim, r.first_week
            if best:
                theme.theme_id = best
            taken.add(theme.theme_id)
            rows.append((theme, centre, first))
        with store.write() as conn:
            for theme, centre, first in rows:
                values = {
                    "centroid": centre.astype(np.float32).tobytes(),
                    "label": theme.label,
                    "last_week": week,
                }
                done = conn.execute(
                    theme_ids.update()
                    .where(theme_ids.c.theme_id == theme.theme_id, theme_ids.c.last_week <= week)
                    .values(**values)
                ).rowcount
                exists = conn.execute(
                    sa.select(theme_ids.c.theme_id).where(theme_ids.c.theme_id == theme.theme_id)
                ).first()
                if not done and not exists:
                    conn.execute(
                        theme_ids.insert().values(
                            theme_id=theme.theme_id, model=model, first_week=first, **values
                        )
                    )
    except sa.exc.SQLAlchemyError:  # a read-only store still answers, with computed ids
        log.warning("theme ids could not be stored; keeping computed ids", exc_info=True)


def _distinct(candidates: list[int], centroids: np.ndarray, limit: int) -> list[int]:
    """The best clusters, skipping one whose centre nearly repeats a chosen one."""
    out: list[int] = []
    for c in candidates:
        if all(float(centroids[c] @ centroids[o]) < 0.85 for o in out):
            out.append(c)
        if len(out) >= limit:
            break
    return out


def _new_period(window, assign, centroids, recent, limit) -> list[int]:
    sizes = Counter(int(a) for a in assign[recent])
    ranked = [c for c, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])) if n >= MIN_SIZE]
    return _distinct(ranked, centroids, limit)


def _weeks_running(assign, strata_idx, times, chosen, recent_t0, weeks, baseline_weeks) -> dict:
    """For each chosen cluster, the consecutive weeks, ending now, whose own window passes the
    growth test (at least 1: this week's)."""
    running = dict.fromkeys(chosen, 0)
    alive = set(chosen)
    k = int(assign.max()) + 1
    for back in range(weeks):
        r0 = recent_t0 - back * _WEEK
        recent = (times >= r0) & (times < r0 + weeks * _WEEK)
        earlier = (times < r0) & (times >= r0 - baseline_weeks * _WEEK)
        if not alive or not earlier.any():
            break
        tests, _ = stratified_growth(assign, strata_idx, recent, earlier, k)
        for c in list(alive):
            if tests[c].passed:
                running[c] += 1
            else:
                alive.discard(c)
    return {c: max(n, 1) for c, n in running.items()}


def _card(store, settings, embedder, window, assign, centroids, c, recent, earlier, test) -> Theme:
    members = np.flatnonzero((assign == c) & recent)
    sims = window.vectors[members] @ centroids[c]
    central = members[np.argsort(-sims, kind="stable")]
    docs = store.get_many([int(window.ids[i]) for i in central[:CENTRAL_DOCS]])
    central_docs = [docs[int(window.ids[i])] for i in central[:CENTRAL_DOCS]]
    phrases = label_phrases(central_docs, centroids[c], embedder, background(window))
    label = compose_label(phrases)
    anchor = "|".join(sorted(window.canonical[i] for i in central[:5]))
    size = len(members)
    n_earlier = int(((assign == c) & earlier).sum())
    n_recent_all, n_earlier_all = int(recent.sum()), int(earlier.sum())
    theme = Theme(
        label=label,
        terms=[p for p, _ in phrases[:6]],
        size=size,
        earlier=n_earlier,
        growth=0.0 if test is None else round(test.ratio, 2),
        documents=central_docs[:3],
        theme_id="th-" + hashlib.sha1(anchor.encode()).hexdigest()[:10],
        new=test is None or n_earlier == 0,
        expected=0.0 if test is None else round(test.expected, 1),
        p_value=1.0 if test is None else test.p,
        recent_share=round(size / max(n_recent_all, 1), 4),
        earlier_share=round(n_earlier / max(n_earlier_all, 1), 4),
        sectors=sector_touches(store, settings, [int(window.ids[i]) for i in members]),
    )
    theme.summary = summarise(theme)
    return theme


def summarise(theme: Theme) -> str:
    if theme.new:
        return f"new this period: {theme.size} recent document(s), none before"
    return (
        f"{theme.size} recent document(s) ({100 * theme.recent_share:.1f}% of recent machine-"
        f"learning documents) against {theme.earlier} before ({100 * theme.earlier_share:.1f}%); "
        f"{theme.growth:.1f}x the count expected within the same categories and sources"
    )


def sector_touches(store: Store, settings: Settings, doc_ids: list[int]) -> list[SectorTouch]:
    """Use cases matched on at least two of the theme's documents and 10% of them."""
    counts: Counter = Counter()
    for matches in matches_for(store, doc_ids).values():
        for use_case in {(m.sector, m.use_case) for m in matches}:
            counts[use_case] += 1
    if not counts:
        return []
    names = {uc.key: uc.name for uc in load_taxonomy(settings).use_cases}
    floor = max(2, math.ceil(0.1 * len(doc_ids)))
    return [
        SectorTouch(sector, use_case, names.get(use_case, use_case), n)
        for (sector, use_case), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        if n >= floor
    ]


# -- labels --------------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*|[.,;:!?()\[\]]")
# Words that end a noun phrase or never head one in an abstract (verbs, hedges, fillers).
_BREAK = frozenset(
    "propose proposes proposed present presents introduce introduces show shows shown "
    "demonstrate demonstrates achieve achieves achieved improve improves improved use uses "
    "used using based via enable enables leverage leverages leveraging study studies "
    "investigate investigates explore explores address addresses remain remains require "
    "requires provide provides perform performs outperform outperforms existing novel new "
    "first two three several various different recent current significant significantly "
    "extensive experiments results paper work approach approaches method methods framework "
    "frameworks task tasks problem problems performance state art effective "
    "efficient efficiently simple towards toward our their its we this these those such can "
    "may also however while both each other well high large-scale key without within across "
    "between through into over under more most less than further evaluating enhancing "
    "improving leveraging rethinking revisiting unlocking exploring boosting bridging "
    "hinder due critical additional crucial challenging beyond".split()
)
# Words that may sit inside a phrase but never name a theme on their own.
_VAGUE = frozenset(
    "language ai image images training efficiency data vision learning computational "
    "capabilities benchmark evaluation large deep neural network multimodal human behavior "
    "dataset scene action detection recognition generation understanding analysis system "
    "accuracy quality robustness information knowledge feature representation application "
    "domain challenge limitation setting scenario real-world time cost baseline "
    "large language large language model language model model".split()
)
_TECH_HEADS = frozenset(
    "learning network networks transformer transformers diffusion llm llms model agent agents "
    "policy optimization attention retrieval fine-tuning distillation quantization "
    "reinforcement rl gnn gnns cnn cnns rnn lstm vlm vlms vla mllm mllms rag tuning "
    "pruning adaptation embedding embeddings autoencoder generative contrastive "
    "self-supervised federated sparse mixture-of-experts moe gaussian splatting".split()
)


def candidate_phrases(text: str) -> list[tuple[str, str]]:
    """(normalised key, surface) of the noun-phrase-like runs of a text, 1 to 4 words."""
    out: list[tuple[str, str]] = []
    run: list[str] = []

    def flush() -> None:
        for size in range(1, 5):
            for i in range(len(run) - size + 1):
                words = run[i : i + size]
                if size == 1 and _norm(words[0]) in _TECH_HEADS and words[0].islower():
                    continue  # "learning" alone names nothing
                key = " ".join(_norm(w) for w in words)
                out.append((key, " ".join(words)))
        run.clear()

    for token in _TOKEN.findall(text):
        low = token.lower()
        if not token[0].isalnum() or low in STOPWORDS or low in _BREAK or len(low) < 2:
            flush()
        else:
            run.append(token)
    flush()
    return out


def _norm(word: str) -> str:
    low = word.lower()
    return low[:-1] if len(low) > 3 and low.endswith("s") and not low.endswith("ss") else low


def label_phrases(
    docs: list[Document], centre: np.ndarray, embedder, titles_df: Counter | None = None
) -> list[tuple[str, float]]:
    """The theme's key phrases, best first.

    A candidate is a noun-phrase-like run of words from a central document's title or first
    two sentences, found in at least two of them. Its score adds how close its embedding is to
    the theme's centre, how many central documents hold it, how rare it is among all titles of
    the window (``titles_df``, class-based TF-IDF in spirit), and a little for length: a
    precise phrase ("vision-language-action models") beats a word shared by a whole field.
    """
    titles_df = titles_df or Counter()
    total = max(titles_df.get("__total__", 0), 1)
    df: Counter = Counter()
    surface: dict[str, Counter] = defaultdict(Counter)
    for doc in docs:
        first = re.split(r"(?<=[.!?])\s+", doc.text, maxsplit=2)[:2]
        seen = set()
        for key, shown in candidate_phrases(doc.title) + candidate_phrases(" ".join(first)):
            if key in _VAGUE:
                continue
            surface[key][_tidy(shown)] += 1
            seen.add(key)
        df.update(seen)
    floor = 2 if len(docs) >= 4 else 1
    pool = [k for k, n in df.items() if n >= floor] or list(df)
    pool.sort(key=lambda k: (-(df[k] * (1 + 0.5 * (k.count(" ")))), k))
    pool = pool[:20]
    if not pool:
        return []
    shown = [surface[k].most_common(1)[0][0] for k in pool]
    closeness = phrase_vectors(embedder, shown) @ centre.astype(np.float32)
    scored = []
    for key, text, sim in zip(pool, shown, closeness, strict=True):
        freq = df[key] / len(docs)
        rarity = math.log((total + 1) / (titles_df.get(key, 0) + 1)) / math.log(total + 1)
        length = min(key.count(" "), 3)
        scored.append((text, float(0.45 * sim + 0.35 * freq + 0.2 * rarity + 0.05 * length)))
    scored.sort(key=lambda kv: (-kv[1], kv[0]))
    chosen: list[tuple[str, float]] = []
    for text, score in scored:
        low = text.lower()
        if any(low in c.lower() or c.lower() in low for c, _ in chosen):
            continue
        chosen.append((text, score))
    return chosen


def _tidy(phrase: str) -> str:
    """Title-case words lowered ("Policy Optimization" -> "policy optimization"); acronyms
    and mixed-case names (LLMs, GPT-4o, CLIP) kept as written."""
    return " ".join(
        w.lower() if w[:1].isupper() and (w[1:].islower() or len(w) == 1) else w
        for w in phrase.split()
    )


def background(window: Window) -> Counter:
    """In how many of the window's titles each phrase occurs (computed once per window)."""
    if window.title_df is None:
        counts: Counter = Counter()
        for title in window.titles:
            counts.update({key for key, _ in candidate_phrases(title)})
        counts["__total__"] = len(window.titles)
        window.title_df = counts
    return window.title_df


_phrase_cache: dict[tuple[str, str], np.ndarray] = {}
# Phrase vectors are also kept on disk (data_dir/cache), so a new process, such as each
# `veille trends`, does not embed again the phrases an earlier one did.
_phrase_file: Path | None = None
_phrase_files_read: set[Path] = set()
_phrase_unsaved: set[str] = set()  # embedder names with phrases not yet on disk
PHRASE_FILE_MAX = 50_000  # phrases kept on disk (about 75 MB of float32 vectors at most)


def use_phrase_file(settings: Settings, embedder) -> None:
    """Keep phrase vectors of ``embedder`` in a file of ``settings.data_dir`` from now on."""
    global _phrase_file
    digest = hashlib.sha1(str(embedder.name).encode()).hexdigest()[:12]
    path = Path(settings.data_dir) / "cache" / f"phrases-{digest}.npz"
    _phrase_file = path
    if path in _phrase_files_read:
        return
    _phrase_files_read.add(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            phrases, vectors = data["phrases"].tolist(), data["vectors"]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError) as exc:  # a damaged file is rebuilt as phrases come
        log.warning("ignoring the phrase vector cache %s: %s", path, exc)
        return
    if len(phrases) == len(vectors) and vectors.ndim == 2 and vectors.shape[1] == embedder.dim:
        for phrase, vector in zip(phrases, vectors, strict=True):
            _phrase_cache.setdefault((embedder.name, phrase), vector)


def save_phrase_file() -> None:
    """Write the phrase vectors embedded since the last save (once per theme search)."""
    path = _phrase_file
    if path is None or not _phrase_unsaved:
        return
    name = _phrase_unsaved.pop()
    _phrase_unsaved.clear()
    entries = [(p, v) for (model, p), v in _phrase_cache.items() if model == name]
    entries = entries[-PHRASE_FILE_MAX:]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}-{os.getpid()}.npz")
        np.savez(
            partial,
            phrases=np.array([p for p, _ in entries], dtype=str),
            vectors=np.stack([v for _, v in entries]).astype(np.float32),
        )
        os.replace(partial, path)  # readers see the old file or the new one, never half
    except OSError as exc:  # a cache: themes are still right without it
        log.warning("could not save the phrase vector cache %s: %s", path, exc)


def phrase_vectors(embedder, phrases: list[str]) -> np.ndarray:
    """Phrase embeddings, remembered for the process and, after ``use_phrase_file``, on disk
    (the same phrases recur week to week)."""
    missing = [p for p in dict.fromkeys(phrases) if (embedder.name, p) not in _phrase_cache]
    if missing:
        if len(_phrase_cache) > 100_000:
            _phrase_cache.clear()
        for phrase, vector in zip(missing, embedder.encode(missing), strict=True):
            _phrase_cache[(embedder.name, phrase)] = vector
        _phrase_unsaved.add(embedder.name)
    return np.stack([_phrase_cache[(embedder.name, p)] for p in phrases])


def compose_label(phrases: list[tuple[str, float]]) -> str:
    """Join "<technique> for <task>" when the best phrases hold both, else the best phrase."""
    if not phrases:
        return "unnamed theme"
    top = [p for p, _ in phrases[:8]]

    def words(p: str) -> set[str]:
        return {_norm(w) for w in p.lower().split()}

    tech = next((p for p in top if words(p) & _TECH_HEADS), None)
    task = next((p for p in top if not words(p) & _TECH_HEADS), None)
    if tech and task and top[0] in (tech, task) and not words(tech) & words(task):
        return f"{tech} for {task}"
    return top[0]

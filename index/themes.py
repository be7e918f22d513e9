"""Emerging themes: machine-learning topics that grow, told apart from changes in the crawl.

Why it is shaped this way (issue 17). Clustering everything recent and comparing with the
weeks before reported whatever the crawl had started to collect (a new arXiv category made an
"x446" theme) and labelled it with frequent words. So:

1. **Scope.** Only documents in the watch's scope are clustered: papers with one of
   :data:`ML_CATEGORIES` among their arXiv categories, and any document (news, own loads) the
   technique tagger tagged (index/theme_window.py). Another subject's weight in the crawl
   cannot make a theme.
2. **Growth within stable strata.** A stratum is a paper's primary arXiv category, or a news
   item's source. A theme's expected recent count is, stratum by stratum, its share of that
   stratum's earlier documents times that stratum's recent documents (shrunk towards its
   overall share). A stratum with fewer than :data:`MIN_STRATUM_BASE` earlier documents cannot
   be judged: its documents are reported as a crawl change, never as a theme. A theme needs at
   least :data:`MIN_SIZE` judged recent documents, :data:`MIN_RATIO` times the expected count,
   and a Poisson tail probability below :data:`THEME_P` (the test bursts use). The test and
   the clustering are pure numpy, in index/theme_growth.py.
3. **Names.** Each theme is labelled from its most central documents' own noun phrases,
   scored by how distinctive they are (class-based TF-IDF against the other clusters) and how
   close their embedding is to the theme's centre; a technique phrase and a task phrase are
   joined ("reinforcement learning for LLM reasoning") when both stand out, the same papers
   hold both and the technique is not one paper's method (index/theme_labels.py). The three
   documents shown with the theme are its most central ones that hold the name, then the
   most central others, so a reader sees the papers the name speaks of. The name is shown
   with three keywords (``Theme.heading``), the words and short phrases of its recent titles
   that are rarest elsewhere in the window (class-based TF-IDF over titles): judges found the
   name and its keywords together named a group more often than the name alone.
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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from core.markup import counted
from core.models import Document
from core.schema import theme_ids
from core.settings import Settings
from core.store import Store
from index.matching import matches_for, week_number
from index.taxonomy import load_taxonomy
from index.theme_growth import (
    MIN_RATIO,
    MIN_SIZE,
    THEME_P,
    WEEK_SECONDS,
    biggest_clusters,
    cluster,
    crawl_changes,
    distinct_clusters,
    stratified_growth,
    weeks_running,
)
from index.theme_labels import (
    label_parts,
    label_phrases,
    label_text,
    representatives,
    save_phrase_file,
    theme_keywords,
    use_phrase_file,
    with_keywords,
)
from index.theme_window import background, load_window

log = logging.getLogger(__name__)

RECENT_WEEKS = 4
BASELINE_WEEKS = 12
MIN_RECENT_DOCS = 40  # fewer in-scope recent documents: no themes, and a note says why
CENTRAL_DOCS = 12
MORE_TITLES = 300  # titles searched for papers that hold a theme's name, beyond the central ones
SAME_THEME = 0.8
ID_MEMORY_WEEKS = 8


@dataclass(slots=True)
class SectorTouch:
    sector: str
    use_case: str
    name: str  # the use case's name
    documents: int
    sector_name: str = ""  # the sector's name ("Financial services"); the key when empty


@dataclass(slots=True)
class Theme:
    label: str
    terms: list[str]
    size: int  # recent documents in the theme
    earlier: int  # documents of the theme in the baseline weeks
    growth: float  # observed / expected recent documents, within strata (0.0 when new)
    documents: list[Document]  # 3 central recent documents, those holding the label first
    theme_id: str = ""
    new: bool = False  # no earlier document to compare with
    summary: str = ""  # one sentence with the counts, for people
    expected: float = 0.0
    p_value: float = 1.0
    recent_share: float = 0.0  # of in-scope recent documents
    earlier_share: float = 0.0  # of in-scope earlier documents
    weeks_running: int = 1
    sectors: list[SectorTouch] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)  # what sets its titles apart
    member_ids: list[int] = field(default_factory=list, repr=False)  # its recent documents

    @property
    def heading(self) -> str:
        """The name followed by its keywords, as people read it: "vision language action
        models (manipulation, robot, grasping)"."""
        return with_keywords(self.label, self.keywords)


class ThemeList(list):
    """The themes found, plus ``note``: why there are none, or what the crawl changed."""

    def __init__(self, items=(), *, note: str = "", crawl_changes: Sequence[str] = ()) -> None:
        super().__init__(items)
        self.note = note
        self.crawl_changes = list(crawl_changes)


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
    earlier = (times < recent_t0) & (times >= recent_t0 - baseline_weeks * WEEK_SECONDS)
    n_recent, n_earlier = int(recent.sum()), int(earlier.sum())
    if n_recent < MIN_RECENT_DOCS:
        return ThemeList(
            note="Too few documents to look for themes: "
            f"{counted(n_recent, 'machine-learning document')} in the last {weeks} weeks, "
            f"at least {MIN_RECENT_DOCS} are needed"
            + (
                f" ({counted(out_of_scope, 'other document')} "
                f"{'is' if out_of_scope == 1 else 'are'} outside the watch's scope)."
                if out_of_scope
                else "."
            )
        )
    assign, centroids = cluster(window.vectors)
    k = len(centroids)
    names = sorted(set(window.strata))
    strata_idx = np.array([names.index(s) for s in window.strata], dtype=np.int64)
    if n_earlier == 0:
        chosen = biggest_clusters(assign, centroids, recent, limit)
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
    chosen = distinct_clusters(candidates, centroids, limit)
    running = weeks_running(assign, strata_idx, times, chosen, recent_t0, weeks, baseline_weeks)
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


def _card(store, settings, embedder, window, assign, centroids, c, recent, earlier, test) -> Theme:
    members = np.flatnonzero((assign == c) & recent)
    sims = window.vectors[members] @ centroids[c]
    central = members[np.argsort(-sims, kind="stable")]
    docs = store.get_many([int(window.ids[i]) for i in central[:CENTRAL_DOCS]])
    central_docs = [docs[int(window.ids[i])] for i in central[:CENTRAL_DOCS]]
    phrases = label_phrases(central_docs, centroids[c], embedder, background(window))
    parts = label_parts(phrases, len(central_docs))
    label = label_text(parts)
    shown = shown_documents(store, window, central, central_docs, parts)
    anchor = "|".join(sorted(window.canonical[i] for i in central[:5]))
    size = len(members)
    n_earlier = int(((assign == c) & earlier).sum())
    n_recent_all, n_earlier_all = int(recent.sum()), int(earlier.sum())
    theme = Theme(
        label=label,
        terms=[text for text, *_ in phrases[:6]],  # also (text, score) pairs of older labellers
        size=size,
        earlier=n_earlier,
        growth=0.0 if test is None else round(test.ratio, 2),
        documents=shown,
        theme_id="th-" + hashlib.sha1(anchor.encode()).hexdigest()[:10],
        new=test is None or n_earlier == 0,
        expected=0.0 if test is None else round(test.expected, 1),
        p_value=1.0 if test is None else test.p,
        recent_share=round(size / max(n_recent_all, 1), 4),
        earlier_share=round(n_earlier / max(n_earlier_all, 1), 4),
        sectors=sector_touches(store, settings, [int(window.ids[i]) for i in members]),
        keywords=theme_keywords(
            [window.titles[i] for i in members], background(window), avoid=label
        ),
        member_ids=[int(window.ids[i]) for i in members],
    )
    theme.summary = summarise(theme)
    return theme


def shown_documents(store, window, central: np.ndarray, central_docs: list, parts: list) -> list:
    """The documents shown with a theme (theme_labels.representatives): ``central`` holds the
    theme's window indices, most central first, and ``central_docs`` the first of them as
    Documents. Central ones that hold its name come first, then others of the theme whose
    title does (the first MORE_TITLES after them), then the most central others."""
    n = len(central_docs)
    more = central[n : n + MORE_TITLES]
    picked = representatives(parts, n, more_titles=[window.titles[i] for i in more])
    outer = {i: int(window.ids[more[i - n]]) for i in picked if i >= n}  # pick -> document id
    extra = store.get_many(list(outer.values())) if outer else {}
    return [central_docs[i] if i < n else extra[outer[i]] for i in picked]


def summarise(theme: Theme) -> str:
    if theme.new:
        return f"new this period: {counted(theme.size, 'recent document')}, none before"
    return (
        f"{counted(theme.size, 'recent document')} "
        f"({100 * theme.recent_share:.1f}% of recent machine-learning documents) against "
        f"{theme.earlier} before ({100 * theme.earlier_share:.1f}%); "
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
    taxonomy = load_taxonomy(settings)
    names = {uc.key: uc.name for uc in taxonomy.use_cases}
    sectors = {s.key: s.name for s in taxonomy.sectors}
    floor = max(2, math.ceil(0.1 * len(doc_ids)))
    return [
        SectorTouch(sector, use_case, names.get(use_case, use_case), n, sectors.get(sector, ""))
        for (sector, use_case), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        if n >= floor
    ]


def running_text(theme: Theme) -> str:
    """The words "growing for 3 weeks" when the theme (by its id) grew in earlier weeks too,
    else an empty string."""
    return f"growing for {theme.weeks_running} weeks" if theme.weeks_running > 1 else ""


def touches_text(theme: Theme) -> str:
    """The sectors and use cases a theme touches, for people: "Health › Diagnosis support
    and treatment choice (4 documents); ...", or "" when it touches none."""
    return "; ".join(
        f"{t.sector_name or t.sector} › {t.name} ({t.documents} document"
        f"{'' if t.documents == 1 else 's'})"
        for t in theme.sectors
    )

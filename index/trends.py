"""What is growing: weekly counts per technique and per use case, bursts, emerging themes.

Bursts: the last ``RECENT_WEEKS`` weeks are compared with the weeks before them. The count
expected now is the item's share of all documents in the baseline weeks times the number of
documents in the recent weeks (so a busier crawl week is not a burst), with a small prior so
an item never seen before needs several documents to stand out. A burst is a Poisson tail
probability below ``BURST_P`` with at least ``BURST_MIN`` recent documents: robust to small
counts, and silent on a flat series.

Emerging themes: recent documents are clustered by their stored vectors (FAISS k-means); a
theme is a cluster whose neighbourhood holds a much larger share of recent documents than of
earlier ones. It is labelled with its most distinctive terms (class-based TF-IDF) and its
documents closest to the centre.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import faiss
import numpy as np
import sqlalchemy as sa
from scipy.stats import poisson

from core.models import Document
from core.settings import Settings
from core.store import Store, documents
from index.keyword import STOPWORDS, _stem
from index.matching import doc_matches, doc_techniques, ensure_tables, week_number
from index.taxonomy import load_taxonomy
from index.vectors import vectors_for

# Words too common in research abstracts and news to label a theme (stems).
_GENERIC = frozenset(
    "model data learn system task perform result base approach framework train dataset "
    "achiev improv effect evalu experi demonstr introduc present work also howev provid "
    "address enabl challeng signific exist novel state art large propos method use show new "
    "paper studi via across outperform high low level process real world applic design "
    "develop analysi general key complex gain suggest keep make need want get take give like "
    "one two first way well better sever differ compar includ known often mani may can "
    "current recent specif import lead focus aim allow offer help build set time".split()
)
_WORD = re.compile(r"[a-z][a-z0-9]+(?:-[a-z0-9]+)*")
LABEL_DOCS = 150
RECENT_WEEKS = 2
BURST_P = 0.01
BURST_MIN = 3
By = Literal["technique", "use_case"]


@dataclass(slots=True)
class TrendItem:
    key: str
    name: str
    sector: str | None
    weekly: list[int]
    total: int
    growth: float  # second half of the window vs first half, (b - a) / max(a, 1)
    recent: int
    expected: float
    burst_p: float
    burst: bool
    new: bool  # nothing in the baseline weeks, something now


@dataclass(slots=True)
class TrendReport:
    by: str
    weeks: list[str]  # ISO dates of the Mondays starting each week
    totals: list[int]  # documents per week
    items: list[TrendItem] = field(default_factory=list)

    @property
    def bursting(self) -> list[TrendItem]:
        return [i for i in self.items if i.burst]


def week_start(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return day - timedelta(days=day.weekday())


def default_now(store: Store, now: datetime | None) -> datetime:
    """``now``, or the newest publication date when the store holds nothing newer than it."""
    if now is not None:
        return now
    with store.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(documents.c.published))).scalar()
    current = datetime.now(UTC)
    if newest is None:
        return current
    newest = newest.replace(tzinfo=UTC)
    return min(current, newest + timedelta(seconds=1))


def burst_test(
    weekly: list[int], totals: list[int], recent_weeks: int = RECENT_WEEKS
) -> tuple[int, float, float]:
    """(recent count, expected count, Poisson tail probability) for one weekly series."""
    base_c = sum(weekly[:-recent_weeks])
    base_t = sum(totals[:-recent_weeks])
    recent = sum(weekly[-recent_weeks:])
    recent_t = sum(totals[-recent_weeks:])
    # share with a light prior (half a document), times the recent volume
    expected = (base_c + 0.5) / (base_t + 1.0) * recent_t
    expected = max(expected, 0.5)
    p = float(poisson.sf(recent - 1, expected)) if recent else 1.0
    return recent, expected, p


def series_from_counts(
    counts: dict[str, Counter], totals: Counter, starts: list[datetime]
) -> tuple[dict[str, list[int]], list[int]]:
    keys = [s.date().isoformat() for s in starts]
    return (
        {item: [c.get(k, 0) for k in keys] for item, c in counts.items()},
        [totals.get(k, 0) for k in keys],
    )


def weekly_counts(
    store: Store, *, by: By, weeks: int = 12, now: datetime | None = None
) -> tuple[list[datetime], dict[str, Counter], Counter]:
    """Counts per (item, week) and documents per week over ``weeks`` weeks ending at ``now``."""
    if weeks < RECENT_WEEKS + 1:
        raise ValueError(f"weeks must be at least {RECENT_WEEKS + 1}, not {weeks}")
    ensure_tables(store)
    now = default_now(store, now)
    last = week_start(now)
    starts = [last - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    begin, end = starts[0], last + timedelta(weeks=1)
    first_week = week_number(begin.replace(tzinfo=UTC))
    last_week = week_number(last.replace(tzinfo=UTC))
    table, column = (
        (doc_techniques, doc_techniques.c.technique)
        if by == "technique"
        else (doc_matches, doc_matches.c.use_case)
    )
    counts: dict[str, Counter] = {}
    totals: Counter = Counter()
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(column, table.c.week, sa.func.count())
            .where(table.c.week >= first_week, table.c.week <= last_week)
            .group_by(column, table.c.week)
        )
        for item, week, n in rows:
            counts.setdefault(item, Counter())[_week_label(week)] += n
        day = sa.func.date(documents.c.published)
        in_window = sa.and_(documents.c.published >= begin, documents.c.published < end)
        for d, n in conn.execute(sa.select(day, sa.func.count()).where(in_window).group_by(day)):
            totals[_week_key(d)] += n
    return starts, counts, totals


def _week_label(week: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(days=int(week))).date().isoformat()


def _week_key(value) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return (value - timedelta(days=value.weekday())).date().isoformat()


def build_report(
    by: str,
    starts: list[datetime],
    series: dict[str, list[int]],
    totals: list[int],
    names: dict[str, tuple[str, str | None]],
) -> TrendReport:
    """Growth, bursts and novelty for each series (pure; used by trend_report and tests)."""
    report = TrendReport(by=by, weeks=[s.date().isoformat() for s in starts], totals=totals)
    half = len(totals) // 2
    for key, weekly in series.items():
        recent, expected, p = burst_test(weekly, totals)
        first, second = sum(weekly[:half]), sum(weekly[half:])
        name, sector = names.get(key, (key, None))
        report.items.append(
            TrendItem(
                key=key,
                name=name,
                sector=sector,
                weekly=weekly,
                total=sum(weekly),
                growth=round((second - first) / max(first, 1), 3),
                recent=recent,
                expected=round(expected, 2),
                burst_p=p,
                burst=p < BURST_P and recent >= BURST_MIN,
                new=sum(weekly[:-RECENT_WEEKS]) == 0 and recent > 0,
            )
        )
    report.items.sort(key=lambda i: (not i.burst, i.burst_p, -i.growth, -i.total))
    return report


def trend_report(
    store: Store,
    settings: Settings,
    *,
    by: By = "technique",
    weeks: int = 12,
    now: datetime | None = None,
) -> TrendReport:
    """Weekly series per technique or use case with growth, bursts and novelty."""
    taxonomy = load_taxonomy(settings)
    starts, counts, totals = weekly_counts(store, by=by, weeks=weeks, now=now)
    if by == "technique":
        names = {t.key: (t.name, None) for t in taxonomy.techniques}
    else:
        names = {uc.key: (uc.name, uc.sector) for uc in taxonomy.use_cases}
    for key in names:
        counts.setdefault(key, Counter())
    series, total_list = series_from_counts(counts, totals, starts)
    return build_report(by, starts, series, total_list, names)


# -- emerging themes ---------------------------------------------------------------------


@dataclass(slots=True)
class Theme:
    label: str
    terms: list[str]
    size: int  # recent documents in the theme
    earlier: int  # earlier documents in its neighbourhood
    growth: float  # recent share / earlier share
    documents: list[Document]


def emerging_themes(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    weeks: int = 4,
    baseline_weeks: int = 12,
    limit: int = 5,
    min_size: int = 3,
) -> list[Theme]:
    """Clusters of recent documents that are dense now and were not before."""
    from index.embedder import get_embedder  # noqa: PLC0415

    now = default_now(store, now)
    recent_from = now - timedelta(weeks=weeks)
    base_from = recent_from - timedelta(weeks=baseline_weeks)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(documents.c.id, documents.c.published).where(
                documents.c.published >= base_from.replace(tzinfo=None),
                documents.c.published <= now.replace(tzinfo=None),
            )
        ).all()
    recent_ids = [r[0] for r in rows if r[1].replace(tzinfo=UTC) >= recent_from]
    earlier_ids = [r[0] for r in rows if r[1].replace(tzinfo=UTC) < recent_from]
    if len(recent_ids) < max(min_size * 2, 6):
        return []
    model = settings.model
    dim = get_embedder(model, max_chars=settings.embed_max_chars).dim
    r_ids, r_vecs = vectors_for(store, model, dim, ids=np.array(recent_ids))
    e_ids, e_vecs = (
        vectors_for(store, model, dim, ids=np.array(earlier_ids))
        if earlier_ids
        else (np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))
    )
    if len(r_ids) < max(min_size * 2, 6):
        return []
    k = int(min(12, max(2, round(math.sqrt(len(r_ids) / 2)))))
    kmeans = faiss.Kmeans(dim, k, niter=25, seed=7, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(r_vecs))
    _, assign = kmeans.index.search(r_vecs, 1)
    assign = assign.ravel()
    # Label terms come from each cluster's most central documents (at most LABEL_DOCS), which
    # keeps labelling cheap on large stores and the labels on the cluster's core.
    central: list[np.ndarray] = []
    for c in range(k):
        members = r_ids[assign == c]
        if len(members):
            centre = kmeans.centroids[c] / (np.linalg.norm(kmeans.centroids[c]) or 1.0)
            members = members[np.argsort(-(r_vecs[assign == c] @ centre))[:LABEL_DOCS]]
        central.append(members)
    docs = store.get_many(np.concatenate(central).tolist())
    cluster_tokens: list[Counter] = []
    surface: dict[str, Counter] = defaultdict(Counter)
    for c in range(k):
        counter: Counter = Counter()
        for doc_id in central[c].tolist():
            counter.update(_label_terms(f"{docs[doc_id].title} {docs[doc_id].text}", surface))
        cluster_tokens.append(counter)
    overall: Counter = Counter()
    for counter in cluster_tokens:
        overall.update(counter)
    avg_words = sum(sum(c.values()) for c in cluster_tokens) / max(k, 1)
    themes = []
    for c in range(k):
        members = r_ids[assign == c]
        if len(members) < min_size:
            continue
        centre = kmeans.centroids[c] / (np.linalg.norm(kmeans.centroids[c]) or 1.0)
        member_sims = r_vecs[assign == c] @ centre
        radius = float(np.percentile(member_sims, 25))
        earlier = int((e_vecs @ centre >= radius).sum()) if len(e_ids) else 0
        recent_share = len(members) / len(r_ids)
        earlier_share = (earlier + 0.5) / (len(e_ids) + 1)
        growth = recent_share / earlier_share
        scores = {
            t: n * math.log(1 + avg_words / overall[t])
            for t, n in cluster_tokens[c].items()
            if n >= 2
        }
        terms = _pick_terms(scores, surface, 6)
        themes.append(
            Theme(
                label=" · ".join(terms[:3]) or f"theme {c + 1}",
                terms=terms,
                size=int(len(members)),
                earlier=earlier,
                growth=round(float(growth), 2),
                documents=[docs[int(i)] for i in central[c][:3]],
            )
        )
    themes.sort(key=lambda t: (-t.growth, -t.size))
    return [t for t in themes if t.growth > 1.0][:limit]


def _label_terms(text: str, surface: dict[str, Counter]) -> set[str]:
    """A document's candidate label terms (stems and two-word phrases of stems), noting the
    words they came from, so that labels show real words ("learning", not "learn")."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 2]
    stems = [_stem(w) for w in words]
    terms: set[str] = set()
    for i, (word, stem) in enumerate(zip(words, stems, strict=True)):
        if stem in _GENERIC or word in _GENERIC or stem.isdigit():
            continue
        terms.add(stem)
        surface[stem][word] += 1
        if i + 1 < len(words):
            nxt, nxt_stem = words[i + 1], stems[i + 1]
            if nxt_stem not in _GENERIC and nxt not in _GENERIC and not nxt_stem.isdigit():
                pair = f"{stem} {nxt_stem}"
                terms.add(pair)
                surface[pair][f"{word} {nxt}"] += 1
    return terms


def _pick_terms(scores: dict[str, float], surface: dict[str, Counter], n: int) -> list[str]:
    """The best-scoring terms, a phrase replacing the single words it contains."""
    chosen: list[str] = []
    for term, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        parts = set(term.split())
        if any(parts <= set(c.split()) for c in chosen):
            continue  # already covered by a chosen phrase
        chosen = [c for c in chosen if not (" " in term and set(c.split()) <= parts)]
        chosen.append(term)
        if len(chosen) >= n:
            break
    return [surface[t].most_common(1)[0][0] if surface.get(t) else t for t in chosen]

"""What is growing: weekly counts per technique and per use case, bursts, emerging themes.

Bursts: the last ``RECENT_WEEKS`` weeks are compared with the weeks before them. The count
expected now is the item's share of all documents in the baseline weeks times the number of
documents in the recent weeks (so a busier crawl week is not a burst), with a small prior so
an item never seen before needs several documents to stand out. A burst is a Poisson tail
probability below ``BURST_P`` with at least ``BURST_MIN`` recent documents: robust to small
counts, and silent on a flat series.

Emerging themes live in index/themes.py (scope, growth within stable strata, labels from key
phrases); ``emerging_themes`` here is their entry point, with ``now`` defaulted as above.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from scipy.stats import poisson

from core.markup import counted
from core.models import as_utc
from core.settings import Settings
from core.store import Store, documents
from index.matching import doc_matches, doc_techniques, week_number
from index.taxonomy import load_taxonomy
from index.themes import BASELINE_WEEKS as THEME_BASELINE_WEEKS
from index.themes import RECENT_WEEKS as THEME_RECENT_WEEKS
from index.themes import SectorTouch, Theme, ThemeList, find_themes

__all__ = ["SectorTouch", "Theme", "ThemeList", "emerging_themes", "trend_report"]

RECENT_WEEKS = 2
BURST_P = 0.01
BURST_MIN = 3
By = Literal["technique", "use_case"]


# What the columns of a trends table mean, said under every such table (CLI and dashboard).
COLUMNS_HELP = (
    "growth: documents in the window's second half against its first half; last 2 weeks: "
    "documents in the last two weeks; expected: what the series' share of all documents in "
    "the weeks before predicts for those two weeks (never below 0.5); burst: far more than "
    f"expected (Poisson test, p < {BURST_P}, at least {BURST_MIN} documents in the last two "
    "weeks); new: none in the weeks before, some in the last two."
)


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
    sector_name: str = ""  # the sector's name, for people ("Financial services")

    @property
    def label(self) -> str:
        """How people see the series: "Financial services: Fraud detection" for a use case."""
        return f"{self.sector_name or self.sector}: {self.name}" if self.sector else self.name


@dataclass(slots=True)
class TrendReport:
    by: str
    weeks: list[str]  # ISO dates of the Mondays starting each week
    totals: list[int]  # documents per week
    items: list[TrendItem] = field(default_factory=list)
    # Days of the last week the window covers (1 to 7): fewer than 7 when it ends mid-week,
    # so that week's counts are partial.
    last_week_days: int = 7
    # The window's last day (ISO date), and whether it is the newest publication date stored
    # rather than today (no date asked for, nothing newer stored): then a short last week is
    # not "so far".
    last_day: str = ""
    ends_at_newest: bool = False

    @property
    def partial_week_note(self) -> str:
        """A sentence for a last week the window covers only in part, else ""."""
        if self.last_week_days >= 7:
            return ""
        days = counted(self.last_week_days, "day")
        if self.ends_at_newest:
            return (
                f"The window ends on {self.last_day}, the newest publication date stored, so "
                f"its last week (starting {self.weeks[-1]}) holds {days}: its counts are "
                "partial, not a fall."
            )
        return (
            f"The last week, starting {self.weeks[-1]}, holds {days} so far: its counts are "
            "partial, not a fall."
        )

    def to_json(self) -> dict:
        """The report as `veille trends --json` and `GET /v1/trends` give it."""
        return {
            "by": self.by,
            "weeks": self.weeks,
            "totals": self.totals,
            "last_week_days": self.last_week_days,
            "items": [
                {
                    "key": i.key,
                    "name": i.name,
                    "sector": i.sector,
                    "weekly": i.weekly,
                    "total": i.total,
                    "growth": i.growth,
                    "recent": i.recent,
                    "expected": i.expected,
                    "burst": i.burst,
                    "burst_p": round(i.burst_p, 6),
                    "new": i.new,
                }
                for i in self.items
            ],
        }


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
    newest = as_utc(newest)
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
    now = default_now(store, now)
    last = week_start(now)
    starts = [last - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    begin, end = starts[0], last + timedelta(weeks=1)
    first_week = week_number(as_utc(begin))
    last_week = week_number(as_utc(last))
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
    report = build_report(by, starts, series, total_list, names)
    sector_names = {s.key: s.name for s in taxonomy.sectors}
    for item in report.items:
        item.sector_name = sector_names.get(item.sector or "", item.sector or "")
    end = as_utc(default_now(store, now))
    report.last_week_days = min(7, (end.date() - starts[-1].date()).days + 1)
    report.last_day = end.date().isoformat()
    report.ends_at_newest = now is None and end.date() < datetime.now(UTC).date()
    return report


# -- emerging themes (index/themes.py) -------------------------------------------------------


def emerging_themes(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    weeks: int = THEME_RECENT_WEEKS,
    baseline_weeks: int = THEME_BASELINE_WEEKS,
    limit: int = 5,
) -> ThemeList:
    """Machine-learning topics that grew in the last ``weeks`` weeks, told apart from changes
    in what is crawled (see index/themes.py). ``.note`` on the result says why it is empty."""
    return find_themes(
        store,
        settings,
        now=default_now(store, now),
        weeks=weeks,
        baseline_weeks=baseline_weeks,
        limit=limit,
    )

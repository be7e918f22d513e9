"""The week of a digest run: what every digest of the run shares, computed once.

A run builds one digest per subscriber; the trends, the emerging themes and the operator's
source alerts are the same for all of them, so :func:`week_context` computes them once, and
the "does this fit?" questions and "more like your shortlist" suggestions are kept in the
context the first time a reader needs them (:mod:`jobs.digest` fills them). The week is
the ISO week in ``settings.timezone``: a person gets at most one digest per such week.

    ctx = week_context(store, settings, now=now)
    ctx.week  # '2026-W11'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.models import as_utc
from core.settings import Settings
from core.store import Store
from index.recommend import Recommendations
from index.themes import Theme, running_text, touches_text
from index.trends import TrendItem, emerging_themes, trend_report
from jobs.digest_render import AskItem, ThemeLine, clean, safe_url

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WeekContext:
    """What every digest of a run shares: the week, trends and themes (computed once)."""

    week: str
    now: datetime
    since: datetime
    techniques: list[TrendItem]
    use_cases: list[TrendItem]
    themes: list[ThemeLine]
    # "Does this fit?" questions per sector: the same for every reader, found once a run.
    asks: dict[str, list[AskItem]] = field(default_factory=dict)
    # For the operator: news sources that fell silent or keep failing, one sentence each.
    source_alerts: list[str] = field(default_factory=list)
    # "More like your shortlist" per use case ("sector/use_case"), found once a run.
    suggestions: dict[str, Recommendations] = field(default_factory=dict)


def iso_week(now: datetime, settings: Settings) -> str:
    """The ISO week of ``now`` in the configured time zone, e.g. '2026-W10'."""
    local = now.astimezone(ZoneInfo(settings.timezone))
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def theme_line(theme: Theme) -> ThemeLine:
    """An emerging theme as the digest tells it: its counts ("new this period" when nothing
    came before), how many weeks it has been growing, the sectors it touches, its papers."""
    running = running_text(theme)
    return ThemeLine(
        label=clean(theme.heading, 200),
        detail=clean(theme.summary + (f"; {running}" if running else ""), 400),
        examples=[(clean(d.title, 200), safe_url(d.url)) for d in theme.documents],
        touches=clean(touches_text(theme), 400),
    )


def week_context(store: Store, settings: Settings, *, now: datetime | None = None) -> WeekContext:
    """Trends and emerging themes as of ``now`` (shared by all digests of one run)."""
    now = as_utc(now or datetime.now(UTC))
    techniques = trend_report(store, settings, by="technique", now=now).items
    use_cases = trend_report(store, settings, by="use_case", now=now).items
    themes: list[ThemeLine] = []
    try:
        themes = [theme_line(t) for t in emerging_themes(store, settings, now=now, limit=3)]
    except Exception:  # themes are a bonus: a digest without them is still worth sending
        log.warning("emerging themes unavailable for the digest", exc_info=True)
    return WeekContext(
        week=iso_week(now, settings),
        now=now,
        since=now - timedelta(days=7),
        techniques=techniques,
        use_cases=use_cases,
        themes=themes,
        source_alerts=operator_alerts(store, settings, now=now),
    )


def operator_alerts(store: Store, settings: Settings, *, now: datetime) -> list[str]:
    """The sentences of the operator section: news sources that fell silent or keep failing
    (crawler.news_health), cleaned of control characters (the templates escape them).
    A failure to read them is itself an alert: the section is for the one who can fix it."""
    from crawler.news_health import source_alerts  # noqa: PLC0415

    try:
        return [clean(a.message, 600) for a in source_alerts(store, settings, now=now)]
    except Exception as exc:  # noqa: BLE001 - the digest goes out all the same
        log.warning("source alerts unavailable for the digest", exc_info=True)
        return [clean(f"The news sources' health could not be read: {type(exc).__name__}")]

"""Sources that need the operator: silent ones and ones that keep failing.

A feed that breaks loudly is marked failing by the crawl. A feed that moves, or keeps
answering with the same old items, fails silently: every crawl is "ok" and nothing new comes
in. This module reads the crawl-run history to find both, with one sentence each that the
Sources page, ``veille sources`` and the digest's operator section can show as is.

Example::

    for alert in source_alerts(store, settings, now=now):
        print(alert.message)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from core.markup import counted
from core.models import CrawlRun
from core.settings import Settings
from core.store import Store
from crawler.news_crawl import run_name
from crawler.news_sources import FeedState, all_sources, feed_states

# A source "usually yields items" when at least this many of its crawls brought new ones.
USUAL_YIELDS = 2
_HISTORY = 500  # crawl runs read per source


@dataclass(frozen=True, slots=True)
class SourceAlert:
    """One source that needs a look, and why, in a sentence."""

    source: str
    kind: Literal["silent", "failing"]
    message: str
    since: datetime | None  # last new item (silent) or first failure of the streak (failing)
    last_error: str = ""


def _day(when: datetime | None) -> str:
    return f"{when:%Y-%m-%d}" if when else "unknown"


def _failing(name: str, state: FeedState, runs: list[CrawlRun], settings: Settings):
    if not state.failing or state.failures < settings.source_failing_runs:
        return None
    streak = []
    for run in runs:  # newest first
        if run.status != "error":
            break
        streak.append(run)
    since = streak[-1].started if streak else state.last_crawl
    return SourceAlert(
        source=name,
        kind="failing",
        message=(
            f"{name}: failing for {state.failures} crawls in a row (since {_day(since)}): "
            f"{state.last_error}"
        ),
        since=since,
        last_error=state.last_error,
    )


def _silent(name: str, state: FeedState, runs: list[CrawlRun], settings: Settings, now: datetime):
    yielding = [r for r in runs if r.new > 0]
    if len(yielding) < USUAL_YIELDS:
        return None  # never productive enough to call its quiet unusual
    last_new = yielding[0].started
    quiet = now - last_new
    crawled_since = state.last_success is not None and state.last_success > last_new
    if quiet < timedelta(days=settings.source_silence_days) or not crawled_since:
        return None
    per_crawl = sum(r.new for r in yielding) / len(yielding)
    return SourceAlert(
        source=name,
        kind="silent",
        message=(
            f"{name}: no new item for {quiet.days} days (last on {_day(last_new)}), though "
            f"crawled without error since (last on {_day(state.last_success)}); it used to "
            f"bring about {counted(round(per_crawl), 'new item')} a crawl. Check that its feed "
            "URL still gives the current items."
        ),
        since=last_new,
    )


def source_alerts(store: Store, settings: Settings, *, now: datetime) -> list[SourceAlert]:
    """Enabled news sources that are silent or keep failing, failing ones first.

    *Silent*: a source that brought new items in at least two crawls has brought none for
    ``source_silence_days`` days, although it was crawled without error since. *Failing*:
    its last ``source_failing_runs`` crawls (or more) failed. ``now`` must be time-zone aware.
    """
    states = feed_states(store)
    alerts: list[SourceAlert] = []
    for src in all_sources(store, settings):
        state = states.get(src.name)
        if not src.enabled or state is None or not state.status:
            continue
        runs = store.recent_runs(_HISTORY, source=run_name(src.name))
        alert = _failing(src.name, state, runs, settings) or _silent(
            src.name, state, runs, settings, now
        )
        if alert is not None:
            alerts.append(alert)
    return sorted(alerts, key=lambda a: (a.kind != "failing", a.source.casefold()))

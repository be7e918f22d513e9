"""The jobs facade: the one module of jobs/ that dashboard/ and api/ import.

The layer contract (tests/test_layers.py) lets the dashboard and the API call index/, core/
and this module only: never the rest of jobs/, never crawler/. What they need from those
layers is here, as thin functions with the same arguments. Each one imports its module when
it is called, so importing the facade stays cheap (the API's public pages and the
dashboard's pages load only what they use).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobs.launch import LaunchRefused, launch_job

if TYPE_CHECKING:
    from core.settings import Settings
    from core.store import Store
    from crawler.news_health import SourceAlert
    from index.cards import Card
    from index.feedback import Feedback
    from index.shortlists import Entry
    from jobs.feedback_links import FeedbackLink
    from jobs.shortlist_links import ShortlistLink

__all__ = [
    "LaunchRefused",
    "add_shortlist_from_token",
    "cards_csv",
    "cards_markdown",
    "job_tables",
    "launch_job",
    "check_unsubscribe_token",
    "read_feedback_token",
    "read_shortlist_token",
    "record_feedback_from_token",
    "source_alerts",
    "source_table",
    "unsubscribe_with_token",
]


# --- operator actions and job history (the dashboard's Sources page) ---


def job_tables(store: Store, settings: Settings, *, limit: int = 30) -> dict[str, list[dict]]:
    """Schedules and recent job runs, as display rows (see jobs.cron.job_tables)."""
    from jobs.cron import job_tables as tables  # noqa: PLC0415

    return tables(store, settings, limit=limit)


def source_alerts(store: Store, settings: Settings, *, now: datetime) -> list[SourceAlert]:
    """News sources gone silent or failing (see crawler.news_health.source_alerts)."""
    from crawler.news_health import source_alerts as alerts  # noqa: PLC0415

    return alerts(store, settings, now=now)


def source_table(store: Store, settings: Settings) -> list[dict[str, Any]]:
    """The news sources and their feed state, as display rows (crawler.news_sources)."""
    from crawler.news_sources import source_table as table  # noqa: PLC0415

    return table(store, settings)


# --- the digest's signed links (the API's public pages and the dashboard's) ---


def unsubscribe_with_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> str | None:
    """Unsubscribe the address a digest link was signed for (jobs.unsubscribe_links); None
    when that address was erased from the list already."""
    from jobs.unsubscribe_links import unsubscribe_with_token as unsubscribe  # noqa: PLC0415

    return unsubscribe(store, settings, token, now=now)


def check_unsubscribe_token(settings: Settings, store: Store | None, token: str) -> None:
    """ValueError when an unsubscribe link is malformed, forged or altered (nothing changes)."""
    from jobs.unsubscribe_links import read_token  # noqa: PLC0415

    read_token(settings, store, token)


def read_feedback_token(settings: Settings, store: Store | None, token: str) -> FeedbackLink:
    """What a digest's "does it fit?" link says (jobs.feedback_links.read_token)."""
    from jobs.feedback_links import read_token  # noqa: PLC0415

    return read_token(settings, store, token)


def record_feedback_from_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> Feedback:
    """Record the answer of a "does it fit?" link (jobs.feedback_links.record_from_token)."""
    from jobs.feedback_links import record_from_token  # noqa: PLC0415

    return record_from_token(store, settings, token, now=now)


def read_shortlist_token(settings: Settings, store: Store | None, token: str) -> ShortlistLink:
    """What a digest's "add to shortlist" link says (jobs.shortlist_links.read_token)."""
    from jobs.shortlist_links import read_token  # noqa: PLC0415

    return read_token(settings, store, token)


def add_shortlist_from_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> Entry:
    """Add the entry of an "add to shortlist" link (jobs.shortlist_links.add_from_token)."""
    from jobs.shortlist_links import add_from_token  # noqa: PLC0415

    return add_from_token(store, settings, token, now=now)


# --- opportunity cards as files (the dashboard's shortlist page) ---


def cards_markdown(cards: list[Card], *, title: str) -> str:
    """The workshop handout of ``cards`` (jobs.handouts.cards_markdown)."""
    from jobs.handouts import cards_markdown as handout  # noqa: PLC0415

    return handout(cards, title=title)


def cards_csv(cards: list[Card]) -> str:
    """The cards as CSV (jobs.handouts.cards_csv)."""
    from jobs.handouts import cards_csv as spreadsheet  # noqa: PLC0415

    return spreadsheet(cards)

"""The news sources: the shipped list, veille.toml, and what `veille sources` changed.

Three layers, later ones winning by name: the default list (``core/data/news_sources.toml``,
unless ``news_default_sources = false``), the ``[[news_sources]]`` entries of the settings,
then the rows of the ``news_sources`` table (sources added with ``veille sources add`` and
the enabled/disabled switch of any source). The ``news_feed_state`` table keeps, per source,
the validators for conditional requests (ETag, Last-Modified) and the outcome of the last crawl.
This module owns both tables (declared in core/schema.py).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from core.markup import counted, noun_for
from core.models import as_utc, naive_now, naive_utc
from core.schema import news_feed_state as feed_state
from core.schema import news_sources as source_rows
from core.settings import ConfigError, Settings
from core.store import Store
from crawler.netguard import NetworkPolicy, RefusedDestination, UnresolvableHost

_KEYS = {"name", "feed_url", "url", "follow_pages", "follow_pattern", "enabled", "language"}
_KEYS |= {"drop_authors", "follow_hosts"}


def _bare(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def host_matches(host: str, allowed: list[str] | tuple[str, ...]) -> bool:
    """Whether ``host`` is one of ``allowed`` ('*' is any host; 'example.org' also covers
    www.example.org and any other subdomain)."""
    host = _bare(host)
    for entry in allowed:
        entry = _bare(entry.strip())
        if entry == "*" or host == entry or host.endswith("." + entry):
            return True
    return False


@dataclass(slots=True)
class NewsSource:
    """One feed to crawl and how to treat its items."""

    name: str
    feed_url: str
    follow_pages: bool = True
    follow_pattern: str = ""
    enabled: bool = True
    language: str = ""
    drop_authors: list[str] = field(default_factory=list)
    origin: str = "default"  # default | settings | cli
    follow_hosts: list[str] = field(default_factory=list)  # beyond the feed's own host

    def follows(self, link: str, *, also_hosts: list[str] | tuple[str, ...] = ()) -> bool:
        """Whether the article page at ``link`` should be fetched.

        Only pages on the feed's own host (with or without ``www.``) are followed, unless the
        source's ``follow_hosts`` or the ``news_follow_hosts`` setting (``also_hosts``) name
        the link's host: a feed cannot send the crawler to any site it likes.
        """
        if not self.follow_pages or not link.startswith(("http://", "https://")):
            return False
        host = urlsplit(link).hostname or ""
        feed_host = urlsplit(self.feed_url).hostname or ""
        if _bare(host) != _bare(feed_host) and not host_matches(
            host, [*self.follow_hosts, *also_hosts]
        ):
            return False
        return not self.follow_pattern or re.search(self.follow_pattern, link) is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class FeedState:
    """What the last crawl of a source left behind."""

    name: str
    feed_url: str = ""
    etag: str = ""
    last_modified: str = ""
    last_crawl: datetime | None = None
    last_success: datetime | None = None
    status: str = ""  # ok | not_modified | partial | error | "" (never crawled)
    last_error: str = ""
    failures: int = 0
    new: int = 0
    updated: int = 0

    @property
    def failing(self) -> bool:
        return self.status == "error"


def crawl_log_file(settings: Settings) -> Path:
    """Where a news crawl writes its full log (tracebacks included): the last crawl's only.
    (Here rather than in news_crawl, so that the spider and the crawl share it without
    importing each other.)"""
    return settings.data_dir / "logs" / "news-crawl.log"


def check_feed_url(url: str, *, where: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: feed URL {url!r} is not an http(s) URL")
    return url


def source_from_mapping(raw: dict[str, Any], *, origin: str, defaults: Settings) -> NewsSource:
    """Build and check one source entry; errors name the entry and the key."""
    name = str(raw.get("name", "")).strip()
    where = f"news source {name!r}" if name else f"news source entry {raw!r}"
    if not name:
        raise ConfigError(f"{where} has no name")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where} has unknown {noun_for(len(unknown), 'key')}: {', '.join(unknown)}"
        )
    url = raw.get("feed_url") or raw.get("url")
    if not url:
        raise ConfigError(f"{where} has no feed_url")
    pattern = str(raw.get("follow_pattern") or "")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}: follow_pattern is not a valid regex: {exc}") from exc
    authors = raw.get("drop_authors") or []
    if not isinstance(authors, list):
        raise ConfigError(f"{where}: drop_authors must be a list of names")
    hosts = raw.get("follow_hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise ConfigError(f"{where}: follow_hosts must be a list of host names")
    return NewsSource(
        name=name,
        feed_url=check_feed_url(str(url), where=where),
        follow_pages=bool(raw.get("follow_pages", defaults.news_follow_pages)),
        follow_pattern=pattern,
        enabled=bool(raw.get("enabled", True)),
        language=str(raw.get("language") or ""),
        drop_authors=[str(a) for a in authors],
        origin=origin,
        follow_hosts=[h.strip() for h in hosts],
    )


def default_sources(settings: Settings) -> list[NewsSource]:
    """The list that ships with Veille."""
    text = resources.files("core").joinpath("data/news_sources.toml").read_text("utf-8")
    table = tomllib.loads(text)
    return [
        source_from_mapping(raw, origin="default", defaults=settings)
        for raw in table.get("source", [])
    ]


def configured_sources(settings: Settings) -> list[NewsSource]:
    """Defaults overlaid by the settings file (by name, case-insensitive)."""
    merged: dict[str, NewsSource] = {}
    if settings.news_default_sources:
        for src in default_sources(settings):
            merged[src.name.casefold()] = src
    for raw in settings.news_sources:
        if not isinstance(raw, dict):
            raise ConfigError(f"news_sources entries must be tables, not {raw!r}")
        src = source_from_mapping(raw, origin="settings", defaults=settings)
        merged[src.name.casefold()] = src
    return list(merged.values())


def all_sources(store: Store, settings: Settings) -> list[NewsSource]:
    """Every known source (enabled or not), with the CLI's additions and switches applied."""
    merged = {s.name.casefold(): s for s in configured_sources(settings)}
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(source_rows).order_by(source_rows.c.added_at)).all()
    for row in rows:
        key = row.name.casefold()
        if key in merged:
            src = merged[key]
        elif row.feed_url:
            follow = settings.news_follow_pages if row.follow_pages is None else row.follow_pages
            src = NewsSource(row.name, row.feed_url, follow_pages=follow, origin="cli")
        else:
            continue  # a switch for a source no longer configured
        if row.enabled is not None:
            src = replace(src, enabled=bool(row.enabled))
        merged[key] = src
    return list(merged.values())


def find_source(store: Store, settings: Settings, name: str) -> NewsSource:
    for src in all_sources(store, settings):
        if src.name.casefold() == name.strip().casefold():
            return src
    known = ", ".join(s.name for s in all_sources(store, settings)) or "none"
    raise KeyError(f"no news source named {name!r} (known: {known})")


def add_source(
    store: Store,
    settings: Settings,
    name: str,
    feed_url: str,
    *,
    follow_pages: bool | None = None,
) -> NewsSource:
    """Add a source kept in the store; a name already in use is refused."""
    name = name.strip()
    if not name:
        raise ValueError("a source needs a name")
    url = check_feed_url(feed_url, where=f"news source {name!r}")
    try:
        NetworkPolicy.from_settings(settings).check_url(url)
    except RefusedDestination as exc:
        raise ValueError(
            f"news source {name!r}: {exc}; add its network to crawl_allowed_networks "
            "if it really is a feed to crawl"
        ) from None
    except UnresolvableHost:
        pass  # a host that does not resolve today may tomorrow; the crawl will say
    for src in all_sources(store, settings):
        if src.name.casefold() == name.casefold():
            raise ValueError(f"a news source named {src.name!r} already exists ({src.feed_url})")
    now = naive_now()
    with store.write() as conn:
        conn.execute(source_rows.delete().where(source_rows.c.name == name))
        conn.execute(
            source_rows.insert().values(
                name=name,
                feed_url=url,
                follow_pages=follow_pages,
                enabled=True,
                added_at=now,
                updated_at=now,
            )
        )
    return find_source(store, settings, name)


def set_enabled(store: Store, settings: Settings, name: str, enabled: bool) -> NewsSource:
    """Turn a source on or off (any source, whichever layer defined it)."""
    src = find_source(store, settings, name)
    now = naive_now()
    with store.write() as conn:
        done = conn.execute(
            source_rows.update()
            .where(source_rows.c.name == src.name)
            .values(enabled=enabled, updated_at=now)
        )
        if done.rowcount == 0:
            conn.execute(
                source_rows.insert().values(
                    name=src.name, enabled=enabled, added_at=now, updated_at=now
                )
            )
    return replace(src, enabled=enabled)


def select_sources(store: Store, settings: Settings, name: str | None = None) -> list[NewsSource]:
    """The sources a crawl covers: all enabled ones, or the one named (even if disabled)."""
    if name:
        return [find_source(store, settings, name)]
    return [s for s in all_sources(store, settings) if s.enabled]


# -- feed state ---------------------------------------------------------------------------


def feed_states(store: Store) -> dict[str, FeedState]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(feed_state)).all()
    out = {}
    for r in rows:
        values = dict(r._mapping)
        for key in ("last_crawl", "last_success"):
            values[key] = as_utc(values[key])
        out[r.name] = FeedState(**values)
    return out


def save_feed_state(store: Store, state: FeedState) -> None:
    values = {k: getattr(state, k) for k in FeedState.__slots__ if k != "name"}
    for key in ("last_crawl", "last_success"):
        if values[key] is not None and values[key].tzinfo is not None:
            values[key] = naive_utc(values[key])
    with store.write() as conn:
        done = conn.execute(
            feed_state.update().where(feed_state.c.name == state.name).values(**values)
        )
        if done.rowcount == 0:
            conn.execute(feed_state.insert().values(name=state.name, **values))


def status_text(src: NewsSource, state: FeedState | None) -> str:
    """How a source is doing, in a few words (for `veille sources` and the dashboard)."""
    if not src.enabled:
        return "disabled"
    if state is None or not state.status:
        return "not crawled yet"
    if state.failing:
        return f"FAILING ({counted(state.failures, 'crawl')} in a row)"
    if state.status == "partial":
        return "last crawl stopped midway (what it read is stored)"
    return "ok, feed unchanged" if state.status == "not_modified" else "ok"


def source_table(store: Store, settings: Settings) -> list[dict[str, Any]]:
    """One row per source: enabled, status, last crawl, items new/updated, last error, feed."""
    states = feed_states(store)
    rows = []
    for src in all_sources(store, settings):
        state = states.get(src.name)
        last = state.last_crawl if state else None
        rows.append(
            {
                "source": src.name,
                "enabled": "yes" if src.enabled else "no",
                "status": status_text(src, state),
                "last crawl": last.strftime("%Y-%m-%d %H:%M") if last else "",
                "new": state.new if state else 0,
                "updated": state.updated if state else 0,
                "last error": state.last_error if state else "",
                "feed": src.feed_url,
            }
        )
    return rows

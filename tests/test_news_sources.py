"""The news source list: shipped defaults, veille.toml, and `veille sources` changes."""

from __future__ import annotations

import json

import pytest

from core.loader import starter_files
from core.settings import ConfigError, load_settings
from crawler.news_sources import (
    add_source,
    all_sources,
    default_sources,
    select_sources,
    set_enabled,
)


def test_default_list_ships_real_ai_feeds(settings) -> None:
    defaults = {s.name: s for s in default_sources(settings)}
    assert {"OpenAI News", "Google DeepMind Blog", "Google AI Blog", "Microsoft AI Blog"} <= set(
        defaults
    )
    assert defaults["Google DeepMind Blog"].feed_url == "https://deepmind.google/blog/rss.xml"
    assert defaults["Microsoft AI Blog"].follow_pages is False
    assert defaults["Hacker News Best"].enabled is False
    openai = defaults["OpenAI News"]
    assert openai.follows("https://openai.com/index/outtake")
    assert not openai.follows("https://example.com/elsewhere")

    # the starter corpus's news carries the same source names: one outlet, one name
    starter = [json.loads(line) for f in starter_files() for line in f.read_text().splitlines()]
    news_sources = {r["source"] for r in starter if r.get("kind") == "news"}
    assert news_sources and news_sources <= set(defaults)


def test_settings_file_overrides_and_disables_by_name(tmp_path, store) -> None:
    config = tmp_path / "veille.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[[news_sources]]\n"
        'name = "openai news"\nfeed_url = "http://127.0.0.1:9/openai.xml"\nenabled = false\n'
        "[[news_sources]]\n"
        'name = "Local"\nfeed_url = "http://127.0.0.1:9/local.xml"\nfollow_pages = false\n'
    )
    settings = load_settings(config)
    by_name = {s.name.casefold(): s for s in all_sources(store, settings)}
    assert by_name["openai news"].enabled is False
    assert by_name["openai news"].feed_url.endswith("/openai.xml")
    assert by_name["local"].origin == "settings" and by_name["local"].follow_pages is False
    enabled = [s.name for s in select_sources(store, settings)]
    assert "Local" in enabled and "openai news" not in enabled
    # The CLI switch wins over the file, and naming a disabled source crawls it.
    set_enabled(store, settings, "OPENAI NEWS", True)
    assert "openai news" in [s.name for s in select_sources(store, settings)]
    assert [s.name for s in select_sources(store, settings, "hacker news best")] == [
        "Hacker News Best"
    ]


def test_bad_entries_are_refused_with_their_name(store) -> None:
    for entry, message in (
        ({"feed_url": "http://127.0.0.1/x"}, "has no name"),
        ({"name": "A"}, "'A' has no feed_url"),
        ({"name": "B", "feed_url": "file:///etc/passwd"}, "not an http"),
        ({"name": "C", "feed_url": "http://127.0.0.1/", "folow_pages": True}, "folow_pages"),
        ({"name": "D", "feed_url": "http://127.0.0.1/", "follow_pattern": "("}, "regex"),
    ):
        settings = load_settings(news_sources=[entry], news_default_sources=False)
        with pytest.raises(ConfigError, match=message):
            all_sources(store, settings)


def test_sources_added_from_the_cli_are_kept_in_the_store(store) -> None:
    settings = load_settings(news_default_sources=False)
    for url in ("https://127.0.0.1/feed", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(ValueError, match=r"news source 'Lab blog': refused .*not in crawl_"):
            add_source(store, settings, "Lab blog", url)
    settings = load_settings(news_default_sources=False, crawl_allowed_networks=["127.0.0.1"])
    assert select_sources(store, settings) == []
    added = add_source(store, settings, "Lab blog", "https://127.0.0.1/feed", follow_pages=False)
    assert added.origin == "cli" and added.follow_pages is False
    with pytest.raises(ValueError, match="already exists"):
        add_source(store, settings, "LAB BLOG", "https://127.0.0.1/other")
    set_enabled(store, settings, "lab blog", False)
    assert select_sources(store, settings) == []
    assert all_sources(store, settings)[0].enabled is False
    with pytest.raises(KeyError, match="no news source named 'Nope'"):
        set_enabled(store, settings, "Nope", True)


def test_scrapy_settings_are_polite_and_come_from_veille_settings(tmp_path) -> None:
    from crawler.news_spider import scrapy_settings

    settings = load_settings(
        data_dir=tmp_path, news_timeout=12, news_concurrency_per_domain=3, news_http_cache=True
    )
    values = scrapy_settings(settings)
    assert values["ROBOTSTXT_OBEY"] is True and values["AUTOTHROTTLE_ENABLED"] is True
    assert values["USER_AGENT"] == settings.user_agent and "VeilleBot" in values["USER_AGENT"]
    assert values["CONCURRENT_REQUESTS_PER_DOMAIN"] == 3 and values["DOWNLOAD_TIMEOUT"] == 12
    assert values["DOWNLOAD_DELAY"] == 1.0 and values["DOWNLOAD_MAXSIZE"] == 5_000_000
    assert 503 in values["RETRY_HTTP_CODES"] and 404 not in values["RETRY_HTTP_CODES"]
    assert values["HTTPCACHE_ENABLED"] is True
    assert values["HTTPCACHE_DIR"] == str(tmp_path / "http-cache")

"""One canonical URL for the loader, the crawler and lookups (core.urls)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.models import make_canonical_id
from core.urls import canonical_url, legacy_canonical_url, strip_tracking
from crawler.news_feed import parse_feed

CASES = [
    # (why, as found, canonical)
    (
        "utm_* dropped",
        "https://example.com/a?utm_source=rss&utm_medium=feed",
        "https://example.com/a",
    ),
    ("bare utm dropped", "https://example.com/a?utm=x&id=1", "https://example.com/a?id=1"),
    (
        "click ids dropped",
        "https://example.com/a?fbclid=1&gclid=2&dclid=3&msclkid=4&yclid=5",
        "https://example.com/a",
    ),
    (
        "more click ids",
        "https://example.com/a?twclid=1&li_fat_id=2&igshid=3",
        "https://example.com/a",
    ),
    (
        "mail and CRM ids",
        "https://example.com/a?mc_cid=1&mc_eid=2&_hsenc=3&_hsmi=4&mkt_tok=5&vero_id=6",
        "https://example.com/a",
    ),
    ("analytics linkers", "https://example.com/a?_ga=2.1&_gl=1*x", "https://example.com/a"),
    (
        "campaign ids",
        "https://example.com/a?ncid=rss&cmpid=1&ocid=2&s_cid=3&sr_share=tw",
        "https://example.com/a",
    ),
    (
        "Optimizely and WT ids",
        "https://example.com/a?oly_enc_id=1&oly_anon_id=2&WT.mc_id=3",
        "https://example.com/a",
    ),
    (
        "referrer tags dropped",
        "https://example.com/a?ref=hn&ref_src=twsrc",
        "https://example.com/a",
    ),
    ("names in any case", "https://example.com/a?UTM_Source=x&FBCLID=y", "https://example.com/a"),
    (
        "look-alikes kept",
        "https://example.com/a?utm_source2=x&reference=1&page=2",
        "https://example.com/a?page=2&reference=1&utm_source2=x",
    ),
    ("fragment dropped", "https://example.com/a#comments", "https://example.com/a"),
    (
        "scheme and host lower-cased, http is https",
        "HTTP://Example.COM/Path",
        "https://example.com/Path",
    ),
    (
        "path case kept",
        "https://example.com/CaseSensitive/Page",
        "https://example.com/CaseSensitive/Page",
    ),
    ("www. dropped", "https://www.example.com/a", "https://example.com/a"),
    ("user info dropped", "https://user:pw@example.com/a", "https://example.com/a"),
    ("default ports dropped", "http://example.com:80/a", "https://example.com/a"),
    ("443 dropped too", "https://example.com:443/a", "https://example.com/a"),
    ("other ports kept", "http://127.0.0.1:8080/a/", "https://127.0.0.1:8080/a"),
    (
        "query sorted by name then value",
        "https://example.com/s?b=2&a=1&a=0",
        "https://example.com/s?a=0&a=1&b=2",
    ),
    ("blank values kept", "https://example.com/s?flag&q=", "https://example.com/s?flag=&q="),
    (
        "escapes normalised",
        "https://example.com/s?q=a%20b&r=c+d",
        "https://example.com/s?q=a+b&r=c+d",
    ),
    ("trailing slash dropped", "https://example.com/news/story/", "https://example.com/news/story"),
    ("root stays /", "https://example.com", "https://example.com/"),
    (
        "repeated slashes collapsed",
        "https://example.com//news///story",
        "https://example.com/news/story",
    ),
    ("spaces around trimmed", "  https://example.com/a  ", "https://example.com/a"),
    (
        "all at once",
        "HTTP://www.Example.com/news/story/?utm_source=x&b=2&a=1&_ga=3#top",
        "https://example.com/news/story?a=1&b=2",
    ),
]


@pytest.mark.parametrize(("why", "found", "expected"), CASES, ids=[c[0] for c in CASES])
def test_canonical_url(why: str, found: str, expected: str) -> None:
    assert canonical_url(found) == expected
    assert canonical_url(expected) == expected  # a canonical URL is its own canonical form


def test_loader_and_crawler_key_a_url_alike() -> None:
    link = "http://www.Example.com/story/?ncid=rss&id=3&_ga=1&utm_medium=feed"
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>Story</title><link>{link.replace('&', '&amp;')}</link>"
        "<description>Body.</description><pubDate>Mon, 01 Jun 2026 10:00:00 GMT</pubDate>"
        "</item></channel></rss>"
    ).encode()
    entry = parse_feed(feed, source="T", now=datetime(2026, 6, 2, tzinfo=UTC)).entries[0]
    loaded = make_canonical_id(given=None, url=link, kind="news", chash="x")
    assert entry.canonical == loaded == "https://example.com/story?id=3"
    # what the crawler requests: the link as published, tracking parameters removed
    assert entry.link == strip_tracking(link) == "http://www.Example.com/story/?id=3"


def test_the_legacy_key_kept_the_crawlers_extra_parameters() -> None:
    url = "https://example.com/a?ncid=rss&utm_source=x&id=1"
    assert legacy_canonical_url(url) == "https://example.com/a?id=1&ncid=rss"
    assert canonical_url(url) == "https://example.com/a?id=1"

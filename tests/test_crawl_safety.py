"""Hostile feed bodies and destinations: what the crawlers refuse to read or reach."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from crawler.news_feed import FeedError, parse_feed

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

LOCAL_FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Local secrets</title>
<item><title>Secret from disk</title><link>https://example.org/secret</link></item>
</channel></rss>"""


def test_a_body_naming_a_local_file_is_content_not_a_path(tmp_path) -> None:
    secret = tmp_path / "secret-feed.xml"
    secret.write_bytes(LOCAL_FEED)
    for body in (str(secret).encode(), f"file://{secret}".encode()):
        with pytest.raises(FeedError, match="source .Evil.: (malformed|not an RSS)"):
            parse_feed(body, source="Evil", now=NOW)
    with pytest.raises(TypeError, match="must be bytes, not str"):
        parse_feed(str(secret), source="Evil", now=NOW)  # type: ignore[arg-type]


@pytest.mark.timeout(20)
def test_device_and_fifo_paths_neither_hang_nor_exhaust_memory(tmp_path) -> None:
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    for path in (b"/dev/zero", str(fifo).encode()):
        with pytest.raises(FeedError, match="source .Evil.: (malformed|not an RSS)"):
            parse_feed(path, source="Evil", now=NOW)


def test_oversized_feed_bodies_are_refused_before_parsing() -> None:
    body = LOCAL_FEED.replace(b"<title>Local", b"<title>" + b"x" * 5000 + b" Local")
    with pytest.raises(FeedError, match=r"source 'Big'.*more than the 4,000-byte cap"):
        parse_feed(body, source="Big", now=NOW, max_bytes=4000)
    assert len(parse_feed(body, source="Big", now=NOW).entries) == 1

"""Hostile feed bodies and destinations: what the crawlers refuse to read or reach."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from core.settings import ConfigError, load_settings
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


# -- destinations ---------------------------------------------------------------------------


def test_non_public_addresses_are_refused_unless_their_network_is_allowed() -> None:
    from crawler.netguard import NetworkPolicy

    policy = NetworkPolicy()
    for address, kind in (
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.1", "multicast"),
    ):
        assert kind in policy.refusal(address), address
    for public in ("93.184.215.14", "2606:4700::6810:84e5"):
        assert policy.refusal(public) == ""
    allowed = NetworkPolicy.from_settings(load_settings(crawl_allowed_networks=["127.0.0.1/32"]))
    assert allowed.refusal("127.0.0.1") == "" and allowed.refusal("::ffff:127.0.0.1") == ""
    assert "loopback" in allowed.refusal("127.0.0.2")


def test_urls_are_checked_by_the_addresses_their_host_resolves_to() -> None:
    from crawler.netguard import NetworkPolicy, RefusedDestination

    policy = NetworkPolicy()
    for url in (
        "http://localhost:8080/admin",  # a name, resolved from /etc/hosts
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://0x7f000001/",  # 127.0.0.1 written in hexadecimal
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
    ):
        with pytest.raises(RefusedDestination, match="refused"):
            policy.check_url(url)


def test_a_bad_allowed_network_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="crawl_allowed_networks.*'intranet' is not a network"):
        load_settings(crawl_allowed_networks=["intranet"])


def test_article_pages_are_followed_on_the_feed_host_only_unless_widened() -> None:
    from crawler.news_sources import NewsSource

    source = NewsSource("Lab", "https://blog.example.org/feed.xml")
    assert source.follows("https://blog.example.org/posts/1")
    assert source.follows("https://www.blog.example.org/posts/1")
    assert not source.follows("https://evil.example.com/posts/1")
    assert source.follows("https://evil.example.com/posts/1", also_hosts=["*"])
    wider = NewsSource("Lab", "https://blog.example.org/feed.xml", follow_hosts=["example.com"])
    assert wider.follows("https://news.example.com/a") and not wider.follows("https://x.org/a")

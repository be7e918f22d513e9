"""Fault injection, fuzz part: malformed feeds and pages thrown at the two crawl parsers.

Hypothesis builds bodies from pieces that break parsers in practice: truncated and
unbalanced markup, wrong or lying encodings, byte-order marks, control and invalid
characters, entity bombs, deep nesting, huge attributes, bodies that are paths or URLs, and
plain noise. Each property: the parser answers (a ParsedFeed / an Article) or, for feeds,
raises FeedError naming the source; it never crashes otherwise, never goes past the
per-example deadline, and the process's peak memory stays bounded.

1,200 feeds and 1,200 pages run in about half a minute on one core.
"""

from __future__ import annotations

import resource
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crawler.news_extract import Article, extract_article
from crawler.news_feed import FeedError, ParsedFeed, parse_feed

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
FUZZ = settings(
    max_examples=1200,
    deadline=timedelta(seconds=5),  # a hang is a failure, not a slow test
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run: a failure is reproducible
    database=None,
)
MAX_RSS_GROWTH = 512 * 1024  # KiB: peak resident memory the whole fuzz run may add

FEED_PIECES = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<?xml version="1.0" encoding="utf-16"?>',
    '<?xml version="1.0" encoding="x-no-such-charset"?>',
    '<?xml version="1.0" encoding="windows-1252"?>',
    '<rss version="2.0">',
    "<rss>",
    "</rss>",
    "<channel>",
    "</channel>",
    '<feed xmlns="http://www.w3.org/2005/Atom">',
    "</feed>",
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
    "<item>",
    "</item>",
    "<entry>",
    "</entry>",
    "<title>",
    "</title>",
    "<link>",
    "</link>",
    '<link href="',
    '"/>',
    "<description>",
    "</description>",
    "<content:encoded><![CDATA[<p>text</p>",
    "]]></content:encoded>",
    "<pubDate>Fri, 09 Feb 2024 10:00:15 GMT</pubDate>",
    "<pubDate>Feb 31 99999 25:61</pubDate>",
    "<updated>0000-00-00T00:00:00Z</updated>",
    "<guid isPermaLink='true'>",
    "</guid>",
    "https://example.org/a?utm_source=x&amp;id=1",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://127.0.0.1:1/",
    "/dev/zero",
    "//example.org/relative",
    "&amp;",
    "&nbsp;",
    "&#0;",
    "&#x110000;",
    "&undefined;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    "&d;",
    '<!DOCTYPE rss [<!ENTITY ext SYSTEM "file:///etc/passwd">]>',
    "&ext;",
    "<a " + "x" * 5000 + "='1'>",
    "<x>" * 300,
    "\x00",
    "\ufeff",
    "\ud7ff\ue000\ufffe",
    "<html><body>Not a feed</body></html>",
    "<!doctype html>",
]

PAGE_PIECES = [
    "<!doctype html>",
    "<html>",
    '<html lang="fr-FR">',
    '<html lang="&#0;">',
    "</html>",
    "<head>",
    '<meta charset="x-bogus">',
    '<meta name="author" content="',
    '<meta property="article:published_time" content="9999-99-99">',
    '<script type="application/ld+json">{"author": [{"name": ',
    "}]}</script>",
    "<script>while(true){}</script>",
    "<style>p{}</style>",
    "<title>",
    "</title>",
    "<body>",
    "<article>",
    "</article>",
    "<main>",
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "Graph neural networks detect fraud in payment graphs. ",
    "Les réseaux de neurones détectent la fraude. ",
    "<nav><a href='/'>Home</a></nav>",
    "<div class='cookie-consent'>Accept all cookies</div>",
    "<a href='javascript:alert(1)'>x</a>",
    "<!--",
    "-->",
    "<![CDATA[",
    "<svg><foreignObject><p>",
    "<math><mi>",
    "<template><p>hidden</p></template>",
    "<table><tr><td>",
    "<div>" * 400,
    "</div>" * 50,
    "<p " + "a" * 5000 + ">",
    "&#x110000;&#0;&bogus;",
    "\x00\x01\x02",
    "\ufeff",
    "\udcff",  # a lone surrogate, as a bad decoder leaves it
]


def noise(pieces: list[str]) -> st.SearchStrategy[str]:
    """Concatenations of risky pieces and random text, in any order."""
    piece = st.one_of(st.sampled_from(pieces), st.text(max_size=40))
    return st.lists(piece, max_size=60).map("".join)


encodings = st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252", "utf-32"])


@st.composite
def feed_bodies(draw: st.DrawFn) -> bytes:
    text = draw(noise(FEED_PIECES))
    body = text.encode(draw(encodings), errors="replace")
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    if draw(st.booleans()):
        body = body[:cut]  # truncated mid-way, possibly mid-character
    if draw(st.booleans()):
        body += draw(st.binary(max_size=200))
    return body


@st.composite
def page_texts(draw: st.DrawFn) -> str:
    text = draw(noise(PAGE_PIECES))
    if draw(st.booleans()):
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    return text


@pytest.fixture(scope="module")
def rss_before() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@FUZZ
@given(body=feed_bodies(), content_type=st.sampled_from(["", "text/xml", "text/html", "x/y"]))
@example(body=b"<item>&#x110000;", content_type="")  # found by this test: a crash
def test_malformed_feeds_give_a_feed_or_a_feed_error(
    rss_before: int, body: bytes, content_type: str
) -> None:
    try:
        feed = parse_feed(body, source="Fuzz", now=NOW, content_type=content_type)
    except FeedError as exc:
        assert "'Fuzz'" in str(exc)
        return
    assert isinstance(feed, ParsedFeed)
    for entry in feed.entries:
        assert entry.link.startswith(("http://", "https://"))
        assert entry.published is None or entry.published <= NOW + timedelta(minutes=10)


@FUZZ
@given(page=page_texts())
@example(page="<body><script>while(true){}</script>\x1f")  # found by this test: a crash
def test_malformed_pages_give_an_article(page: str) -> None:
    article = extract_article(page)
    assert isinstance(article, Article) and isinstance(article.text, str)


def test_the_fuzz_run_kept_memory_bounded(rss_before: int) -> None:
    # Runs after the two fuzz tests (file order); the fixture was taken before the first.
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown < MAX_RSS_GROWTH, f"peak memory grew by {grown // 1024} MiB"

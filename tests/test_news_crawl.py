"""The news crawler end to end: Scrapy in a child process against real HTTP servers on 127.0.0.1.

The servers serve the feeds and pages of tests/fixtures/ (written for the tests, links rewritten
to loopback) and bad cases built here. Each crawl_news call starts a fresh child process.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from core.settings import load_settings
from core.store import Store
from crawler.news_crawl import crawl_news
from crawler.news_sources import feed_states, set_enabled
from jobs.cli import cli
from tests.conftest import fixture
from tests.loopback import LoopbackServer, Request, Response

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
HTML = "text/html; charset=utf-8"
PAGES = [  # tests/fixtures/pages: the first is a long list article, the last has no body
    "certifications.html",
    "robotics.html",
    "consortium.html",
    "funding.html",
    "pulse.html",
    "smallbiz.html",
    "rendered.html",
]


def conditional(
    body: bytes, content_type: str, *, etag: str = "", last_modified: str = ""
) -> callable:
    """A feed route that answers 304 to a request carrying its current validators."""

    def handler(request: Request) -> Response:
        headers = {"Content-Type": content_type}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        if etag and request.headers.get("if-none-match") == etag:
            return Response(status=304, headers=headers)
        if last_modified and request.headers.get("if-modified-since") == last_modified:
            return Response(status=304, headers=headers)
        return Response(body, headers=headers)

    return handler


def use_sources(monkeypatch: pytest.MonkeyPatch, sources: list[dict], **extra: str):
    """Point the settings (API and CLI alike) at loopback sources only.

    The loopback server is on 127.0.0.1, which the crawlers refuse by default: the tests
    allow that one address explicitly.
    """
    monkeypatch.setenv("VEILLE_NEWS_SOURCES", json.dumps(sources))
    monkeypatch.setenv("VEILLE_CRAWL_ALLOWED_NETWORKS", '["127.0.0.1/32"]')
    monkeypatch.setenv("VEILLE_NEWS_DEFAULT_SOURCES", "false")
    monkeypatch.setenv("VEILLE_NEWS_DOWNLOAD_DELAY", "0")
    monkeypatch.setenv("VEILLE_NEWS_CONCURRENCY_PER_DOMAIN", "8")
    monkeypatch.setenv("VEILLE_NEWS_TIMEOUT", "10")
    monkeypatch.setenv("VEILLE_NEWS_RETRY_TIMES", "1")
    monkeypatch.setenv("VEILLE_MODEL", "hash:64")
    for key, value in extra.items():
        monkeypatch.setenv(f"VEILLE_{key.upper()}", value)
    return load_settings()


def run_for(report, name: str):
    return next(r for r in report.runs if r.source == f"news:{name}")


def test_feeds_pages_failures_and_the_304_path(monkeypatch, store: Store) -> None:
    with LoopbackServer() as server:
        base = server.url("")
        batch = fixture("feeds", "letters_atom.xml").read_bytes()
        batch = batch.replace(b"https://letters.example.org", base.encode())
        slugs = re.findall(rb"/weekly/([\w-]+)/", batch)
        assert len(slugs) == 16
        for slug, page in zip(slugs, PAGES, strict=False):  # 7 pages; the rest 404
            body = fixture("pages", page).read_bytes()
            server.route(
                f"/weekly/{slug.decode()}/", Response(body, headers={"Content-Type": HTML})
            )
        private = slugs[7].decode()
        batch = batch.replace(f"/weekly/{private}/".encode(), f"/private/{private}/".encode())
        server.route("/robots.txt", Response(b"User-agent: *\nDisallow: /private/\n"))
        server.route("/batch.xml", conditional(batch, ATOM, etag='"batch-1"'))
        lab = fixture("feeds", "lab_news_rss.xml").read_bytes()
        lab = lab.replace(b"https://lab.example.com", base.encode())
        modified = "Tue, 28 Apr 2026 18:05:00 GMT"
        server.route("/lab.xml", conditional(lab, RSS, last_modified=modified))
        server.route("/gone.xml", Response(b"gone", status=410))
        blog = fixture("feeds", "research_blog_rss.xml").read_bytes()
        server.route("/broken.xml", Response(blog[: len(blog) // 2], headers={"Content-Type": RSS}))
        page = fixture("pages", "consortium.html").read_bytes()
        server.route("/html.xml", Response(page, headers={"Content-Type": HTML}))
        server.route("/loop.xml", Response(status=302, headers={"Location": "/loop.xml"}))
        settings = use_sources(
            monkeypatch,
            [
                {
                    "name": "Batch",
                    "feed_url": server.url("/batch.xml"),
                    "drop_authors": ["Feed Relay"],
                },
                {"name": "Lab", "feed_url": server.url("/lab.xml"), "follow_pages": False},
                {"name": "Gone", "feed_url": server.url("/gone.xml")},
                {"name": "Missing", "feed_url": server.url("/missing.xml")},
                {"name": "Broken", "feed_url": server.url("/broken.xml")},
                {"name": "Moved", "feed_url": server.url("/html.xml")},
                {"name": "Loop", "feed_url": server.url("/loop.xml")},
            ],
        )

        report = crawl_news(store, settings, now=NOW)

        assert len(report.runs) == 7 and report.new == 16 + 24
        assert sorted(report.failing) == ["Broken", "Gone", "Loop", "Missing", "Moved"]
        errors = {name: run_for(report, name).last_error for name in report.failing}
        assert "'Gone'" in errors["Gone"] and "HTTP 410 Gone" in errors["Gone"]
        assert "HTTP 404" in errors["Missing"]
        assert "malformed or truncated XML" in errors["Broken"] and "'Broken'" in errors["Broken"]
        assert "HTML page" in errors["Moved"]
        assert "too many redirects" in errors["Loop"]
        assert all(run_for(report, n).status == "error" for n in report.failing)
        batch_run = run_for(report, "Batch")
        assert (batch_run.status, batch_run.fetched, batch_run.new) == ("ok", 16, 16)
        assert batch_run.errors == 8 and "HTTP 404" in batch_run.last_error  # pages 9-16
        assert run_for(report, "Lab").new == 24 and run_for(report, "Lab").pages == 1

        # An item whose page was read: page text, page author, feed summary and date.
        first = store.resolve(f"{base}/weekly/{slugs[0].decode()}/")
        assert first.kind == "news" and first.source == "Batch"
        assert first.url == first.canonical_id and first.url.startswith("https://127.0.0.1:")
        assert first.extra["text_from"] == "page" and "certifications" in first.text
        assert first.authors == ["Lucía Brennan"]  # from the page's JSON-LD
        assert first.extra["summary"].startswith("The Weekly Gradient, from the editor:")
        assert first.published == datetime(2026, 4, 17, 16, 15, tzinfo=UTC)
        assert first.extra["language"] == "en" and first.extra["language_from"] == "page html"
        # robots.txt: the page was not fetched, the feed summary was kept.
        assert server.requests_to(f"/private/{private}/") == []
        hidden = store.resolve(f"{base}/private/{private}/")
        assert "page_disallowed_by_robots" in hidden.extra["flags"]
        assert hidden.text == hidden.extra["summary"] and hidden.text
        missing_page = store.resolve(f"{base}/weekly/{slugs[10].decode()}/")
        assert "page_http_404" in missing_page.extra["flags"]
        agents = {r.headers["user-agent"] for r in server.requests}
        assert agents == {settings.user_agent}
        assert len(server.requests_to("/gone.xml")) == 1  # 4xx is not retried

        # Second crawl, same process: unchanged feeds cost a 304 and store nothing.
        pages_before = sum(1 for r in server.requests if r.path.startswith("/weekly/"))
        again = crawl_news(store, settings, now=NOW)
        assert again.new == 0 and again.updated == 0
        assert sorted(again.not_modified) == ["Batch", "Lab"]
        assert server.requests_to("/batch.xml")[-1].headers["if-none-match"] == '"batch-1"'
        assert server.requests_to("/lab.xml")[-1].headers["if-modified-since"] == modified
        assert sum(1 for r in server.requests if r.path.startswith("/weekly/")) == pages_before
        assert store.count() == 16 + 24
        assert len(store.recent_runs(10, source="news:Batch")) == 2
        assert feed_states(store)["Gone"].failures == 2

    result = CliRunner().invoke(cli, ["sources"])
    assert result.exit_code == 0, result.output
    assert "Gone  [FAILING (2 crawls in a row)]" in result.output
    assert "HTTP 410" in result.output and "Batch  [ok, feed unchanged]" in result.output


ARTICLE_HTML = """<!doctype html><html lang="{lang}"><head><title>{title}</title></head><body>
<nav><a href="/">Home</a></nav><div class="cookie-consent"><p>We use cookies on this site,
please accept them all so that we can measure everything you do here.</p></div>
<article>{paragraphs}</article><footer><p>Copyright Example Media 2026.</p></footer>
</body></html>"""


def article(text: str, *, lang: str = "en", title: str = "Story") -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return ARTICLE_HTML.format(lang=lang, title=title, paragraphs=paragraphs).encode()


def test_same_story_syndicated_copy_and_bad_items(monkeypatch, store: Store) -> None:
    from crawler.news_extract import extract_article

    story = extract_article(fixture("pages", "consortium.html").read_text()).text
    french = (
        "Le consortium américain sur la sécurité de l'intelligence artificielle a été créé "
        "par le gouvernement et il est chargé de proposer des normes pour les modèles. " * 4
    )
    with LoopbackServer() as server:
        base = server.url("")
        wire = f"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>
        <title>Wire</title><link>{base}/</link>
        <item><title>&lt;b&gt;Banks&lt;/b&gt; &amp;amp; &lt;script&gt;alert(1)&lt;/script&gt;fraud
        </title><link>{base}/story/?utm_source=wire&amp;utm_medium=rss</link>
        <description>A consortium on AI safety.</description>
        <pubDate>Fri, 09 Feb 2024 10:00:15 GMT</pubDate></item>
        <item><title>Sans date</title><link>{base}/fr/article</link>
        <description>Un consortium.</description></item>
        <item><title>From the future</title><link>{base}/future</link>
        <description>Summary of a very large page.</description>
        <pubDate>Mon, 01 Jan 2035 00:00:00 GMT</pubDate></item>
        <item><title>Loops</title><link>{base}/loop-page</link>
        <description>Summary of a page that redirects to itself.</description>
        <pubDate>Fri, 09 Feb 2024 10:00:15 GMT</pubDate></item>
        </channel></rss>"""
        mirror = f"""<?xml version="1.0" encoding="utf-8"?>
        <feed xmlns="http://www.w3.org/2005/Atom"><title>Mirror</title><id>m</id>
        <updated>2024-02-10T00:00:00Z</updated>
        <entry><title>Banks and fraud</title><id>1</id><updated>2024-02-09T12:00:00Z</updated>
        <link href="http://127.0.0.1:{server.port}/story?fbclid=abc&amp;utm_campaign=x"/></entry>
        <entry><title>AI safety consortium (syndicated)</title><id>2</id>
        <updated>2024-02-10T00:00:00Z</updated><link href="{base}/copy/aisic"/>
        <summary>Republished.</summary></entry></feed>"""
        server.route("/wire.xml", Response(wire.encode(), headers={"Content-Type": RSS}))
        # The mirror answers once the wire's story page is served, so the wire's version of
        # the shared story is the one kept.
        story_served = threading.Event()

        def story_page(_request: Request) -> Response:
            story_served.set()
            return Response(article(story), headers={"Content-Type": HTML})

        def late_mirror(_request: Request) -> Response:
            story_served.wait(60)
            return Response(mirror.encode(), headers={"Content-Type": ATOM})

        server.route("/mirror.xml", late_mirror)
        for path in ("/story", "/story/"):  # as most sites, with or without the slash
            server.route(path, story_page)
        copy = "Republished from Wire with permission.\n\n" + story.rsplit("\n\n", 1)[0]
        server.route("/copy/aisic", Response(article(copy), headers={"Content-Type": HTML}))
        server.route(
            "/fr/article", Response(article(french, lang="fr-FR"), headers={"Content-Type": HTML})
        )
        server.route(
            "/future",
            Response(b"<html><body>" + b"<p>x</p>" * 40_000, headers={"Content-Type": HTML}),
        )
        server.route("/loop-page", Response(status=302, headers={"Location": "/loop-page"}))
        settings = use_sources(
            monkeypatch,
            [
                {"name": "Wire", "feed_url": server.url("/wire.xml")},
                {"name": "Mirror", "feed_url": server.url("/mirror.xml")},
            ],
            news_max_page_bytes="100000",
        )
        report = crawl_news(store, settings, now=NOW)

    assert report.failing == [] and report.fetched == 6
    # The same story under two tracking-laden URLs is one document.
    doc = store.resolve(f"{base}/story/?utm_source=wire")
    assert doc is not None and doc.canonical_id == f"https://127.0.0.1:{server.port}/story"
    assert store.resolve(f"{base}/story?fbclid=abc").id == doc.id
    # The near-identical copy under another URL is recorded as a duplicate, not stored twice.
    copy_doc = store.resolve(f"{base}/copy/aisic")
    assert copy_doc.id == doc.id and store.duplicate_count() == 1
    assert store.count() == 4
    assert doc.source == "Wire" and doc.title == "Banks & fraud"  # tags and script gone
    assert "title_markup_removed" in doc.extra["flags"]
    assert run_for(report, "Mirror").new == 0 and run_for(report, "Wire").new == 4
    wire_doc = doc
    assert "Ferrante" in wire_doc.text and "cookies" not in wire_doc.text
    # No date: first seen; non-English: kept and marked.
    fr = store.resolve(f"{base}/fr/article")
    assert fr.published == NOW and "no_date" in fr.extra["flags"]
    assert fr.language == fr.extra["language"] == "fr" and "non_english" in fr.extra["flags"]
    # A future date is clamped to the crawl time; a huge page keeps the feed summary.
    future = store.resolve(f"{base}/future")
    assert future.published == NOW and "future_date" in future.extra["flags"]
    assert future.extra["feed_date"].startswith("2035-01-01")
    assert "page_too_large" in future.extra["flags"]
    assert future.text == "Summary of a very large page."
    loops = store.resolve(f"{base}/loop-page")
    assert "page_redirect_loop" in loops.extra["flags"] and loops.text.startswith("Summary")


def test_cli_sources_add_disable_and_crawl_news(monkeypatch) -> None:
    runner = CliRunner()
    with LoopbackServer() as server:
        base = server.url("")
        batch = fixture("feeds", "letters_atom.xml").read_bytes()
        server.route(
            "/batch.xml",
            Response(
                batch.replace(b"https://letters.example.org", base.encode()),
                headers={"Content-Type": ATOM},
            ),
        )
        blog = fixture("feeds", "research_blog_rss.xml").read_bytes()
        server.route(
            "/research.xml",
            Response(
                blog.replace(b"https://research.example.net", base.encode()),
                headers={"Content-Type": RSS},
            ),
        )
        server.route("/gone.xml", Response(b"", status=410))
        use_sources(monkeypatch, [])

        result = runner.invoke(cli, ["sources"])
        assert "No news source" in result.output
        result = runner.invoke(
            cli, ["sources", "add", "Batch", server.url("/batch.xml"), "--no-follow-pages"]
        )
        assert result.exit_code == 0 and "Added Batch" in result.output
        result = runner.invoke(cli, ["sources", "add", "batch", server.url("/batch.xml")])
        assert result.exit_code == 1 and "already exists" in result.output
        result = runner.invoke(cli, ["sources", "add", "Bad", "ftp://example.org/feed"])
        assert result.exit_code == 1 and "not an http(s) URL" in result.output
        runner.invoke(
            cli, ["sources", "add", "Research", server.url("/research.xml"), "--no-follow-pages"]
        )
        runner.invoke(cli, ["sources", "add", "Gone", server.url("/gone.xml")])

        result = runner.invoke(cli, ["crawl", "news", "--source", "batch", "--no-index"])
        assert result.exit_code == 0, result.output
        assert "16 new" in result.output and "Indexed" not in result.output
        result = runner.invoke(cli, ["crawl", "news", "--source", "Nope"])
        assert result.exit_code == 1 and "no news source named 'Nope'" in result.output

        result = runner.invoke(cli, ["sources", "disable", "Batch"])
        assert result.exit_code == 0 and "Disabled Batch" in result.output
        result = runner.invoke(cli, ["crawl", "news"])  # Research and Gone; Batch is off
        assert result.exit_code == 0, result.output
        assert "Research: 9 items in the feed — 9 new" in result.output
        assert "Gone: FAILED" in result.output and "HTTP 410" in result.output
        assert "Indexed: 25 documents searchable" in result.output
        assert "Batch" not in result.output.split("Indexed")[0]

    result = runner.invoke(cli, ["sources"])
    assert "Batch  [disabled]" in result.output
    assert "Gone  [FAILING (1 crawl in a row)]" in result.output
    assert "9 new, 0 updated" in result.output
    result = runner.invoke(cli, ["sources", "--json"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["name"]: r["failing"] for r in rows} == {
        "Batch": False,
        "Research": False,
        "Gone": True,
    }
    crawled = next(r for r in rows if r["name"] == "Research")["last_crawl"]
    assert "T" in crawled and datetime.fromisoformat(crawled).tzinfo is not None  # ISO 8601
    result = runner.invoke(cli, ["sources", "enable", "Batch"])
    assert "Enabled Batch" in result.output
    result = runner.invoke(cli, ["stats", "--json"])
    runs = {r["source"]: r for r in json.loads(result.output)["crawl_runs"]}
    assert runs["news:Research"]["new"] == 9 and runs["news:Gone"]["status"] == "error"


def test_retries_timeouts_page_retry_and_development_http_cache(monkeypatch, store) -> None:
    blog = fixture("feeds", "research_blog_rss.xml").read_bytes()
    story = fixture("pages", "funding.html").read_bytes()
    served = {"feed": 0, "page": 0}

    def flaky(request: Request) -> Response:
        served["feed"] += 1
        if served["feed"] == 1:
            return Response(b"busy", status=503)
        return Response(blog, headers={"Content-Type": RSS})

    def page(request: Request) -> Response:
        served["page"] += 1
        if served["page"] <= 2:  # the first crawl's request and its retry
            return Response(b"overloaded", status=503)
        return Response(story, headers={"Content-Type": HTML})

    with LoopbackServer() as server:
        one = rss_feed([("Tallyfin raises $32M", server.url("/tallyfin"), "Short summary.")])
        server.route("/flaky.xml", flaky)
        stalled = threading.Event()  # the slow feed answers only after the crawl (timed out)
        server.route("/slow.xml", Response(blog, headers={"Content-Type": RSS}, hold=stalled))
        server.route("/one.xml", Response(one, headers={"Content-Type": RSS}))
        server.route("/tallyfin", page)
        settings = use_sources(
            monkeypatch,
            [
                {"name": "Flaky", "feed_url": server.url("/flaky.xml"), "follow_pages": False},
                {"name": "Slow", "feed_url": server.url("/slow.xml"), "follow_pages": False},
                {"name": "One", "feed_url": server.url("/one.xml")},
            ],
            news_timeout="3",
            news_http_cache="true",
        )
        try:
            report = crawl_news(store, settings, now=NOW)
        finally:
            stalled.set()
        assert run_for(report, "Flaky").new == 9 and served["feed"] == 2  # 503, then retried
        assert report.failing == ["Slow"]
        assert "timed out" in run_for(report, "Slow").last_error
        assert len(server.requests_to("/slow.xml")) == 2  # one retry
        tallyfin = store.resolve(server.url("/tallyfin"))
        assert tallyfin.text == "Short summary." and "page_http_503" in tallyfin.extra["flags"]
        assert (
            run_for(report, "One").errors == 1 and "HTTP 503" in run_for(report, "One").last_error
        )

        # Next crawl: the development cache under the data directory answers for the feeds,
        # and the page that failed for a passing reason is read again.
        assert (settings.data_dir / "http-cache").is_dir()
        set_enabled(store, settings, "Slow", False)
        again = crawl_news(store, settings, now=NOW)
        assert served["feed"] == 2 and again.failing == []
        assert (again.new, again.updated) == (0, 1)
        tallyfin = store.resolve(server.url("/tallyfin"))
        assert "Tallyfin" in tallyfin.text and tallyfin.extra["text_from"] == "page"
        assert tallyfin.extra["page_attempts"] == 2 and tallyfin.extra["flags"] == []


def rss_feed(items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link><description>{summary}</description>"
        "<pubDate>Thu, 21 Apr 2016 11:30:14 GMT</pubDate></item>"
        for title, link, summary in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>http://127.0.0.1/</link>{body}</channel></rss>"
    ).encode()

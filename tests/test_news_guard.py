"""Where the news crawler may connect, end to end against loopback servers.

127.0.0.1 is where the test servers listen, so the tests allow it explicitly; 127.0.0.2,
::1, private and link-local addresses stay refused, and nothing listens there: a request that
went out anyway would show up as a connection error, not as a refusal.
"""

from __future__ import annotations

from core.store import Store
from crawler.news_crawl import crawl_news
from tests.loopback import LoopbackServer, Response
from tests.test_news_crawl import HTML, NOW, RSS, article, rss_feed, run_for, use_sources

STORY = "A long enough article about graph neural networks for fraud detection. " * 8


def test_a_loopback_feed_is_refused_by_default(monkeypatch, store: Store) -> None:
    with LoopbackServer() as server:
        server.route("/feed.xml", Response(rss_feed([]), headers={"Content-Type": RSS}))
        settings = use_sources(
            monkeypatch, [{"name": "Local", "feed_url": server.url("/feed.xml")}]
        )
        monkeypatch.delenv("VEILLE_CRAWL_ALLOWED_NETWORKS")
        settings = settings.model_copy(update={"crawl_allowed_networks": []})
        report = crawl_news(store, settings, now=NOW)
        assert server.requests == []  # neither robots.txt nor the feed was requested
    assert report.failing == ["Local"]
    error = run_for(report, "Local").last_error
    assert "refused 127.0.0.1" in error and "loopback" in error and "'Local'" in error


def test_item_links_and_redirects_to_internal_addresses_are_refused(
    monkeypatch, store: Store
) -> None:
    with LoopbackServer() as server:
        port = server.port
        internal = [
            f"http://127.0.0.2:{port}/admin",
            f"http://[::1]:{port}/admin",
            "http://10.0.0.1/admin",
            "http://169.254.169.254/latest/meta-data/",
            "http://192.168.1.1/router",
        ]
        items = [(f"Internal {i}", link, "Look inside.") for i, link in enumerate(internal)]
        items += [
            ("Fine story", server.url("/story"), "Public summary."),
            ("Sneaky story", server.url("/sneaky"), "Summary of a page that redirects inside."),
        ]
        server.route("/feed.xml", Response(rss_feed(items), headers={"Content-Type": RSS}))
        server.route("/story", Response(article(STORY), headers={"Content-Type": HTML}))
        server.route(
            "/sneaky",
            Response(status=302, headers={"Location": f"http://127.0.0.2:{port}/secret"}),
        )
        settings = use_sources(monkeypatch, [{"name": "Wire", "feed_url": server.url("/feed.xml")}])
        report = crawl_news(store, settings, now=NOW)

    run = run_for(report, "Wire")
    assert run.status == "ok" and run.new == 2 and store.count() == 2
    for link in internal:
        assert store.resolve(link) is None
    assert "item link not stored, refused" in run.last_error or "refused" in run.last_error
    fine = store.resolve(server.url("/story"))
    assert fine.extra["text_from"] == "page" and "graph neural networks" in fine.text
    sneaky = store.resolve(server.url("/sneaky"))
    assert "page_refused" in sneaky.extra["flags"]  # refused at the redirect, not connected
    assert sneaky.text == "Summary of a page that redirects inside."
    assert "page_url" not in sneaky.extra


def crawl_in_child_without_the_middleware(spec: dict) -> None:
    """A news crawl whose DestinationGuard is removed: only the resolver is left to refuse."""
    from crawler import news_crawl, news_spider

    original = news_spider.scrapy_settings

    def without_guard(settings, **kwargs):
        values = original(settings, **kwargs)
        values["DOWNLOADER_MIDDLEWARES"] = {}
        return values

    news_spider.scrapy_settings = without_guard
    news_crawl.run_in_child(spec)


def test_the_address_connected_to_is_checked_again_by_the_resolver(monkeypatch, store) -> None:
    """DNS rebinding: a name checked once can resolve elsewhere when Scrapy connects."""
    import multiprocessing

    from crawler.news_sources import select_sources

    with LoopbackServer() as server:
        server.route("/feed.xml", Response(rss_feed([]), headers={"Content-Type": RSS}))
        settings = use_sources(
            monkeypatch, [{"name": "Local", "feed_url": server.url("/feed.xml")}]
        )
        settings = settings.model_copy(update={"crawl_allowed_networks": []})
        sources = select_sources(store, settings)
        spec = {
            "settings": settings.model_dump(),
            "sources": [s.to_json() for s in sources],
            "states": {},
            "run_ids": {s.name: store.start_run(f"news:{s.name}", now=NOW) for s in sources},
            "crawl_time": NOW,
            "log_level": "INFO",
        }
        child = multiprocessing.get_context("spawn").Process(
            target=crawl_in_child_without_the_middleware, args=(spec,)
        )
        child.start()
        child.join(120)
        assert child.exitcode == 0
        assert server.requests == []
    run = store.recent_runs(1, source="news:Local")[0]
    assert run.status == "error"
    log_text = (settings.data_dir / "logs" / "news-crawl.log").read_text()
    assert "not connecting: 127.0.0.1 resolved to 127.0.0.1, 127.0.0.1 is a loopback" in log_text

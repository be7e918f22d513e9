"""A loopback news crawl of >= 1,000 real feed items: items/s with and without article pages.

Usage: .venv/bin/python benchmarks/news_crawl.py [--items 1200] [--concurrency 16]

A real HTTP server on 127.0.0.1 (the one the tests use) serves one RSS feed built from the
real items of ../shared/data/feeds (repeated with distinct URLs until there are --items), and
for the second run one article page per item: a real page of ../shared/data/pages whose
article paragraphs are replaced by real arXiv abstracts, so every page is different and a
full extraction, near-duplicate check and store happen per item. The crawl is the real one
(Scrapy in a child process, robots.txt, AutoThrottle on) with the download delay set to 0.
The child-process start-up is measured apart with a one-item feed.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import tempfile
import time
from email.utils import format_datetime
from xml.sax.saxutils import escape

from _common import SHARED, need, peak_rss_mb, sample_records
from lxml import html as lxml_html

from core.settings import load_settings
from core.store import Store
from crawler.news_crawl import crawl_news
from crawler.news_extract import extract_article
from crawler.news_feed import parse_feed
from tests.loopback import LoopbackServer, Response

FEEDS = [
    "openai_news_rss.xml",
    "google_deepmind_blog_rss.xml",
    "google_ai_blog_rss.xml",
    "microsoft_ai_blog_rss.xml",
    "ainewsdirect_anthropic_news_atom.xml",
    "ainewsdirect_deeplearning_ai_batch_atom.xml",
    "ainewsdirect_huggingface_daily_papers_atom.xml",
]


def real_entries() -> list:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    entries = []
    for name in FEEDS:
        body = need(SHARED / "feeds" / name).read_bytes()
        entries.extend(parse_feed(body, source=name, now=now).entries)
    return entries


def big_feed(base: str, n: int) -> bytes:
    entries = real_entries()
    items = []
    for i in range(n):
        e = entries[i % len(entries)]
        round_ = i // len(entries)
        # A repeated item gets its own URL and title, so it is a new document, not a duplicate.
        title = e.title if round_ == 0 else f"{e.title} (repeat {round_})"
        slug = re.sub(r"[^a-z0-9]+", "-", e.title.lower()).strip("-")[:60] or "item"
        date = format_datetime(e.published) if e.published else ""
        items.append(
            f"<item><title>{escape(title)}</title><link>{base}/news/{i}/{slug}</link>"
            f"<guid>{base}/news/{i}/{slug}</guid><description>{escape(e.summary)}</description>"
            + (f"<pubDate>{date}</pubDate>" if date else "")
            + "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Benchmark</title><link>{base}/</link><language>en</language>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def article_pages(n: int) -> list[bytes]:
    """n distinct real-looking pages: techmonitor's page, its paragraphs swapped for abstracts."""
    raw = need(SHARED / "pages" / "techmonitor.html").read_text("utf-8")
    body_paragraphs = set(extract_article(raw).text.split("\n\n"))
    tree = lxml_html.document_fromstring(raw)
    slots = [
        i
        for i, p in enumerate(tree.iter("p"))
        if " ".join(p.text_content().split()) in body_paragraphs
    ]
    abstracts = [r["abstract"] for r in sample_records(n * len(slots) // 2 + len(slots))]
    pages = []
    for k in range(n):
        page = copy.deepcopy(tree)
        paragraphs = list(page.iter("p"))
        for j, slot in enumerate(slots):
            p = paragraphs[slot]
            for child in list(p):
                p.remove(child)
            p.text = " ".join(abstracts[(k * len(slots) // 2 + j) % len(abstracts)].split())
        pages.append(lxml_html.tostring(page, encoding="utf-8", doctype="<!DOCTYPE html>"))
    return pages


def crawl_once(settings, label: str, items: int) -> dict:
    store = Store.from_settings(settings)
    t0 = time.perf_counter()
    report = crawl_news(store, settings)
    seconds = time.perf_counter() - t0
    run = report.runs[0]
    stored = store.count()
    dups = store.duplicate_count()
    timings = json.loads(store.get_meta("news:last_timings") or "{}")
    store.close()
    assert run.status == "ok", run.last_error
    return {
        "label": label,
        "items": run.fetched,
        "new": run.new,
        "duplicates": dups,
        "stored": stored,
        "pages": run.pages,
        "seconds": seconds,
        "items_per_s": items / seconds,
        "timings": timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=16, help="requests per domain")
    args = parser.parse_args()
    print(f"building a feed of {args.items} real items and {args.items} distinct pages ...")
    pages = article_pages(args.items)
    with LoopbackServer() as server:
        base = server.url("")
        feed = big_feed(base, args.items)
        server.route("/robots.txt", Response(b"User-agent: *\nDisallow: /private/\n"))
        server.route("/feed.xml", Response(feed, headers={"Content-Type": "application/rss+xml"}))
        server.route("/tiny.xml", Response(big_feed(base, 1), headers={"Content-Type": "text/xml"}))
        for i, link in enumerate(re.findall(r"<link>[^<]*(/news/\d+/[^<]*)</link>", feed.decode())):
            server.route(link, Response(pages[i], headers={"Content-Type": "text/html"}))
        page_kb = sum(len(p) for p in pages) / len(pages) / 1024
        print(f"feed {len(feed) / 1024:.0f} KiB; pages {page_kb:.0f} KiB on average")
        results = []
        for label, source, follow in (
            ("warm-up (1-item feed)", "/tiny.xml", False),
            ("start-up (1-item feed)", "/tiny.xml", False),
            ("feed only", "/feed.xml", False),
            ("feed + article pages", "/feed.xml", True),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                settings = load_settings(
                    data_dir=tmp,
                    news_default_sources=False,
                    news_download_delay=0,
                    news_concurrency_per_domain=args.concurrency,
                    crawl_allowed_networks=["127.0.0.1/32"],  # the bench server is loopback
                    news_sources=[
                        {"name": "Bench", "feed_url": server.url(source), "follow_pages": follow}
                    ],
                )
                items = 1 if source == "/tiny.xml" else args.items
                results.append(crawl_once(settings, label, items))
    results = results[1:]  # the first child start also warms the OS file cache
    startup = results[0]["seconds"]
    print()
    print(
        f"{'run':<24} {'items':>6} {'new':>6} {'dups':>5} {'HTTP':>6} {'s':>7} "
        f"{'items/s':>8} {'items/s w/o start-up':>21}"
    )
    for r in results:
        steady = r["items"] / max(r["seconds"] - startup, 1e-9) if r["items"] > 1 else float("nan")
        print(
            f"{r['label']:<24} {r['items']:>6} {r['new']:>6} {r['duplicates']:>5} "
            f"{r['pages']:>6} {r['seconds']:>7.2f} {r['items_per_s']:>8.1f} {steady:>21.1f}"
        )
    for r in results[1:]:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in r["timings"].items())
        print(f"in the child, {r['label']}: {parts}")
    print(
        f"\nconcurrency per domain {args.concurrency}, download delay 0, AutoThrottle on; "
        f"peak RSS of this process {peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()

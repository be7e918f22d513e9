"""The news crawler's pure parts: feeds, URLs, extraction, duplicates.

Feeds and pages are the hand-written ones of tests/fixtures/ (each with the quirks of a kind of
site); the runs over the real feeds and pages of ../shared/data are realdata tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.models import Document
from crawler.news_dedup import JACCARD_MIN, NearDuplicateIndex, jaccard, shingles, simhash
from crawler.news_extract import extract_article, guess_language, plain_text
from crawler.news_feed import FeedError, parse_feed
from crawler.news_items import NewsItem, to_document
from tests.conftest import fixture, shared_data

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

FIXTURE_FEEDS = {
    "letters_atom.xml": ("atom10", 16),
    "lab_news_rss.xml": ("rss20", 24),
    "research_blog_rss.xml": ("rss20", 9),
    "engineering_blog_rss.xml": ("rss20", 4),
    "link_digest_atom.xml": ("atom10", 6),
    "paper_digest_atom.xml": ("atom10", 5),
}

FEED_COUNTS = {
    "openai_news_rss.xml": ("rss20", 599),
    "google_deepmind_blog_rss.xml": ("rss20", 100),
    "google_ai_blog_rss.xml": ("rss20", 20),
    "microsoft_ai_blog_rss.xml": ("rss20", 10),
    "ainewsdirect_hackernews_best_stories_atom.xml": ("atom10", 50),
    "ainewsdirect_huggingface_daily_papers_atom.xml": ("atom10", 12),
    "ainewsdirect_deeplearning_ai_batch_atom.xml": ("atom10", 16),
    "ainewsdirect_anthropic_news_atom.xml": ("atom10", 13),
}


def rss(items: str, *, encoding: str = "utf-8", lang: str = "en") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>Test feed</title><link>http://127.0.0.1/</link><language>{lang}</language>"
        f"{items}</channel></rss>"
    )


def test_feeds_parse_with_dates_links_and_authors() -> None:
    for name, (fmt, count) in FIXTURE_FEEDS.items():
        body = fixture("feeds", name).read_bytes()
        feed = parse_feed(body, source=name, now=NOW, drop_authors=["Feed Relay"])
        assert (feed.format, len(feed.entries)) == (fmt, count), name
        assert all(e.link.startswith("https://") and e.title for e in feed.entries), name
        assert all(e.published is not None and e.published <= NOW for e in feed.entries), name
        assert all("Feed Relay" not in e.authors for e in feed.entries), name  # the relay
    letters = parse_feed(fixture("feeds", "letters_atom.xml").read_bytes(), source="l", now=NOW)
    first = letters.entries[0]  # an Atom date with a UTC offset
    assert first.published == datetime(2026, 4, 17, 16, 15, tzinfo=UTC)
    assert first.link == "https://letters.example.org/weekly/issue-135/"
    blog = parse_feed(fixture("feeds", "research_blog_rss.xml").read_bytes(), source="r", now=NOW)
    first = blog.entries[0]  # an Atom <author> inside an RSS item, several <category>
    assert (
        first.title == "Field Notes: an experimental assistant that groups search results by task"
    )
    assert first.authors == ["Nadia Ferreira"] and first.tags == ["Search", "AI"]
    assert first.language == "en"
    lab = parse_feed(fixture("feeds", "lab_news_rss.xml").read_bytes(), source="lab", now=NOW)
    assert lab.entries[1].summary.endswith("new tools & talks from the teams who build them.")
    assert lab.entries[0].authors == [] and lab.entries[0].language == ""  # none declared
    links = parse_feed(fixture("feeds", "link_digest_atom.xml").read_bytes(), source="k", now=NOW)
    assert (
        links.entries[0].summary.startswith("Score: 812") and "<br" not in links.entries[0].summary
    )
    digest = parse_feed(fixture("feeds", "paper_digest_atom.xml").read_bytes(), source="d", now=NOW)
    assert [e.summary for e in digest.entries if "Announcements" in e.tags] == ["", ""]
    engineering = parse_feed(
        fixture("feeds", "engineering_blog_rss.xml").read_bytes(), source="e", now=NOW
    )
    post = engineering.entries[0]  # the whole post in content:encoded, as plain text
    assert len(post.content) > 2500 and "<p>" not in post.content and "<h2" not in post.content
    assert post.content.startswith("Why leaks matter more every year")
    assert post.summary.startswith("A regional water utility loses a fifth")
    assert post.authors == ["engblogeditors"]


@pytest.mark.realdata
def test_real_feeds_parse_with_dates_links_and_authors() -> None:
    for name, (fmt, count) in FEED_COUNTS.items():
        body = shared_data("feeds", name).read_bytes()
        feed = parse_feed(body, source=name, now=NOW, drop_authors=["AI News Direct"])
        assert (feed.format, len(feed.entries)) == (fmt, count), name
        assert all(e.link.startswith("https://") and e.title for e in feed.entries), name
        assert all(e.published is not None and e.published <= NOW for e in feed.entries), name
        assert all("AI News Direct" not in e.authors for e in feed.entries), name
    google = parse_feed(
        shared_data("feeds", "google_ai_blog_rss.xml").read_bytes(), source="g", now=NOW
    )
    first = google.entries[0]
    assert first.title == "Web Guide: An experimental AI-organized search results page"
    assert first.authors == ["Austin Wu"] and "AI" in first.tags and first.language == "en"
    microsoft = parse_feed(
        shared_data("feeds", "microsoft_ai_blog_rss.xml").read_bytes(), source="m", now=NOW
    )
    assert len(microsoft.entries[0].content) > 5000  # content:encoded, as plain text
    assert "<p>" not in microsoft.entries[0].content


def test_broken_feeds_are_clear_errors_that_name_the_source() -> None:
    body = fixture("feeds", "research_blog_rss.xml").read_bytes()
    with pytest.raises(FeedError, match=r"source 'Research'.*malformed or truncated XML at line"):
        parse_feed(body[: len(body) // 2], source="Research", now=NOW)
    page = fixture("pages", "consortium.html").read_bytes()
    with pytest.raises(FeedError, match=r"source 'Moved blog'.*HTML page \(text/html\)"):
        parse_feed(page, source="Moved blog", now=NOW, content_type="text/html; charset=utf-8")
    with pytest.raises(FeedError, match="HTML page"):  # no header, sniffed from the body
        parse_feed(page, source="Moved blog", now=NOW)
    with pytest.raises(FeedError, match=r"source 'Empty'.*empty"):
        parse_feed(b"  \n", source="Empty", now=NOW)
    with pytest.raises(FeedError, match="not an RSS or Atom feed"):
        parse_feed(b'<?xml version="1.0"?><catalog><book/></catalog>', source="X", now=NOW)


def test_encodings_dates_and_markup_in_titles() -> None:
    items = (
        "<item><title>Caf\xe9 &lt;b&gt;fort&lt;/b&gt; &amp;amp; "
        "&lt;script&gt;alert(1)&lt;/script&gt;suite</title>"
        "<link>http://127.0.0.1/a</link></item>"
        "<item><title>Later</title><link>http://127.0.0.1/b</link>"
        f"<pubDate>{(NOW + timedelta(days=30)):%a, %d %b %Y %H:%M:%S} GMT</pubDate></item>"
        "<item><title>No link</title></item>"
    )
    # Declared UTF-8 but written in Latin-1: read anyway, with a warning.
    feed = parse_feed(rss(items, lang="fr").encode("latin-1"), source="fr", now=NOW)
    first, later = feed.entries
    assert first.title == "Café fort & suite"
    assert "title_markup_removed" in first.flags and "no_date" in first.flags
    assert first.published is None and first.language == "fr"
    assert later.published == NOW and "future_date" in later.flags
    assert later.feed_date.startswith(f"{(NOW + timedelta(days=30)):%Y-%m-%d}")
    assert feed.skipped == 1 and any("encoding" in w for w in feed.warnings)
    # No declaration at all, charset only in the HTTP header.
    body = rss("<item><title>Stra\xdfe</title><link>http://127.0.0.1/c</link></item>")
    body = body.replace('<?xml version="1.0" encoding="utf-8"?>', "").encode("cp1252")
    feed = parse_feed(body, source="de", now=NOW, content_type="text/xml; charset=windows-1252")
    assert feed.entries[0].title == "Straße"


def test_plain_text_and_language_guess() -> None:
    assert plain_text("<img src=x onerror=alert(1)>Hello &amp; <i>bye</i>") == "Hello & bye"
    assert plain_text("AT&T <3 models") == "AT&T <3 models"
    assert guess_language("Le modèle est entraîné sur les données de la banque et des clients.")
    assert guess_language("Le modèle est entraîné sur les données de la banque pour les prêts") == (
        "fr"
    )
    assert guess_language("The model is trained on the data of the bank and it is fast") == "en"
    assert guess_language("GPU") == ""


# Phrases of the fixture pages' boilerplate, none of which belongs to an article.
JUNK = (
    "cookies",
    "Advertisement",
    "Subscribe",
    "Sign up",
    "Sign in",
    "Most read",
    "Most popular",
    "Related stories",
    "All rights reserved",
    "Share on",
    "Create a free account",
    "Great write-up",
    "Skip to the main content",
)


def test_pages_keep_the_article_and_its_metadata() -> None:
    """Each page of tests/fixtures/pages has its own boilerplate and its own way of naming
    the author (see manifest.json): the article and its metadata come out of every one."""
    manifest = json.loads(fixture("pages", "manifest.json").read_text())
    assert len(manifest) == 7
    for page in manifest:
        article = extract_article(fixture("pages", page["file"]).read_text("utf-8"))
        assert article.language == page["lang"] == "en", page["file"]
        assert article.authors == [page["author"]], page["file"]
        if not page["body_in_page"]:
            assert article.text == "", page["file"]  # rendered by a script: nothing to read
            continue
        assert article.text.startswith(page["starts_with"]), page["file"]
        assert len(article.text) > 1500, page["file"]
        for junk in JUNK:  # banners, ads, newsletter boxes, sidebars, comments, footers
            assert junk not in article.text, (page["file"], junk)
    consortium = extract_article(fixture("pages", "consortium.html").read_text())
    assert consortium.published[:10] == "2025-11-14"  # trafilatura gives the day
    assert consortium.text.endswith("Officials said membership would be reviewed every year.")
    certifications = extract_article(fixture("pages", "certifications.html").read_text())
    assert "certifications" in certifications.text and certifications.paragraphs > 30
    # a story split in three by ad slots is read whole, the pull quote included
    bakery = extract_article(fixture("pages", "smallbiz.html").read_text()).text
    assert "second opinion at four in the morning" in bakery
    assert bakery.endswith("not from the forecasting model itself.")


@pytest.mark.realdata
def test_real_pages_keep_the_article_and_its_metadata() -> None:
    manifest = json.loads(shared_data("pages", "manifest.json").read_text())
    for page in manifest:
        html = shared_data("pages", page["file"]).read_text("utf-8", errors="replace")
        article = extract_article(html)
        expected = page["expected_metadata_from_metascraper_snapshot"]
        assert article.language == expected["lang"] == "en"
        if page["file"] != "linkedin-pulse.html":
            assert expected["author"] in article.authors, page["file"]
        if page["file"] == "inc.html":
            continue  # rendered by JavaScript: the body is not in the saved page
        assert len(article.text) > 1500, page["file"]
        assert "cookie" not in article.text.lower()[:300], page["file"]
    techmonitor = extract_article(shared_data("pages", "techmonitor.html").read_text())
    assert techmonitor.text.startswith("US Commerce Secretary Gina Raimondo has announced")
    computerworld = extract_article(shared_data("pages", "computerworld.html").read_text())
    assert "certifications" in computerworld.text and computerworld.paragraphs > 30


ARTICLE = " ".join(
    f"Paragraph {i} explains how the bank's fraud model, a graph neural network, scores "
    f"card transactions in real time, and why analysts trust its alerts." * 2
    for i in range(6)
)


def test_extraction_drops_navigation_cookies_and_comments() -> None:
    html = f"""<!doctype html><html lang="en-GB"><head><title>T</title>
    <meta name="author" content="Ada Lovelace"></head><body>
    <header class="site-header"><nav><a href="/">Home</a> <a href="/ai">AI</a></nav></header>
    <div id="cookie-banner"><p>We use cookies to improve your experience, accept all cookies
    or manage your choices in the settings of this website.</p></div>
    <main><article><h1>Fraud</h1>
    {"".join(f"<p>{ARTICLE[i * 200 : (i + 1) * 200]}</p>" for i in range(5))}
    <div class="share-bar"><p>Share this story on every social network you can find today.</p></div>
    </article>
    <section class="comments"><p>First comment: what a great article, I loved every line of it!
    </p></section></main>
    <aside class="sidebar"><p>Most read: ten things you did not know about robots.</p></aside>
    <footer><p>Copyright 2026 Example Media, all rights reserved, terms and privacy.</p></footer>
    <script>var tracking = "do not keep me";</script></body></html>"""
    article = extract_article(html)
    assert article.text.startswith("Paragraph 0 explains")
    assert article.paragraphs == 5
    for junk in ("cookies", "Share this", "First comment", "Most read", "Copyright", "tracking"):
        assert junk not in article.text
    assert article.language == "en" and article.language_from == "html"
    assert article.authors == ["Ada Lovelace"]
    french = "<html><body><article>" + "<p>Le modèle de la banque est entraîné sur les " * 3
    french += "données des clients et il est utilisé pour les prêts.</p></article></body></html>"
    guessed = extract_article(french)
    assert (guessed.language, guessed.language_from) == ("fr", "text")


def page_text(name: str) -> str:
    return extract_article(fixture("pages", name).read_text("utf-8")).text


def test_simhash_and_jaccard_tell_syndicated_copies_from_other_stories() -> None:
    story = page_text("consortium.html")
    original = shingles(story)
    copy = shingles("This story first appeared on Example Wire. " + story.rsplit("\n\n", 1)[0])
    other = shingles(page_text("certifications.html"))
    assert jaccard(original, copy) >= JACCARD_MIN and jaccard(original, other) < 0.05
    close = bin((simhash(original) ^ simhash(copy)) & (2**64 - 1)).count("1")
    far = bin((simhash(original) ^ simhash(other)) & (2**64 - 1)).count("1")
    assert close < far and close <= 18


def test_near_duplicate_index_finds_a_stored_copy(store) -> None:
    story = page_text("consortium.html")
    doc = Document("https://a.example/1", "AISIC", story, kind="news", source="A")
    store.upsert([doc])
    index = NearDuplicateIndex(store)
    index.add(doc.id, doc.text)
    index.save()
    again = NearDuplicateIndex(store)  # reloaded from the table
    assert len(again) == 1
    match = again.find("Syndicated from A. " + story)
    assert match is not None and match.original_id == doc.id and match.similarity > 0.9
    assert again.find(page_text("robotics.html")) is None


def test_item_to_document_prefers_page_text_and_marks_what_it_assumed() -> None:
    body = rss(
        "<item><title>Un titre</title><link>http://127.0.0.1/x?utm_source=a</link>"
        "<description>Résumé du flux.</description></item>",
        lang="",
    )
    entry = parse_feed(body.encode(), source="S", now=NOW).entries[0]
    doc = to_document(NewsItem("S", entry), first_seen=NOW, max_chars=1000)
    assert doc.published == NOW and doc.extra["date_from"] == "first_seen"
    assert doc.text == "Résumé du flux." and "summary_only" in doc.extra["flags"]
    assert doc.url == doc.canonical_id == "https://127.0.0.1/x"
    item = NewsItem("S", entry, page_text=ARTICLE, page_language="fr", page_language_from="html")
    doc = to_document(item, first_seen=NOW, max_chars=1000)
    assert doc.extra["text_from"] == "page" and len(doc.text) <= 1000
    assert "text_truncated" in doc.extra["flags"] and "non_english" in doc.extra["flags"]
    assert doc.language == doc.extra["language"] == "fr" and doc.extra["summary"]

"""What a reader notices in an extracted article, on our own pages (tests/fixtures/extract).

Each page is our prose inside the furniture of a real site: a cookie notice, menus, an ad slot,
share bars, related links, author bios and, on one page, a comment thread longer than the
story. truth.json beside the pages gives the story's words (as spans, see extract_truth.py),
the furniture phrases, and the date, authors and language. benchmarks/extract_bench.py scores
the same pages, and the real ones of ../shared/data/pages, with the same truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.news_extract import Article, extract_article
from tests.extract_truth import body_words, overlap, words

FIXTURES = Path(__file__).parent / "fixtures" / "extract"
PAGES = json.loads((FIXTURES / "truth.json").read_text("utf-8"))["pages"]


def page(name: str) -> str:
    return (FIXTURES / name).read_text("utf-8")


@pytest.fixture(scope="module")
def articles() -> dict[str, Article]:
    return {p["file"]: extract_article(page(p["file"])) for p in PAGES}


@pytest.mark.parametrize("truth", PAGES, ids=[p["file"] for p in PAGES])
def test_the_whole_story_and_nothing_around_it(articles: dict[str, Article], truth: dict) -> None:
    article = articles[truth["file"]]
    true = body_words(page(truth["file"]), truth["body"], truth["file"])
    extracted = words(article.text)
    shared = overlap(extracted, true)
    # Nearly every word of the story (trafilatura loses a subheading outside <article>), and
    # little else: a standfirst, a byline, an in-body "read also" line (fr: 276 of 308 words).
    assert shared / len(true) >= 0.95
    assert shared / len(extracted) >= 0.85
    for phrase in truth["noise"]:  # cookie notices, menus, comments, related links, footers
        assert phrase.lower() not in article.text.lower()
    assert not article.text.startswith(article.title)  # the headline is not the first paragraph
    last = truth["body"][-1]["to"]
    assert " ".join(extracted).endswith(last)  # the story's last words close the text


@pytest.mark.parametrize("truth", PAGES, ids=[p["file"] for p in PAGES])
def test_date_authors_and_language(articles: dict[str, Article], truth: dict) -> None:
    article = articles[truth["file"]]
    assert article.published[:10] in truth["dates"]
    assert article.authors == truth["authors"]  # JSON-LD lists, bylines, meta tags
    assert article.language == truth["language"]


def test_languages_come_from_the_page_then_from_the_text(articles: dict[str, Article]) -> None:
    assert articles["fr_entrepots.html"].language_from == "html"
    # No lang attribute and no meta tag: the words decide.
    assert articles["de_wartung.html"].language_from == "text"
    assert articles["en_blog_two_authors.html"].language_from == "text"


def test_a_page_without_a_date_gets_none() -> None:
    story = "".join(
        f"<p>Paragraph {i}: the lender retrained its fraud model on a year of card payments, "
        "and the analysts now review fewer alerts every morning.</p>"
        for i in range(4)
    )
    page = f"""<html lang="en"><head><title>Fraud</title></head><body><article>{story}
    </article><footer><p>Copyright 2026 Example Media. All rights reserved.</p></footer>
    </body></html>"""
    article = extract_article(page)
    assert article.text.startswith("Paragraph 0:") and article.paragraphs == 4
    assert article.published == ""  # not 2026-01-01 read from the copyright line


def test_a_tree_that_breaks_the_date_finder_still_gives_an_article() -> None:
    # htmldate raises AssertionError on this tree (found by tests/test_fuzz_parsers.py).
    article = extract_article("<math><mi>x<html>")
    assert isinstance(article, Article) and article.published == ""


@pytest.mark.timeout(60)  # a guard against a hang, not a speed test
def test_a_huge_page_is_read_plainly_instead_of_stalling_the_crawl() -> None:
    """5 MB of short paragraphs took trafilatura about a minute, on the crawler's event loop.
    Such a page is read paragraph by paragraph, bounded, with its meta tags."""
    story = "".join(
        f"<p>Line {i} of a very long log of sensor readings.</p>" for i in range(110_000)
    )
    page = (
        '<html lang="en"><head><meta name="author" content="Ada Ops">'
        '<meta property="article:published_time" content="2025-05-02T08:00:00Z"></head>'
        f"<body><nav>Home | News</nav><article>{story}</article></body></html>"
    )
    assert len(page) > 5_000_000
    article = extract_article(page)
    assert article.text.startswith("Line 0 of a very long log of sensor readings.")
    assert "Home | News" not in article.text  # the story's <article>, not the whole page
    assert 100_000 < len(article.text) <= 200_000
    assert article.authors == ["Ada Ops"] and article.published.startswith("2025-05-02")
    assert article.language == "en"

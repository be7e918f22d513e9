"""Parsing arXiv API answers (Atom) into Documents: pure functions over recorded bodies.

The body is first checked strictly (a truncated or malformed answer is an error, never a
partial page); entries are then read by the ``arxiv`` package's own feed parser, which
handles both the current and the legacy API layouts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import arxiv
from arxiv import _feed as arxiv_feed
from lxml import etree

from core.markup import readable_tex
from core.models import Document, arxiv_id, clean_text

# arXiv categories look like cs.LG, stat.ML, q-fin.ST, hep-th, cond-mat.stat-mech; the API
# also returns MSC (68T45) and ACM (I.2.7) class codes as categories: those are kept apart.
_ARXIV_CATEGORY = re.compile(r"^[a-z][a-z\-]*(\.[A-Za-z][A-Za-z\-]*)?$")
_VERSION = re.compile(r"v(\d+)$")
_ATOM = "{http://www.w3.org/2005/Atom}"


class MalformedPage(ValueError):
    """The answer is not a complete arXiv API Atom feed."""


@dataclass(slots=True)
class ParsedPage:
    total_results: int
    start_index: int
    documents: list[Document] = field(default_factory=list)
    updated: list[datetime] = field(default_factory=list)  # per document, same order


def check_page(body: bytes) -> None:
    """Raise MalformedPage unless ``body`` is a well-formed Atom feed."""
    if not body.strip():
        raise MalformedPage("empty answer body")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise MalformedPage(f"malformed or truncated XML: {exc}") from exc
    if root.tag != f"{_ATOM}feed":
        raise MalformedPage(f"not an Atom feed (root element {root.tag!r})")


def split_categories(terms: list[str]) -> tuple[list[str], list[str]]:
    """(arXiv categories, MSC/ACM class codes), order kept, duplicates dropped."""
    cats: list[str] = []
    classes: list[str] = []
    for term in terms:
        term = term.strip()
        target = cats if _ARXIV_CATEGORY.match(term) else classes
        if term and term not in target:
            target.append(term)
    return cats, classes


def result_to_document(result: arxiv.Result) -> Document:
    """One API entry as a Document (kind paper, source arxiv, id without version)."""
    entry = result.entry_id.rstrip("/")
    short = arxiv_id(entry)
    if short is None:
        raise MalformedPage(f"entry id {entry!r} is not an arXiv id")
    version = _VERSION.search(entry)
    categories, classes = split_categories(list(result.categories))
    primary = result.primary_category or (categories[0] if categories else "")
    if primary and primary not in categories and _ARXIV_CATEGORY.match(primary):
        categories.insert(0, primary)
    title = readable_tex(result.title)
    return Document(
        canonical_id=short,
        title=title,
        text=result.summary,
        kind="paper",
        source="arxiv",
        url=f"https://arxiv.org/abs/{short}",
        published=result.published,
        authors=[a.name for a in result.authors if a.name],
        categories=categories,
        extra={
            "primary_category": primary,
            "updated": result.updated.isoformat(),
            "version": f"v{version.group(1)}" if version else "",
            "abs_url": entry.replace("http://", "https://"),
            "pdf_url": (result.pdf_url or "").replace("http://", "https://"),
            "comment": clean_text(result.comment) or None,
            "journal_ref": clean_text(result.journal_ref) or None,
            "doi": result.doi,
            "msc_acm_classes": classes,
        }
        | ({"title_tex": result.title} if title != result.title else {}),
    )


def parse_page(body: bytes) -> ParsedPage:
    """Documents of one API page, newest first as the API sorted them."""
    check_page(body)
    feed = arxiv_feed.parse(body)
    if feed.malformed:
        raise MalformedPage(f"unreadable feed: {feed.error}")
    page = ParsedPage(total_results=feed.header.total_results, start_index=feed.header.start_index)
    for result in feed.results:
        doc = result_to_document(result)
        if not doc.title or not doc.text:
            continue
        page.documents.append(doc)
        page.updated.append(result.updated)
    return page

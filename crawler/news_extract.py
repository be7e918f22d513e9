"""Article pages -> main text, metadata and language. Pure functions over decoded HTML.

The main text, the date and the authors come from trafilatura: measured on real pages against
the readability-style extractor this module used to hold, it found more of the body, every date
(ISO, where ours often kept "September 3, 2025") and more authors (BENCHMARKS.md, "Article
extraction"). Veille adds what trafilatura does not give: the language (``<html lang>``, then
the meta tags, then a stop-word count over the text; trafilatura only checks a language it is
told to expect), the title and description from the meta tags, and two corrections: the
site's own name is not an author, and a headline repeating the title does not open the text.
``plain_text`` and the language helpers also serve the feed parser.

Example::

    article = extract_article(response.text)
    article.text.split("\n\n")[0], article.published, article.authors, article.language
"""

from __future__ import annotations

import html
import logging
import re
from collections import Counter
from dataclasses import dataclass, field

import trafilatura
from lxml import etree
from lxml import html as lxml_html

log = logging.getLogger(__name__)

_WS = re.compile(r"\s+")
_TAG_HINT = re.compile(r"<[a-zA-Z!/?]|&[#a-zA-Z0-9]+;")
# trafilatura's output tree: the elements that hold one paragraph of text each.
_TEXT_BLOCKS = ("p", "head", "item", "row", "quote", "code", "list", "table")
# htmldate's "extensive search" reads dates out of free text: on a page without a date it takes
# "Copyright 2026" for 2026-01-01. The markup (meta, JSON-LD, <time>, URL) found every true date.
_DATES = {"extensive_search": False, "original_date": True}
# Boxes inside an article that are not the article: trafilatura keeps a paywall prompt or a
# newsletter box that sits between two paragraphs. A class or id token names one when one of its
# hyphen/underscore parts is a box word ("paywall-prompt", "ad-slot", "article-comments") or it
# holds a box phrase ("share-bar", "social-shares", "related-posts"); "share-price" or
# "related-work" name no box.
_BOX_TOKEN = re.compile(
    r"^(?:.*[-_])?(?:paywall|newsletter|subscribe|subscription|promo|advert|advertisement|ads?|"
    r"sponsored|cookies?|consent|comments?|sharing|share[-_]?(?:bar|buttons?|tools|links)|"
    r"social[-_]?(?:share|shares|sharing|links|buttons?)|"
    r"related[-_](?:posts|stories|articles|links|content|reads))(?:[-_].*)?$",
    re.IGNORECASE,
)
_BOX_TAGS = ("div", "aside", "section", "ul", "form")  # never a paragraph of the story itself
# trafilatura's time grows faster than the page: 5 MB of short paragraphs took a minute, on
# the crawler's event loop. Beyond this much visible text (or this many elements, far above
# any article's) the page gets a plain reading of its paragraphs instead.
_TEXT_BUDGET = 200_000
_ELEMENT_BUDGET = 60_000
_BYLINE = (
    ".//*[@rel='author' or @itemprop='author' or contains(@class, 'author')"
    " or contains(@class, 'byline')]"
)
_BOX_MAX_CHARS = 600  # a box this long or longer may be the article itself: keep it

_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of to in is that for it with as was on are be this by not".split()),
    "fr": frozenset("le la les des et est un une du que pour dans qui sur pas par au".split()),
    "de": frozenset("der die das und ist nicht ein eine zu den mit von sich auf für im".split()),
    "es": frozenset("el la los las y es un una que de en por para con del se no".split()),
    "it": frozenset("il lo la gli le e di che è un una per con del della non sono".split()),
    "pt": frozenset("o a os as e de que em um uma para com do da não por são".split()),
    "nl": frozenset("de het een en van is dat op te in voor niet met zijn die".split()),
}


@dataclass(slots=True)
class Article:
    """What an article page gave: main text and the metadata it declares."""

    text: str = ""
    title: str = ""
    language: str = ""
    language_from: str = ""  # html | meta | text | ""
    description: str = ""
    authors: list[str] = field(default_factory=list)
    published: str = ""
    paragraphs: int = 0


def plain_text(value: str | None) -> str:
    """Text of a feed field that may hold HTML: tags (and script bodies) gone, entities decoded.

    >>> plain_text("Caf&eacute; <b>bold</b><script>alert(1)</script>")
    'Café bold'
    """
    if not value:
        return ""
    text = value
    for _ in range(2):  # twice: some feeds escape their HTML once more
        if not _TAG_HINT.search(text):
            break
        text = _fragment_text(text)
    return _WS.sub(" ", text).strip()


def _fragment_text(value: str) -> str:
    try:
        root = lxml_html.fragment_fromstring(value, create_parent="div")
    except (etree.ParserError, ValueError):
        return html.unescape(re.sub(r"<[^>]*>", " ", value))
    for bad in root.xpath(".//script|.//style|.//noscript|.//template"):
        bad.drop_tree()
    return root.text_content()


def _norm(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _meta_tags(root: etree._Element) -> dict[str, str]:
    """The page's <meta> values by lower-cased property, name or itemprop (first wins)."""
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        value = _norm(meta.get("content"))
        if not value:
            continue
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = (meta.get(attr) or "").strip().lower()
            if key:
                found.setdefault(key, value)
    return found


def _first(tags: dict[str, str], *names: str) -> str:
    return next((tags[n] for n in names if n in tags), "")


def normalise_language(value: str | None) -> str:
    """``en-US`` -> ``en``, ``fr_FR`` -> ``fr``; empty when it is not a language tag."""
    tag = (value or "").strip().replace("_", "-").split("-")[0].lower()
    return tag if re.fullmatch(r"[a-z]{2,3}", tag) else ""


def guess_language(text: str, *, min_hits: int = 5) -> str:
    """The language whose stop words are most frequent in ``text``; empty when unsure."""
    words = re.findall(r"[^\W\d_]+", text.lower()[:20_000])
    if not words:
        return ""
    counts = Counter(words)
    hits = {lang: sum(counts[w] for w in stop) for lang, stop in _STOPWORDS.items()}
    lang, best = max(hits.items(), key=lambda kv: kv[1])
    second = max((v for k, v in hits.items() if k != lang), default=0)
    if best < min_hits or best < 1.3 * second:
        return ""
    return lang


# Characters lxml cannot hold in a tree (C0 controls but tab and newlines, lone surrogates,
# U+FFFE/U+FFFF): left in, they make a later edit of the tree raise ValueError.
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _sanitise(page: str) -> str:
    """The page without an XML declaration (lxml refuses one with an encoding in a str) and
    without the characters lxml cannot hold."""
    page = re.sub(r"^\s*<\?xml[^>]*\?>", "", page, count=1)
    return _NOT_XML_CHARS.sub(" ", page) or "<html></html>"


def _block_text(el: etree._Element) -> str:
    if el.tag == "row":
        return " ".join(filter(None, (_block_text(cell) for cell in el)))
    return _norm("".join(el.itertext()))


def _paragraphs(body: etree._Element) -> list[str]:
    """One string per paragraph, heading, list item or table row of trafilatura's output tree."""
    for lb in body.iter("lb"):  # a <br> inside a paragraph: a space, not a new paragraph
        lb.tail = " " + (lb.tail or "")
    out: list[str] = []

    def walk(container: etree._Element) -> None:
        if container is not body and _norm(container.text):
            out.append(_norm(container.text))
        for el in container:
            if el.tag != "row" and any(d is not el for d in el.iter(*_TEXT_BLOCKS)):
                walk(el)  # a list, table or quote holding blocks of its own
            elif text := _block_text(el):
                out.append(text)
            if el.tail and _norm(el.tail):
                out.append(_norm(el.tail))

    walk(body)
    return out


def _drop_boxes(root: etree._Element) -> None:
    """Remove the short boxes whose class or id names them as prompts, ads or share bars."""
    for el in list(root.iter(*_BOX_TAGS)):
        names = f"{el.get('class') or ''} {el.get('id') or ''}"
        if el.getparent() is None or not any(_BOX_TOKEN.match(t) for t in names.split()):
            continue
        if re.search(r"author|byline", names, re.IGNORECASE) or el.xpath(_BYLINE):
            continue  # a "promo" box that holds the byline (LinkedIn): the author is in it
        if len(_norm(el.text_content())) < _BOX_MAX_CHARS:
            el.drop_tree()


def _too_big(root: etree._Element) -> bool:
    elements = 0
    for _ in root.iter():
        elements += 1
        if elements > _ELEMENT_BUDGET:
            return True
    visible = root.xpath("//body//text()[not(ancestor::script or ancestor::style)]")
    return sum(len(t) for t in visible) > _TEXT_BUDGET


def _plain_paragraphs(root: etree._Element) -> list[str]:
    """The paragraphs, list items and subheadings of the story (its <article> or <main> when
    it has one), up to the text budget: the reading of a page too big for trafilatura."""
    scope = root.xpath("//article") or root.xpath("//main") or [root]
    out: list[str] = []
    size = 0
    for el in scope[0].iter("p", "li", "h2", "h3"):
        text = _norm(el.text_content())
        if text:
            out.append(text)
            size += len(text)
            if size > _TEXT_BUDGET:
                break
    return out


def _authors(names: str | None, site: str | None) -> list[str]:
    """trafilatura's "A; B" as a list, without the site's own name (Tech Monitor lists itself)."""
    site_key = _norm(site).casefold()
    found = (_norm(n) for n in (names or "").split(";"))
    return list(dict.fromkeys(n for n in found if n and n.casefold() != site_key))


def extract_article(page: str) -> Article:
    """Main text, title, language, authors, date and description of an article page."""
    page = _sanitise(page)
    try:
        root = lxml_html.document_fromstring(page)
    except (etree.ParserError, ValueError):
        return Article()
    art = Article()
    tags = _meta_tags(root)
    art.title = _first(tags, "og:title", "twitter:title") or _norm(
        " ".join(root.xpath("//title/text()"))
    )
    art.description = _first(tags, "og:description", "description", "twitter:description")
    lang = normalise_language(
        root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang")
    )
    if lang:
        art.language, art.language_from = lang, "html"
    else:
        lang = normalise_language(_first(tags, "content-language", "og:locale", "language"))
        if lang:
            art.language, art.language_from = lang, "meta"
    headlines = {_norm(h.text_content()) for h in root.iter("h1")} | {art.title}
    _drop_boxes(root)
    if _too_big(root):
        log.info("page too big for full extraction: its paragraphs are read as they are")
        paragraphs = _plain_paragraphs(root)
        art.text, art.paragraphs = "\n\n".join(paragraphs)[:_TEXT_BUDGET], len(paragraphs)
        art.published = _first(tags, "article:published_time", "og:published_time", "date")
        author = _first(tags, "author", "article:author")
        art.authors = [author] if author and "://" not in author else []
        if not art.language and art.text:
            art.language = guess_language(art.text)
            art.language_from = "text" if art.language else ""
        return art
    try:
        doc = trafilatura.bare_extraction(
            root, with_metadata=True, include_comments=False, date_extraction_params=_DATES
        )
        if doc is None:  # no main text: the page's metadata is still worth having
            doc = trafilatura.extract_metadata(root, date_config=_DATES)
    except Exception as exc:  # htmldate asserts on some broken trees ("<math><mi>x<html>")
        log.warning("trafilatura failed on a page: %s: %s", type(exc).__name__, exc)
        doc = None
    if doc is not None:
        art.published = doc.date or ""
        art.authors = _authors(doc.author, doc.sitename)
        if doc.body is not None:
            paragraphs = _paragraphs(doc.body)
            if paragraphs and doc.body[0].tag == "head" and paragraphs[0] in headlines:
                paragraphs = paragraphs[1:]  # the headline is the title, not the body
            art.text = "\n\n".join(paragraphs)
            art.paragraphs = len(paragraphs)
    if not art.language and art.text:
        lang = guess_language(art.text)
        if lang:
            art.language, art.language_from = lang, "text"
    return art

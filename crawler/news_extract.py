"""Article pages -> main text, metadata and language. Pure functions over decoded HTML.

The extractor removes what is never the article (scripts, navigation, headers and footers,
asides, forms, cookie banners, comment threads, share bars, "related" lists), scores every
block by the paragraph text it holds (long paragraphs and commas count, links count against),
and keeps the paragraphs of the best block. The page's language comes from ``<html lang>``
or its meta tags, else from a stop-word count over the text.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field

from lxml import etree
from lxml import html as lxml_html

# Elements that never hold article text.
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "iframe",
    "object",
    "embed",
    "button",
    "select",
    "input",
    "textarea",
)
# Elements that usually hold no article text; kept when most of the page's prose is inside
# (some sites wrap the whole page in a <form> or put the story in an <aside>).
_STRUCTURAL = frozenset({"nav", "footer", "aside", "form", "dialog", "menu", "header"})
# class/id/role/aria words of boilerplate blocks.
_BOILERPLATE = re.compile(
    r"(^|[\s_-])(cookie|cookies|consent|gdpr|banner|comment|comments|disqus|respond|reply|"
    r"share|sharing|social|newsletter|subscribe|signup|sign-up|promo|advert|ads|ad-slot|"
    r"sponsor|related|recommended|read-more|more-stories|popular|trending|sidebar|widget|"
    r"breadcrumbs?|menu|navbar|nav|navigation|footer|header|masthead|modal|popup|overlay|"
    r"paywall|author-bio|byline-social|tags|pagination|skip-link|visually-hidden|sr-only)"
    r"($|[\s_-])",
    re.IGNORECASE,
)
_ROLES_DROPPED = {"navigation", "banner", "contentinfo", "complementary", "dialog", "alertdialog"}
_BLOCKS = ("p", "h2", "h3", "h4", "li", "blockquote", "pre", "td", "dd", "figcaption")
_CONTAINERS = ("article", "main", "section", "div", "td", "body")
_WS = re.compile(r"\s+")
_TAG_HINT = re.compile(r"<[a-zA-Z!/?]|&[#a-zA-Z0-9]+;")

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


def _is_boilerplate(el: etree._Element) -> bool:
    if el.tag in _STRUCTURAL:
        return True
    attrib = el.attrib
    if not attrib:
        return False
    if "hidden" in attrib or attrib.get("aria-hidden") == "true":
        return True
    if (attrib.get("role") or "").lower() in _ROLES_DROPPED:
        return True
    if el.tag in ("article", "main", "body", "html"):
        return False
    marks = " ".join(
        filter(None, (attrib.get("class"), attrib.get("id"), attrib.get("aria-label")))
    )
    return bool(marks) and _BOILERPLATE.search(marks) is not None


def _clean(root: etree._Element) -> None:
    for el in root.xpath("|".join(f"//{t}" for t in _DROP_TAGS)):
        el.drop_tree()
    total = _prose_length(root)
    doomed: list[etree._Element] = []
    stack = [root]
    while stack:  # top-down, so a dropped block's children are not looked at
        el = stack.pop()
        if el is not root and _is_boilerplate(el):
            # A "banner" holding most of the page's prose is the article, mislabelled.
            if not total or _prose_length(el) < 0.5 * total:
                doomed.append(el)
                continue
        stack.extend(child for child in el if isinstance(child.tag, str))
    for el in doomed:
        el.drop_tree()


def _prose_length(el: etree._Element) -> int:
    return sum(
        len(t) for t in (_norm(p.text_content()) for p in el.iter("p", "pre")) if len(t) >= 25
    )


def _link_density(el: etree._Element, length: int) -> float:
    if not length:
        return 1.0
    linked = sum(len(_norm(a.text_content())) for a in el.iter("a"))
    return min(1.0, linked / length)


def _best_container(root: etree._Element) -> etree._Element | None:
    scores: Counter[etree._Element] = Counter()
    for p in root.iter("p", "pre", "blockquote"):
        text = _norm(p.text_content())
        if len(text) < 25:
            continue
        points = 1 + text.count(",") + min(len(text) // 100, 3)
        parent = p.getparent()
        depth = 0
        while parent is not None and depth < 3:
            if parent.tag in _CONTAINERS:
                scores[parent] += points / (1 + depth)  # the parent gets all, then less
            parent = parent.getparent()
            depth += 1
    best, best_score = None, 0.0
    for el, score in scores.items():
        length = len(_norm(el.text_content()))
        score *= 1 - _link_density(el, length)
        if el.tag in ("article", "main") or el.get("itemprop") == "articleBody":
            score *= 1.25
        if score > best_score:
            best, best_score = el, score
    return best


def _widen(best: etree._Element) -> etree._Element:
    """Climb from the best block to an ancestor that adds real prose (articles split by ads)."""
    chosen, mass = best, _prose_length(best)
    current = best
    for _ in range(6):
        current = current.getparent()
        if current is None or current.tag in ("body", "html"):
            break
        wider = _prose_length(current)
        if wider < 1.2 * mass:
            continue  # a plain wrapper: look one level higher
        if _link_density(current, len(_norm(current.text_content()))) > 0.3:
            break
        chosen, mass = current, wider
    return chosen


def _paragraphs(container: etree._Element) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for el in container.iter(*_BLOCKS):
        # A block inside another kept block is already counted (li inside blockquote, ...).
        if any(anc.tag in _BLOCKS for anc in el.iterancestors()):
            continue
        text = _norm(el.text_content())
        if not text or text in seen:
            continue
        length = len(text)
        if el.tag in ("li", "td", "dd") and (length < 40 or _link_density(el, length) > 0.5):
            continue
        if el.tag == "p" and length < 60 and _link_density(el, length) > 0.5:
            continue
        seen.add(text)
        out.append(text)
    return out


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


def _json_ld_authors(root: etree._Element) -> list[str]:
    names = re.findall(
        r'"author"\s*:\s*(?:\[\s*)?\{[^{}]*?"name"\s*:\s*"([^"]{2,80})"',
        " ".join(root.xpath("//script[@type='application/ld+json']/text()")),
    )
    return list(dict.fromkeys(html.unescape(n) for n in names))


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


def parse_html(page: str) -> etree._Element:
    """Parse a decoded page (an XML declaration with an encoding is tolerated)."""
    page = re.sub(r"^\s*<\?xml[^>]*\?>", "", page, count=1)
    page = _NOT_XML_CHARS.sub(" ", page)
    return lxml_html.document_fromstring(page or "<html></html>")


def extract_article(page: str) -> Article:
    """Main text, title, language, authors, date and description of an article page."""
    try:
        root = parse_html(page)
    except (etree.ParserError, ValueError):
        return Article()
    art = Article()
    tags = _meta_tags(root)
    art.title = _first(tags, "og:title", "twitter:title") or _norm(
        " ".join(root.xpath("//title/text()"))
    )
    art.description = _first(tags, "og:description", "description", "twitter:description")
    art.published = _first(
        tags, "article:published_time", "datepublished", "date", "pubdate", "dc.date"
    )
    author = _first(tags, "author", "article:author", "dc.creator", "parsely-author")
    authors = [author] if author and not author.startswith("http") else []
    art.authors = authors or _json_ld_authors(root)
    lang = normalise_language(
        root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang")
    )
    if lang:
        art.language, art.language_from = lang, "html"
    else:
        lang = normalise_language(_first(tags, "content-language", "og:locale", "language"))
        if lang:
            art.language, art.language_from = lang, "meta"
    _clean(root)
    body = root.find("body")
    container = _best_container(body if body is not None else root)
    if container is not None:
        paragraphs = _paragraphs(_widen(container))
        art.text = "\n\n".join(paragraphs)
        art.paragraphs = len(paragraphs)
    if not art.language and art.text:
        lang = guess_language(art.text)
        if lang:
            art.language, art.language_from = lang, "text"
    return art

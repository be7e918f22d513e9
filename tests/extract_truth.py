"""Truth for article extraction without the article's prose: spans of the page's own words.

A span is the page's words from ``from`` (its first six) to ``to`` (its last six), ``words``
long, where words are the lower-cased ``\\w+`` runs of the page's visible text. Stored like
that, a truth file (benchmarks/labels/extract_truth.json, tests/fixtures/extract/truth.json)
quotes a few words per paragraph run, yet gives back every true body word. Used by
benchmarks/extract_bench.py (which also labels pages with ``label``) and
tests/test_extract_quality.py::

    true = body_words(page, truth["body"], truth["file"])
    extracted = words(extract_article(page).text)
"""

from __future__ import annotations

import re
from collections import Counter

from lxml import html as lxml_html

ANCHOR = 6  # words quoted at each end of a span
_WORD = re.compile(r"\w+")
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd details div dl dt figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table td th tr ul".split()
)
_INVISIBLE = "//script|//style|//noscript|//template|//svg"


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def blocks(page: str) -> list[str]:
    """The page's visible text, cut where a block element starts or ends."""
    root = lxml_html.document_fromstring(page)
    for el in root.xpath(_INVISIBLE):
        el.drop_tree()
    body = root.find("body")
    out: list[str] = []
    current: list[str] = []

    def cut() -> None:
        text = " ".join(" ".join(current).split())
        if text:
            out.append(text)
        current.clear()

    def walk(el) -> None:
        block = isinstance(el.tag, str) and el.tag in _BLOCK_TAGS
        if block:
            cut()
        if isinstance(el.tag, str):
            current.append(el.text or "")
            for child in el:
                walk(child)
        if block:
            cut()
        current.append(el.tail or "")

    walk(body if body is not None else root)
    cut()
    return out


def page_words(page: str) -> list[str]:
    return [w for block in blocks(page) for w in words(block)]


def body_words(page: str, spans: list[dict], name: str) -> list[str]:
    """The true body's words: each span found in the page's words after the previous one."""
    tokens = page_words(page)
    found: list[str] = []
    cursor = 0
    for span in spans:
        first, last, n = span["from"].split(), span["to"].split(), span["words"]
        for i in range(cursor, len(tokens) - n + 1):
            if tokens[i : i + len(first)] == first and tokens[i + n - len(last) : i + n] == last:
                found.extend(tokens[i : i + n])
                cursor = i + n
                break
        else:
            raise ValueError(f"{name}: span {span['from']!r} not found: relabel the page")
    return found


def label(page: str, chosen: str) -> list[dict]:
    """Truth spans for the chosen block numbers (``12-15,17``): one span per run of blocks."""
    numbers: list[int] = []
    for part in chosen.split(","):
        low, _, high = part.partition("-")
        numbers.extend(range(int(low), int(high or low) + 1))
    texts = blocks(page)
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    spans = []
    for run in runs:
        tokens = [w for n in run for w in words(texts[n])]
        spans.append(
            {
                "from": " ".join(tokens[:ANCHOR]),
                "to": " ".join(tokens[-ANCHOR:]),
                "words": len(tokens),
            }
        )
    return spans


def overlap(extracted: list[str], true: list[str]) -> int:
    """Words the two bags share (a word counts as often as it is in both)."""
    return sum((Counter(extracted) & Counter(true)).values())

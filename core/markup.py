"""Crawled text made inert where people read it: Markdown, links and CSV cells.

A crawled title or abstract is untrusted: in Streamlit Markdown it could hide a link or raw
HTML, in a spreadsheet it could start a formula. These helpers are shared by every place that
shows or exports such text (the dashboard's pages, the Markdown and CSV handouts of the CLI
and the dashboard), so the rules are written once. They know nothing of documents: they take
strings and rows.

    md_escape("<b>x</b>")                   # every markup character backslash-escaped
    md_link("Fraud rings", "javascript:x")  # "Fraud rings": an unsafe link is dropped
    to_csv([{"title": "=SUM(A1)"}])         # the cell is written '=SUM(A1), not a formula
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import urlsplit

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_escape(text: str | None) -> str:
    """Make untrusted text inert in Streamlit Markdown: no markup, no HTML, no links."""
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def http_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) link, else None (no javascript:, data:, ...)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(c in url for c in "()<> \"'"):
        return None
    return url.strip()


def md_link(label: str, url: str | None) -> str:
    """An escaped Markdown link, or the escaped label alone when the URL is not safe."""
    target = http_url(url)
    text = md_escape(label)
    return f"[{text}]({target})" if target else text


def _csv_cell(value: Any) -> Any:
    # A crawled title starting with "=" must not become a spreadsheet formula.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV text, the first row's keys as the header; "" when there is no row."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()

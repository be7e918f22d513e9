"""Import documents from JSON Lines, line by line, with a reason for every rejected line."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.markup import readable_tex
from core.models import (
    KINDS,
    Document,
    UpsertResult,
    arxiv_id,
    content_hash,
    legacy_canonical_id,
    make_canonical_id,
)
from core.store import Store

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str


@dataclass(slots=True)
class LoadReport:
    """What ``load_jsonl`` did: the upsert counts and every rejected line."""

    path: str
    lines: int = 0
    result: UpsertResult = field(default_factory=UpsertResult)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.lines - len(self.rejected)


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ValueError(f"'{name}' must be a string or a list of strings")


def parse_record(obj: Any, *, max_chars: int, default_source: str = "local") -> Document:
    """Turn one decoded JSON value into a Document, or raise ValueError saying why not."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    title = obj.get("title")
    text = obj.get("text")
    if text is None and isinstance(obj.get("abstract"), str):
        text = obj["abstract"]
    if not isinstance(title, str) or not title.strip():
        raise ValueError("missing or empty 'title'")
    if not isinstance(text, str):
        raise ValueError("missing 'text' (a string)")
    if not text.strip():
        raise ValueError("'text' is empty")
    if len(text) > max_chars:
        raise ValueError(
            f"'text' has {len(text):,} characters, more than the limit of {max_chars:,} "
            "(VEILLE_MAX_TEXT_CHARS)"
        )
    kind = obj.get("kind") or "paper"
    if kind not in KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    given = obj.get("id")
    if given is not None and not isinstance(given, str | int):
        raise ValueError("'id' must be a string")
    url = obj.get("url") or ""
    if not isinstance(url, str):
        raise ValueError("'url' must be a string")
    parts = urlsplit(url.strip())
    if url.strip() and (parts.scheme.lower() not in ("http", "https") or not parts.netloc):
        # A link shown to readers: never javascript:, file: or a bare path.
        raise ValueError(f"'url' must be an http(s) address, not {url.strip()[:80]!r}")
    source = obj.get("source") or default_source
    if not isinstance(source, str):
        raise ValueError("'source' must be a string")
    published = obj.get("published")
    if published is not None and not isinstance(published, str):
        raise ValueError("'published' must be an ISO date string such as 2025-03-18")
    shown = readable_tex(title) if kind == "paper" else title
    doc = Document(
        canonical_id="",
        title=shown,
        text=text,
        kind=kind,
        source=source.strip(),
        url=url.strip(),
        published=published or None,
        authors=_str_list(obj.get("authors"), "authors"),
        categories=_str_list(obj.get("categories"), "categories"),
        language=str(obj.get("language") or "en"),
        extra={"title_tex": title} if shown != title else {},
    )
    given_str = str(given).strip() if given is not None else None
    doc.canonical_id = make_canonical_id(
        given=given_str, url=doc.url, kind=kind, chash=content_hash(doc.title, doc.text)
    )
    if not doc.url and kind == "paper" and arxiv_id(doc.canonical_id) == doc.canonical_id:
        doc.url = f"https://arxiv.org/abs/{doc.canonical_id}"
    return doc


def _keep_stored_id(store: Store, doc: Document, given: Any) -> None:
    """Keep a stored document's id when its URL was keyed differently when it was loaded.

    Before the loader and the crawler shared one canonical URL, the loader kept some
    tracking parameters (``_ga``, ``ncid``, ...) that are dropped now. A page loaded then
    and loaded again now is still the same document, not a new one: its old id is used
    when that one is stored and the new one is not.
    """
    given_str = str(given).strip() if given is not None else None
    old = legacy_canonical_id(given=given_str, url=doc.url, chash=doc.content_hash)
    if old and store.by_canonical_id(doc.canonical_id) is None:
        if store.by_canonical_id(old) is not None:
            doc.canonical_id = old


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        yield from enumerate(fh, start=1)


def load_jsonl(
    path: str | Path,
    store: Store,
    *,
    max_chars: int = 200_000,
    default_source: str = "local",
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Load a JSON Lines file into ``store``.

    Valid lines are stored (in batches); each bad line is skipped and reported with its
    number and the reason; a repeated id within the file keeps its first occurrence.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    report = LoadReport(path=str(path))
    seen: dict[str, int] = {}
    pending: list[Document] = []
    for number, raw in _lines(path):
        if progress:
            progress(len(raw))
        if not raw.strip():
            continue
        report.lines += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            report.rejected.append(Rejected(number, f"not UTF-8 (byte {exc.start})"))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report.rejected.append(
                Rejected(number, f"malformed JSON: {exc.msg} at column {exc.colno}")
            )
            continue
        try:
            doc = parse_record(obj, max_chars=max_chars, default_source=default_source)
        except ValueError as exc:
            report.rejected.append(Rejected(number, str(exc)))
            continue
        _keep_stored_id(store, doc, obj.get("id"))
        if doc.canonical_id in seen:
            report.rejected.append(
                Rejected(
                    number,
                    f"duplicate id {doc.canonical_id!r} (first on line {seen[doc.canonical_id]})",
                )
            )
            continue
        seen[doc.canonical_id] = number
        pending.append(doc)
        if len(pending) >= BATCH:
            report.result += store.upsert(pending)
            pending = []
    if pending:
        report.result += store.upsert(pending)
    log.info(
        "loaded %s: %d new, %d updated, %d unchanged, %d duplicates, %d rejected",
        path,
        report.result.new,
        report.result.updated,
        report.result.unchanged,
        report.result.duplicates,
        len(report.rejected),
    )
    return report


def starter_files() -> list[Path]:
    """The starter corpus shipped with Veille (JSON Lines files)."""
    folder = resources.files("core") / "data" / "starter"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".jsonl"))


def load_starter(store: Store) -> list[LoadReport]:
    """Load (or refresh) the bundled starter corpus; idempotent."""
    return [load_jsonl(p, store, default_source="starter") for p in starter_files()]

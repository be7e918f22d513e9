"""Parser for the CISI test collection (Glasgow format) in ../shared/data/benchmarks/CISI."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

_FIELD = re.compile(r"^\.([A-Z])(?:\s+(\d+))?\s*$")


def _records(path: Path) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    field = None
    for line in path.read_text(encoding="latin-1").splitlines():
        match = _FIELD.match(line)
        if match:
            tag, number = match.groups()
            if tag == "I":
                current = {"id": number or ""}
                out.append(current)
                field = None
            else:
                field = tag
                if current is not None:
                    current.setdefault(field, "")
            continue
        if current is not None and field:
            current[field] += line.strip() + " "
    return [{k: " ".join(v.split()) for k, v in r.items()} for r in out]


def load(folder: Path) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, set[str]]]:
    """(documents by id with title/text, queries by id, relevant doc ids by query id)."""
    docs = {
        r["id"]: {"title": r.get("T", ""), "text": r.get("W", "")}
        for r in _records(folder / "CISI.ALL")
    }
    queries = {
        r["id"]: " ".join(filter(None, [r.get("T", ""), r.get("W", "")]))
        for r in _records(folder / "CISI.QRY")
    }
    rel: dict[str, set[str]] = defaultdict(set)
    for line in (folder / "CISI.REL").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            rel[parts[0]].add(parts[1])
    return docs, queries, dict(rel)

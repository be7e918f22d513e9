"""The starter corpus shipped in the repository: real records, summaries in our own words."""

from __future__ import annotations

import json
import re

import pytest

from core.loader import load_starter, starter_files
from core.store import Store
from tests.conftest import shared_data


def starter_records() -> list[dict]:
    out = []
    for path in starter_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_starter_corpus_is_big_enough_and_loads_cleanly(store: Store) -> None:
    records = starter_records()
    papers = [r for r in records if r["kind"] == "paper"]
    assert len(papers) >= 150
    reports = load_starter(store)
    assert all(not r.rejected for r in reports), [r.rejected[:3] for r in reports]
    assert store.count() == len({r["id"] for r in records})
    assert sum(r.result.new for r in load_starter(store)) == 0  # idempotent


@pytest.mark.realdata
def test_papers_are_real_records_of_the_sample() -> None:
    sample = {}
    with shared_data("arxiv_sample.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            sample[rec["id"]] = rec
    for rec in starter_records():
        if rec["kind"] != "paper":
            continue
        real = sample.get(rec["id"])
        assert real is not None, f"{rec['id']} is not in arxiv_sample.jsonl"
        assert rec["title"] == " ".join(real["title"].split()), rec["id"]
        assert rec["published"] == real["published"][:10], rec["id"]
        assert rec["authors"] == real["authors"], rec["id"]
        assert rec["url"] == f"https://arxiv.org/abs/{rec['id']}"
        # the summary is ours: no run of six words taken from the abstract
        copied = shingles(rec["text"]) & shingles(real["abstract"])
        assert not copied, (rec["id"], sorted(copied)[:2])


@pytest.mark.realdata
def test_news_items_come_from_the_real_feeds() -> None:
    feeds = "".join(
        p.read_text(encoding="utf-8", errors="replace") for p in shared_data("feeds").glob("*.xml")
    )
    news = [r for r in starter_records() if r["kind"] == "news"]
    assert news, "the starter corpus should carry some news"
    for rec in news:
        assert rec["url"] in feeds or rec["url"].replace("&", "&amp;") in feeds, rec["url"]
        assert rec["title"].split()[0] in feeds

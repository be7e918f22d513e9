"""A loopback arXiv crawl of real records: papers/s stored and indexed, and where time goes.

Usage: .venv/bin/python benchmarks/arxiv_crawl.py [--records 2000]

A real HTTP server on 127.0.0.1 serves Atom pages built from ../shared/data/arxiv_sample.jsonl
in the arXiv API layout (the same server the tests use); the crawler runs with the politeness
delay set to 0, then `index_and_match` embeds, indexes and matches the new papers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date

from _common import sample_records

from core.settings import load_settings
from core.store import Store
from crawler.arxiv_crawl import crawl_arxiv
from index.pipeline import index_and_match
from tests.loopback import LoopbackServer
from tests.test_arxiv_crawl import FakeArxiv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    records = sample_records(args.records)
    with LoopbackServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.route("/api/query", FakeArxiv(records))
        settings = load_settings(
            data_dir=tmp,
            arxiv_api_url=server.url("/api/query"),
            arxiv_delay=0,
            arxiv_page_size=100,
            arxiv_categories=["cs.LG"],
        )
        store = Store.from_settings(settings)
        t0 = time.perf_counter()
        run = crawl_arxiv(store, settings, since=date(2000, 1, 1))
        crawl_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        report = index_and_match(store, settings)
        index_s = time.perf_counter() - t1
        timings = json.loads(store.get_meta("arxiv:last_timings"))
        store.close()
    total = crawl_s + index_s
    print(f"{run.new} papers in {run.pages} pages over loopback (delay 0)")
    print(f"crawl (fetch+parse+store): {crawl_s:.1f}s = {run.new / crawl_s:.0f} papers/s")
    print(
        f"crawl + index:             {total:.1f}s = {run.new / total:.1f} papers/s stored and indexed"
    )
    for stage, seconds in (
        ("fetch", timings["fetch"]),
        ("parse", timings["parse"]),
        ("store", timings["store"]),
        ("embed+index", index_s),
    ):
        print(f"  {stage:<12} {seconds:7.1f}s  {seconds / total * 100:5.1f}%")
    print(f"index: {report.indexed} documents, {report.embedded} embedded")


if __name__ == "__main__":
    main()

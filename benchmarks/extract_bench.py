"""Article extraction: Veille's ``extract_article`` against trafilatura, on labelled pages.

Usage: .venv/bin/python benchmarks/extract_bench.py [--repeat 5]
       .venv/bin/python benchmarks/extract_bench.py --blocks PAGE          # numbered blocks
       .venv/bin/python benchmarks/extract_bench.py --label PAGE 12-15,17  # truth spans of blocks

The pages are the real ones of ../shared/data/pages (when present; truth in
benchmarks/labels/extract_truth.json) and always our own pages of tests/fixtures/extract
(truth beside them). A truth file holds no article prose: the body is a list of spans of the
page's own words, each given by its first and last six words and its length, and the script
finds those words in the page. Main text is scored by words (lower-cased ``\\w+`` runs, as a
bag): precision = shared words / extracted words, recall = shared words / true body words.
A date is right when its calendar day is one of the true ones (Veille's date counts only when
it is ISO, as the news pipeline reads it), authors when the set of names is the true set
(case and spacing aside), language when the code is the true one. Times are the median of
--repeat runs of one page.

``--blocks`` and ``--label`` are how a page is labelled: read the numbered blocks, pick the
body's blocks, paste the spans it prints into the truth file.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, SHARED

from core.models import as_utc
from crawler.news_extract import extract_article
from tests.extract_truth import blocks, body_words, label, overlap, words

SHARED_PAGES = SHARED / "pages"
SHARED_TRUTH = ROOT / "benchmarks" / "labels" / "extract_truth.json"
FIXTURES = ROOT / "tests" / "fixtures" / "extract"


@dataclass
class Output:
    text: str
    date: str  # YYYY-MM-DD or ""
    authors: list[str]
    language: str


def veille(page: str) -> Output:
    art = extract_article(page)
    try:  # what crawler/news_items.py keeps: an ISO date, else none
        day = as_utc(art.published)
    except ValueError:
        day = None
    return Output(art.text, day.date().isoformat() if day else "", art.authors, art.language)


def trafilatura_runner(**options) -> Callable[[str], Output]:
    import trafilatura

    def run(page: str) -> Output:
        doc = trafilatura.bare_extraction(
            page, with_metadata=True, include_comments=False, **options
        )
        if doc is None:
            return Output("", "", [], "")
        authors = [a.strip() for a in (doc.author or "").split(";") if a.strip()]
        return Output(doc.text or "", doc.date or "", authors, doc.language or "")

    return run


def name_set(names: list[str]) -> set[str]:
    return {" ".join(n.lower().split()) for n in names}


@dataclass
class Score:
    page: str
    extracted: int
    truth: int
    shared: int
    date_ok: bool
    author_ok: bool
    language_ok: bool
    ms: float

    @property
    def precision(self) -> float:
        return self.shared / self.extracted if self.extracted else 0.0

    @property
    def recall(self) -> float:
        return self.shared / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(run: Callable[[str], Output], page: str, truth: dict, repeat: int) -> Score:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = run(page)
        times.append(time.perf_counter() - started)
    true_words = body_words(page, truth["body"], truth["file"])
    got = words(out.text)
    return Score(
        page=truth["file"],
        extracted=len(got),
        truth=len(true_words),
        shared=overlap(got, true_words),
        date_ok=out.date[:10] in truth["dates"] if truth["dates"] else not out.date,
        author_ok=name_set(out.authors) == name_set(truth["authors"]),
        language_ok=out.language == truth["language"],
        ms=1000 * statistics.median(times),
    )


def load_pages() -> list[tuple[str, str, dict]]:
    """(group, page, truth) for every labelled page: "real" ones first, then "ours"."""
    pages = []
    sources = [("ours", FIXTURES / "truth.json", FIXTURES)]
    if SHARED_PAGES.exists():
        sources.insert(0, ("real", SHARED_TRUTH, SHARED_PAGES))
    else:
        print(f"note: {SHARED_PAGES} is missing: only the fixture pages are scored")
    for group, truth_file, folder in sources:
        for truth in json.loads(truth_file.read_text("utf-8"))["pages"]:
            page = (folder / truth["file"]).read_text("utf-8", errors="replace")
            pages.append((group, page, truth))
    return pages


def report(name: str, scores: list[Score]) -> None:
    print(f"\n### {name}\n")
    print("| page | words out | true words | P | R | F1 | date | author | lang | ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in scores:
        prf = f"{s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f}" if s.truth else "- | - | -"
        marks = " | ".join("yes" if ok else "no" for ok in (s.date_ok, s.author_ok, s.language_ok))
        print(f"| {s.page} | {s.extracted} | {s.truth} | {prf} | {marks} | {s.ms:.1f} |")


def summary_row(name: str, scores: list[Score]) -> str:
    """P, R, F1 averaged over the pages with a body; micro P and R over all their words."""
    body = [s for s in scores if s.truth]
    shared = sum(s.shared for s in body)
    n = len(scores)
    return (
        f"| {name} | {statistics.mean(s.precision for s in body):.3f} "
        f"| {statistics.mean(s.recall for s in body):.3f} "
        f"| {statistics.mean(s.f1 for s in body):.3f} "
        f"| {shared / max(1, sum(s.extracted for s in body)):.3f} "
        f"| {shared / max(1, sum(s.truth for s in body)):.3f} "
        f"| {sum(s.date_ok for s in scores)}/{n} | {sum(s.author_ok for s in scores)}/{n} "
        f"| {sum(s.language_ok for s in scores)}/{n} "
        f"| {statistics.mean(s.ms for s in scores):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per page (median time)")
    parser.add_argument("--blocks", metavar="PAGE", help="print the page's numbered blocks")
    parser.add_argument("--label", nargs=2, metavar=("PAGE", "BLOCKS"), help="print spans")
    args = parser.parse_args()
    if args.blocks:
        for i, text in enumerate(blocks(Path(args.blocks).read_text("utf-8", errors="replace"))):
            print(f"{i:4d} {text}")
        return
    if args.label:
        page = Path(args.label[0]).read_text("utf-8", errors="replace")
        print(json.dumps(label(page, args.label[1]), indent=1, ensure_ascii=False))
        return
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # "discarding data" warnings
    logging.getLogger("htmldate").setLevel(logging.CRITICAL)
    pages = load_pages()
    runners = {
        "Veille extract_article": veille,
        "trafilatura (default)": trafilatura_runner(),
        "trafilatura (favor_precision)": trafilatura_runner(favor_precision=True),
    }
    for run in runners.values():  # imports and lazy tables out of the timings
        run(pages[0][1])
    results = {
        name: [score(run, page, truth, args.repeat) for _, page, truth in pages]
        for name, run in runners.items()
    }
    for name, scores in results.items():
        report(name, scores)
    groups = {"all": set(range(len(pages)))}
    for group in ("real", "ours"):
        groups[group] = {i for i, (g, _, _) in enumerate(pages) if g == group}
    print(f"\n### Overall ({len(pages)} pages: real = ../shared/data/pages, ours = fixtures)\n")
    print("| extractor | pages | P | R | F1 | micro P | micro R | date | author | lang | ms/page |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, scores in results.items():
        for group, members in groups.items():
            if members:
                chosen = [s for i, s in enumerate(scores) if i in members]
                print(summary_row(f"{name} | {group}", chosen))


if __name__ == "__main__":
    main()

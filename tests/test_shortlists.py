"""Shortlists, their append-only decision log, opportunity scores and the cards' exports."""

from __future__ import annotations

import csv
import io
import re
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from core.loader import load_jsonl
from core.models import Document
from core.settings import load_settings
from core.store import Store
from index.cards import make_cards
from index.opportunity import PARTS, Scorer, weights
from index.pipeline import index_and_match
from index.recommend import more_like_shortlist
from index.shortlists import (
    add_entry,
    add_note,
    history,
    list_entries,
    log_lines,
    move_entry,
    remove_entry,
)
from index.story import recent_evidence, refresh_evidence, story
from jobs.cli import cli
from jobs.handouts import cards_csv, cards_markdown

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOSTILE = '=HYPERLINK("http://evil.example") <script>alert(1)</script> [x](javascript:alert(2))'


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, real_embedder) -> Path:
    folder = tmp_path_factory.mktemp("shortlists") / "data"
    settings = load_settings(data_dir=folder)
    store = Store.from_settings(settings)
    load_jsonl(FIXTURES / "corpus_small.jsonl", store)
    store.upsert(
        [
            Document(
                "news-hostile",
                HOSTILE,
                "A bank deploys graph neural networks to stop card fraud rings; the paper "
                "2601.00001 describes the model.",
                kind="news",
                source="Example News",
                url="https://news.example/fraud",
                published=datetime(2026, 3, 14, tzinfo=UTC),
            )
        ]
    )
    index_and_match(store, settings, embedder=real_embedder)
    store.close()
    return folder


@pytest.fixture
def world(indexed, isolated_settings):
    shutil.copytree(indexed, isolated_settings)
    settings = load_settings()
    store = Store.from_settings(settings)
    yield settings, store
    store.close()


def test_an_entry_moves_through_statuses_with_its_log(world) -> None:
    settings, store = world
    entry = add_entry(store, settings, "2601.00007", "industry/predictive_maintenance", by="ana")
    assert entry.status == "new" and entry.target == "industry/predictive_maintenance"
    move_entry(store, settings, entry.id, "to evaluate", by="ana", reason="plant 3 has sensors")
    moved = move_entry(store, settings, entry.id, "pilot", by="bo", reason="budget found")
    assert moved.status == "pilot" and moved.status_text == "▶ Pilot"
    add_note(store, entry.id, "vendor demo on Friday", by="bo")
    lines = [line.text for line in history(store, entry.id)]
    assert lines[0].endswith("ana shortlisted it")
    assert lines[1].endswith("ana moved it from New to To evaluate: plant 3 has sensors")
    assert lines[2].endswith("bo moved it from To evaluate to Pilot: budget found")
    assert "bo added a note: vendor demo on Friday" in lines[3]

    again = add_entry(store, settings, "2601.00007", "industry/predictive_maintenance")
    assert again.id == entry.id and again.status == "pilot"  # adding twice changes nothing
    remove_entry(store, entry.id, by="ana", reason="duplicate of another project")
    assert list_entries(store, settings, sector="industry") == []
    assert [e.id for e in list_entries(store, settings, include_removed=True)] == [entry.id]
    restored = add_entry(store, settings, "2601.00007", "industry/predictive_maintenance")
    assert restored.removed is None and restored.status == "pilot"
    assert [line.action for line in history(store, entry.id)][-2:] == ["removed", "restored"]


def test_bad_input_names_itself_and_changes_nothing(world) -> None:
    settings, store = world
    entry = add_entry(store, settings, "2601.00009", "health/diagnosis_support", by="ana")
    before = (list_entries(store, settings), history(store, entry.id))
    with pytest.raises(KeyError, match="unknown document 'nope'"):
        add_entry(store, settings, "nope", "health/diagnosis_support")
    with pytest.raises(KeyError, match="unknown use case 'astrology'"):
        add_entry(store, settings, "2601.00009", "health/astrology")
    with pytest.raises(KeyError, match="unknown sector 'space'"):
        add_entry(store, settings, "2601.00009", "space/rockets")
    with pytest.raises(ValueError, match="unknown status 'shipped'"):
        move_entry(store, settings, entry.id, "shipped")
    with pytest.raises(KeyError, match="no shortlist entry number 999"):
        move_entry(store, settings, 999, "pilot")
    with pytest.raises(ValueError, match="100,000 characters long; the limit is 5,000"):
        add_note(store, entry.id, "x" * 100_000)
    with pytest.raises(ValueError, match="the limit is 5,000"):
        add_entry(store, settings, "2601.00010", "health/diagnosis_support", note="y" * 100_000)
    assert (list_entries(store, settings), history(store, entry.id)) == before


def test_the_decision_log_cannot_be_rewritten(world) -> None:
    settings, store = world
    entry = add_entry(store, settings, "2601.00002", "finance/market_prediction", by="ana")
    move_entry(store, settings, entry.id, "rejected", by="ana", reason="no data")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with store.write() as conn:
            conn.execute(log_lines.update().values(reason="we never rejected it"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with store.write() as conn:
            conn.execute(log_lines.delete())
    assert [line.reason for line in history(store, entry.id)] == ["", "no data"]


def test_concurrent_edits_keep_both_log_lines(world) -> None:
    settings, store = world
    entry = add_entry(store, settings, "2601.00011", "industry/robotics", by="ana")
    other = Store.from_settings(settings)  # a second session on the same database
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def edit(session: Store, status: str, who: str) -> None:
        try:
            start.wait()
            move_entry(session, settings, entry.id, status, by=who, reason=f"{who} decided")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=edit, args=(store, "pilot", "ana")),
        threading.Thread(target=edit, args=(other, "rejected", "bo")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert not errors
    moves = [line for line in history(store, entry.id) if line.action == "moved"]
    assert sorted(line.by for line in moves) == ["ana", "bo"]
    final = list_entries(store, settings, use_case="industry/robotics")[0].status
    assert final == [line.new for line in moves][-1]  # the board shows the last move


def test_opportunity_parts_and_weights(world, monkeypatch) -> None:
    settings, store = world
    scorer = Scorer(store, settings)
    fraud = scorer.score("2601.00001", "finance", "fraud_detection")
    assert set(fraud.parts) == set(PARTS) and all(0 <= v <= 1 for v in fraud.parts.values())
    assert fraud.parts["relevance"] > 0.3 and "Fits" in fraud.notes["relevance"]
    assert "cited by 1 news item" in fraud.notes["maturity"]  # the news item names 2601.00001
    expected = 0.5 * fraud.parts["relevance"] + 0.3 * fraud.parts["maturity"]
    expected += 0.2 * fraud.parts["momentum"]
    assert fraud.total == pytest.approx(expected, abs=0.002)
    unmatched = scorer.score("2601.00012", "finance", "fraud_detection")  # a paper on primes
    assert unmatched.parts["relevance"] == 0 and unmatched.total < fraud.total

    only_maturity = load_settings(opportunity_weights={"maturity": 1})
    scored = Scorer(store, only_maturity).score("2601.00001", "finance", "fraud_detection")
    assert scored.total == scored.parts["maturity"]
    with pytest.raises(ValueError, match="unknown part"):
        weights(load_settings(opportunity_weights={"hype": 1}))
    with pytest.raises(ValueError, match="not all zero"):
        weights(load_settings(opportunity_weights={"relevance": 0}))


def test_cards_escape_hostile_titles(world) -> None:
    settings, store = world
    add_entry(
        store,
        settings,
        "news-hostile",
        "finance/fraud_detection",
        by="<b>eve</b>",
        note="=cmd|' /C calc'!A0",
    )
    cards = make_cards(store, settings, list_entries(store, settings))
    markdown = cards_markdown(cards, title="Fraud <script>")
    assert not re.search(r"(?<!\\)<", markdown)  # every < is escaped: no HTML gets through
    assert "\\[x\\]" in markdown  # the crawled brackets are escaped: no live link
    assert not re.search(r"(?<!\\)\]\(javascript", markdown)
    # the handout reads as text: a sentence keeps its dots and dashes unescaped
    assert "the paper 2601.00001 describes the model." in markdown
    rows = list(csv.DictReader(io.StringIO(cards_csv(cards))))
    assert rows[0]["title"].startswith("'=") and rows[0]["notes"].startswith("'=")
    assert rows[0]["status"] == "New" and float(rows[0]["opportunity"]) > 0


def test_cli_add_list_move_export(world, tmp_path) -> None:
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert "The shortlist is empty" in run("shortlist", "list").output
    added = run(
        "shortlist",
        "add",
        "2601.00003",
        "--use-case",
        "legal/contract_management",
        "--owner",
        "lea",
        "--by",
        "ana",
    )
    assert (
        added.exit_code == 0 and "#1 2601.00003 on legal/contract_management: ○ New" in added.output
    )
    moved = run(
        "shortlist",
        "move",
        "2601.00003",
        "pilot",
        "--use-case",
        "legal/contract_management",
        "--reason",
        "legal ops keen",
    )
    assert moved.exit_code == 0 and "▶ Pilot" in moved.output
    listed = run("shortlist", "list", "--sector", "legal")
    assert "opportunity" in listed.output and "owner lea" in listed.output
    log = run("shortlist", "log", "1")
    assert "moved it from New to Pilot: legal ops keen" in log.output
    out = tmp_path / "cards.csv"
    exported = run("shortlist", "export", str(out), "--sector", "legal")
    assert exported.exit_code == 0 and "1 card written" in exported.output
    assert "Pilot" in out.read_text()
    pdf = tmp_path / "cards.pdf"
    refused = runner.invoke(cli, ["shortlist", "export", str(pdf)])
    assert refused.exit_code == 2 and "cannot tell the format" in refused.output
    assert not pdf.exists()  # nothing written under a misleading name
    chosen = run("shortlist", "export", str(pdf), "--format", "md")
    assert chosen.exit_code == 0 and pdf.read_text().startswith("# Opportunity cards")
    bad = runner.invoke(cli, ["shortlist", "move", "1", "shipped"])
    assert bad.exit_code == 2 and "shipped" in bad.output
    same = runner.invoke(cli, ["shortlist", "move", "1", "pilot"])
    assert same.exit_code == 1 and "#1 is already Pilot" in same.output
    assert "from Pilot to Pilot" not in run("shortlist", "log", "1").output
    # a path through a file, or into a missing folder: one line naming it, no traceback
    through = runner.invoke(cli, ["shortlist", "export", str(out / "cards.md")])
    assert through.exit_code == 1 and "Traceback" not in through.output
    assert f"{out / 'cards.md'}: a part of this path is a file, not a folder" in through.output
    missing = runner.invoke(cli, ["shortlist", "export", str(tmp_path / "no" / "cards.md")])
    assert missing.exit_code == 1 and str(tmp_path / "no" / "cards.md") in missing.output
    # removed entries are marked as such, and adding one again is logged as a restore
    run("shortlist", "remove", "1", "--by", "ana")
    assert "The shortlist is empty" in run("shortlist", "list").output
    assert "REMOVED" in run("shortlist", "list", "--removed").output
    run("shortlist", "add", "2601.00003", "--use-case", "legal/contract_management", "--by", "ana")
    assert "ana put it back on the shortlist" in run("shortlist", "log", "1").output
    assert "REMOVED" not in run("shortlist", "list").output
    unknown = runner.invoke(
        cli, ["shortlist", "add", "zzz", "--use-case", "legal/contract_management"]
    )
    assert unknown.exit_code == 1 and "unknown document 'zzz'" in unknown.output


def test_story_versions_code_and_citations(world) -> None:
    settings, store = world
    paper = Document(
        "2601.00050",
        "Sparse transformers forecast electricity demand",
        "We release the code at https://github.com/example/sparse-load and the weights at "
        "https://huggingface.co/example/sparse-load. A sparse transformer forecasts demand.",
        published=datetime(2026, 3, 13, tzinfo=UTC),
        extra={"version": "v3"},
    )
    news = Document(
        "https://news.example/grid",
        "Utilities try sparse transformers",
        "Grid operators test the model of arXiv paper 2601.00050 (see arxiv.org/abs/2601.00050v2)"
        " and a second one, 2601.000501, which is not stored.",
        kind="news",
        source="Example News",
        url="https://news.example/grid",
        published=datetime(2026, 3, 15, tzinfo=UTC),
    )
    store.upsert([paper, news])
    told = story(store, store.by_canonical_id("2601.00050"))
    assert [v for v, _ in told.versions] == ["v1", "v2", "v3"]
    assert told.versions[-1][1] == "https://arxiv.org/abs/2601.00050v3"
    assert told.code == [
        "https://github.com/example/sparse-load",
        "https://huggingface.co/example/sparse-load",
    ]
    assert [d.title for d in told.cited_by] == ["Utilities try sparse transformers"]
    assert [d.canonical_id for d in story(store, store.resolve(news.url)).cites] == ["2601.00050"]


def test_new_evidence_about_a_shortlisted_item_is_reported_once(world) -> None:
    settings, store = world
    entry = add_entry(
        store,
        settings,
        "2601.00005",
        "retail/personalisation",
        by="ana",
        now=datetime(2026, 3, 10, tzinfo=UTC),
    )
    assert refresh_evidence(store, now=datetime(2026, 3, 16, tzinfo=UTC)) == 0
    week = datetime(2026, 3, 16, tzinfo=UTC)
    assert recent_evidence(store, week) == []  # what existed before is not news
    store.upsert(
        [
            Document(
                "https://news.example/reco",
                "A retailer adopts session-based recommendations",
                "The shop uses the recurrent model of 2601.00005; code at "
                "https://github.com/example/session-rnn.",
                kind="news",
                source="Example News",
                url="https://news.example/reco",
                published=datetime(2026, 3, 17, tzinfo=UTC),
            )
        ]
    )
    assert refresh_evidence(store, now=datetime(2026, 3, 17, 9, tzinfo=UTC)) == 1
    assert refresh_evidence(store, now=datetime(2026, 3, 18, tzinfo=UTC)) == 0  # once only
    [found] = recent_evidence(store, week, sectors=["retail"])
    assert found.entry_id == entry.id and found.kind == "news"
    assert "cited by a news item: A retailer adopts" in found.text
    assert recent_evidence(store, week, sectors=["health"]) == []


def test_more_like_my_shortlist(world) -> None:
    settings, store = world
    target = "health/diagnosis_support"
    empty = more_like_shortlist(store, settings, target)
    assert empty.items == [] and "at least 2" in empty.message
    add_entry(store, settings, "2601.00009", target)  # chest X-rays
    add_entry(store, settings, "2601.00010", target)  # sepsis from records
    rejected = add_entry(store, settings, "2601.00012", target)  # primes
    move_entry(store, settings, rejected.id, "rejected", reason="not medicine")
    found = more_like_shortlist(store, settings, target, k=3)
    ids = [r.document.canonical_id for r in found.items]
    assert ids and not {"2601.00009", "2601.00010", "2601.00012"} & set(ids)
    assert "2 kept and 1 rejected" in found.message
    assert all(0 <= r.probability <= 1 for r in found.items)
    assert found.items[0].why.startswith("probability")

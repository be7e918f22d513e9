"""The Shortlists page and the "Add to shortlist" controls of Sectors, Search and Document,
through Streamlit's AppTest, over the small corpus of test_dashboard (a hostile title in it)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from core.models import Document
from core.store import Store
from index.pipeline import index_and_match
from index.shortlists import add_entry, history, list_entries, move_entry, set_owner
from index.story import refresh_evidence
from tests.test_dashboard import DOCS, HOSTILE, app_test, assert_no_raw_html, texts

pytestmark = pytest.mark.slow

FRAUD = "finance/fraud_detection"
MARKET = "finance/market_prediction"
PRIMES = "Gaps between consecutive primes in short intervals"


@pytest.fixture
def corpus(settings, store: Store, real_embedder) -> Store:
    store.upsert(DOCS)
    index_and_match(store, settings)
    return store


@pytest.fixture
def board(corpus: Store, settings) -> dict[str, int]:
    """Two entries on the finance board: the hostile fraud paper in pilot, owned by lea;
    the paper on primes, new."""
    fraud = add_entry(corpus, settings, "fraud-gnn", FRAUD, by="ana")
    move_entry(corpus, settings, fraud.id, "pilot", by="ana", reason="the bank's data is ready")
    set_owner(corpus, fraud.id, "lea", by="ana")
    primes = add_entry(corpus, settings, "primes", MARKET, by="ana")
    return {"fraud": fraud.id, "primes": primes.id}


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """What each download button of a run would hand the visitor, by file name."""
    found: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        if filename:
            found[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return found


def subheaders(at) -> list[str]:
    return [str(e.value) for e in at.subheader]


# -- the Shortlists page -----------------------------------------------------------------


def test_shortlists_page_says_what_to_do_when_empty(corpus: Store) -> None:
    at = app_test("shortlists")
    assert not at.exception
    shown = texts(at)
    assert "No shortlist yet: add papers from Sectors, Search or a document page" in shown
    assert "`veille shortlist add ID --use-case SECTOR/USE_CASE`" in shown
    assert not at.button  # no board, no control acting on nothing


def test_shortlists_page_without_documents(store: Store) -> None:
    at = app_test("shortlists")
    assert not at.exception
    assert "No documents yet" in texts(at)


def test_board_shows_columns_by_status_with_shapes_and_parts(board, corpus: Store) -> None:
    at = app_test("shortlists", sector="finance")
    assert not at.exception
    assert at.selectbox[0].value == "finance"
    heads = subheaders(at)
    # one column per status, named by text and shape (never colour alone), with its count
    for head in ("○ New (1)", "◐ To evaluate (0)", "▶ Pilot (1)", "✔ Adopted (0)"):
        assert head in heads, heads
    assert "✖ Rejected (0)" in heads
    shown = texts(at)
    assert r"\<script\>alert\(1\)\</script\>" in shown  # the hostile title, as text
    assert_no_raw_html(at)
    assert "Owner: lea" in shown and "Owner: nobody yet" in shown
    assert re.search(r"Opportunity 0\\\.\d\d: relevance 0\\\.\d\d, maturity .*momentum", shown)
    assert "ana moved it from New to Pilot: the bank's data is ready" in shown
    assert "2 of 2 entries shown" in shown
    # every control names the entry it acts on
    labels = [b.label for b in at.button]
    assert "Move Gaps between consecutive primes in…" in labels
    assert not [label for label in labels if label in ("Move", "Set owner", "Add note")]


def test_a_move_with_a_reason_writes_a_log_line(board, corpus: Store, settings) -> None:
    at = app_test("shortlists", sector="finance")
    at.text_input(key="answer_as").input("bo")
    entry = board["primes"]
    at.selectbox(key=f"sl-{entry}-status").select("rejected")
    at.text_input(key=f"sl-{entry}-why").input("no market data in it")
    at.button(key=f"sl-{entry}-move").click().run()
    assert not at.exception
    assert "to ✖ Rejected" in texts(at)
    assert "✖ Rejected (1)" in subheaders(at) and "○ New (0)" in subheaders(at)
    last = history(corpus, entry)[-1]
    assert (last.action, last.by, last.old, last.new, last.reason) == (
        "moved",
        "bo",
        "new",
        "rejected",
        "no market data in it",
    )
    assert "bo moved it from New to Rejected: no market data in it" in texts(at)

    # owner and note, from the same card
    at.text_input(key=f"sl-{entry}-owner").input("max")
    at.button(key=f"sl-{entry}-setowner").click().run()
    at.text_area(key=f"sl-{entry}-note").input("ask the quant team anyway")
    at.button(key=f"sl-{entry}-addnote").click().run()
    assert not at.exception
    [primes] = list_entries(corpus, settings, use_case=MARKET)
    assert primes.owner == "max" and "bo] ask the quant team anyway" in primes.notes
    assert [line.action for line in history(corpus, entry)][-2:] == ["owner", "note"]


def test_filters_narrow_the_board(board, corpus: Store) -> None:
    at = app_test("shortlists", sector="finance")
    at.text_input(key="sl-filter-text").input("PRIMES intervals").run()
    assert "1 of 2 entries shown" in texts(at)
    assert "GNN fraud rings" not in texts(at) and "○ New (1)" in subheaders(at)
    at.text_input(key="sl-filter-text").input("").run()
    at.selectbox(key="sl-filter-owner").select("lea").run()
    assert "1 of 2 entries shown" in texts(at) and "▶ Pilot (1)" in subheaders(at)
    assert "○ New (0)" in subheaders(at)
    at.selectbox(key="sl-filter-owner").select("").run()
    at.selectbox(key="sl-filter-uc").select("market_prediction").run()
    assert "1 of 2 entries shown" in texts(at) and "Gaps between" in texts(at)
    at.selectbox(key="sl-filter-uc").select("").run()
    at.multiselect(key="sl-filter-status").set_value(["adopted"]).run()
    assert "0 of 2 entries shown" in texts(at)
    assert "No entry matches these filters" in texts(at)


def test_exports_hold_the_filtered_cards_with_hostile_titles_escaped(
    board, corpus: Store, downloads
) -> None:
    at = app_test("shortlists", sector="finance")
    assert not at.exception
    markdown = downloads["veille-shortlist-finance.md"].decode("utf-8")
    assert not re.search(r"(?<!\\)<", markdown)  # every < escaped: no HTML gets through
    assert r"\<script\>alert(1)\</script\>" in markdown and "Gaps between" in markdown
    assert "- Status: ▶ Pilot, owner lea" in markdown
    assert re.search(r"^- \d{4}-\d\d-\d\d \d\d:\d\d ana shortlisted it$", markdown, re.M)
    assert "Opportunity 0." in markdown and "momentum" in markdown
    rows = list(csv.DictReader(io.StringIO(downloads["veille-shortlist-finance.csv"].decode())))
    assert {r["title"] for r in rows} == {HOSTILE, PRIMES}  # CSV keeps the text as it is
    assert {r["status"] for r in rows} == {"Pilot", "New"}
    # the exports follow the filters
    at.text_input(key="sl-filter-text").input("primes").run()
    markdown = downloads["veille-shortlist-finance.md"].decode("utf-8")
    assert "Gaps between" in markdown and "GNN fraud rings" not in markdown


def test_more_like_my_shortlist_adds_a_suggestion(corpus: Store, settings) -> None:
    for doc in ("fraud-gnn", "contracts"):
        add_entry(corpus, settings, doc, FRAUD, by="ana")
    at = app_test("shortlists", sector="finance")
    assert not at.exception
    assert "More like my shortlist" in [str(h.value) for h in at.header]
    assert "Learned from 2 kept and 0 rejected" in texts(at)
    suggested = [b for b in at.button if (b.key or "").startswith(f"sl-more-{FRAUD}-")]
    assert suggested and suggested[0].label.startswith("Add to shortlist: ")
    doc_id = suggested[0].key.removeprefix(f"sl-more-{FRAUD}-")
    suggested[0].click().run()
    assert not at.exception
    assert doc_id in {e.canonical_id for e in list_entries(corpus, settings, use_case=FRAUD)}
    assert "○ New (3)" in subheaders(at)


# -- "Add to shortlist" on the cards of other pages --------------------------------------


def test_add_to_shortlist_from_sectors(corpus: Store, settings) -> None:
    at = app_test("sectors", sector="industry")
    at.text_input(key="answer_as").input("ana")
    base = "sl-uc-predictive_maintenance-lstm-rul"
    # the match's use case is preselected, and the control names the document
    assert at.selectbox(key=base + "-uc").value == "industry/predictive_maintenance"
    assert at.button(key=base + "-add").label.startswith("Add to shortlist: LSTM networks")
    at.button(key=base + "-add").click().run()
    assert not at.exception
    assert "On the shortlist of Industry › Predictive maintenance: ○ New" in texts(at)
    [entry] = list_entries(corpus, settings)
    assert (entry.canonical_id, entry.target) == ("lstm-rul", "industry/predictive_maintenance")
    assert history(corpus, entry.id)[0].by == "ana"
    assert "Already shortlisted" not in texts(at)  # one message, not two that disagree
    # the card says where it is shortlisted when the page is opened again
    at = app_test("sectors", sector="industry")
    assert "Already shortlisted for Industry › Predictive maintenance" in texts(at)


def test_sectors_orders_by_opportunity_with_its_parts(corpus: Store) -> None:
    at = app_test("sectors", sector="finance")
    assert "Opportunity" not in texts(at)  # relevance is the default order
    radio = next(r for r in at.radio if r.label == "Order by")
    assert radio.value == "fit"
    radio.set_value("opportunity score").run()
    assert not at.exception
    assert re.search(
        r"Opportunity 0\\\.\d\d = relevance 0\\\.\d\d, maturity 0\\\.\d\d, momentum",
        texts(at),
    )


def test_add_to_shortlist_from_search_with_another_use_case(corpus: Store, settings) -> None:
    at = app_test("search", q="graph neural network for money laundering")
    base = "sl-search-fraud-gnn"
    assert at.selectbox(key=base + "-uc").value == FRAUD
    at.selectbox(key=base + "-uc").select("finance/credit_decisions")
    at.button(key=base + "-add").click().run()
    assert not at.exception
    [entry] = list_entries(corpus, settings)
    assert (entry.canonical_id, entry.target) == ("fraud-gnn", "finance/credit_decisions")
    assert "On the shortlist of Financial services › Loan and credit" in texts(at)


def test_document_page_adds_to_shortlist_and_tells_its_story(corpus: Store, settings) -> None:
    paper = Document(
        "2601.00050",
        "Sparse transformers forecast electricity demand",
        "We release the code at https://github.com/example/sparse-load. A sparse transformer "
        "forecasts demand for retail stock planning.",
        url="https://arxiv.org/abs/2601.00050",
        published=datetime(2026, 3, 1, tzinfo=UTC),
        extra={"version": "v2"},
    )
    corpus.upsert([paper])
    at = app_test("document", id="2601.00050")
    assert not at.exception
    shown = texts(at)
    assert "Not on any shortlist yet." in shown
    assert "**arXiv versions:** [v1](https://arxiv.org/abs/2601.00050v1)" in shown
    code = "github\\.com/example/sparse\\-load](https://github.com/example/sparse-load)"
    assert code in shown
    at.selectbox(key="sl-doc-2601.00050-uc").select("retail/back_office")
    at.button(key="sl-doc-2601.00050-add").click().run()
    assert not at.exception
    assert "On the shortlist of Retail › Back" in texts(at)
    [entry] = list_entries(corpus, settings)
    assert entry.target == "retail/back_office"
    refresh_evidence(corpus)  # the first look: what exists already is not news

    # a news item citing the paper arrives; the next refresh records it as evidence
    news = Document(
        "https://news.example/grid",
        "Utilities <b>try</b> sparse transformers",
        "Grid operators test the model of arXiv paper 2601.00050.",
        kind="news",
        source="Example News",
        url="https://news.example/grid",
        published=datetime(2026, 3, 6, tzinfo=UTC),
    )
    corpus.upsert([news])
    assert refresh_evidence(corpus) == 1
    at = app_test("document", id="2601.00050")
    shown = texts(at)
    assert "Retail › Back" in shown and "○ New" in shown
    assert "cited by a news item: Utilities \\<b\\>try\\</b\\> sparse transformers" in shown
    assert "News items that cite it (1)" in shown
    assert_no_raw_html(at)
    # and the news item's page names the paper it cites, with a link to it
    at = app_test("document", id="https://news.example/grid")
    # its id is shown as it is (code style), not as a link with escaped dots
    assert "**Id:** `https://news.example/grid`" in texts(at)
    links = [e for e in at.get("page_link") if "Paper: Sparse transformers" in e.proto.label]
    assert links, [e.proto.label for e in at.get("page_link")]

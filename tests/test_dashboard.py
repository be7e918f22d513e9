"""Dashboard pages through Streamlit's AppTest (with data and empty), and the data behind them."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.markup import counted, http_url, md_escape, to_csv
from core.models import Document
from core.schema import doc_matches
from core.store import Store
from dashboard.present import item_row, items_markdown, latest_run_rows
from index.pipeline import index_and_match
from index.reports import heatmap, sector_items, source_runs, week_overview
from tests.conftest import proc_stat

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
RAW_TAG = re.compile(r"(?<!\\)<\s*/?\s*(script|img)", re.I)
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> GNN fraud rings'

DOCS = [
    Document(
        "fraud-gnn",
        HOSTILE,
        "Payment transactions link cards, merchants and devices. A graph neural network passes "
        "messages over this graph and flags fraudulent transactions and money laundering rings "
        "better than a per-transaction classifier.",
        url="https://example.org/fraud-gnn",
        published=datetime(2026, 3, 2, tzinfo=UTC),
    ),
    Document(
        "lstm-rul",
        "LSTM networks predict the remaining useful life of turbofan engines",
        "Vibration and temperature sensors on aircraft engines feed a long short-term memory "
        "network that estimates remaining useful life, so maintenance can be planned before "
        "a failure.",
        url="javascript:alert(3)",
        published=datetime(2026, 3, 3, tzinfo=UTC),
    ),
    Document(
        "contracts",
        "Extracting obligations from commercial contracts with language models",
        "A large language model reads supply agreements and extracts each clause, the party "
        "it binds and its deadline, helping lawyers review contracts faster.",
        published=datetime(2026, 3, 4, tzinfo=UTC),
    ),
    Document(
        "xray",
        "Convolutional networks read chest X-rays",
        "A convolutional neural network trained on chest radiographs detects pneumonia and "
        "helps radiologists triage medical images in hospitals.",
        published=datetime(2026, 2, 20, tzinfo=UTC),
    ),
    Document(
        "primes",
        "Gaps between consecutive primes in short intervals",
        "We prove a new upper bound on gaps between consecutive prime numbers using sieve "
        "estimates and exponential sums.",
        published=datetime(2026, 3, 5, tzinfo=UTC),
    ),
]


@pytest.fixture
def corpus(settings, store: Store, real_embedder) -> Store:
    store.upsert(DOCS)
    index_and_match(store, settings)
    run = store.start_run("arxiv")
    store.finish_run(run, status="error", fetched=3, new=2, errors=1, last_error="HTTP 503")
    return store


def app_test(page: str, **params: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(f"views/{page}.py")
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def texts(at) -> str:
    parts = []
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "error", "warning")
    for kind in (*kinds, "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def assert_no_raw_html(at) -> None:
    """Every < of crawled markup reaches Markdown escaped, so it shows as text."""
    for element in at.markdown:
        assert not RAW_TAG.search(element.value), element.value


# -- the data behind the pages -----------------------------------------------------------


def test_markdown_escaping_and_links() -> None:
    assert md_escape("<b>*x*</b> [a](b)") == r"\<b\>\*x\*\</b\> \[a\]\(b\)"
    assert http_url("https://arxiv.org/abs/1706.03762") == "https://arxiv.org/abs/1706.03762"
    assert http_url("javascript:alert(1)") is None
    assert http_url("https://x.org/a)(b") is None


def test_counted_says_one_result_and_many_results() -> None:
    assert counted(1, "result") == "1 result"
    assert counted(0, "result") == "0 results"
    assert counted(3, "new text") == "3 new texts"
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(2, "entry", "entries") == "2 entries"
    assert counted(1234, "document") == "1234 documents"  # numbers as the sentences wrote them


def test_exports_are_escaped(corpus: Store, settings) -> None:
    items = sector_items(corpus, settings, "finance")
    assert [i.canonical_id for i in items] == ["fraud-gnn"]
    rows = [item_row(i) for i in items] + [{**item_row(items[0]), "title": "=HYPERLINK(1)"}]
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[0]["title"] == HOSTILE  # CSV keeps the text as it is
    assert parsed[1]["title"] == "'=HYPERLINK(1)"  # but never as a formula
    markdown = items_markdown(items, title="Finance")
    assert "<script>" not in markdown and r"\<script\>" in markdown
    assert "## Fraud detection" in markdown and "(https://example.org/fraud-gnn)" in markdown


def test_trending_tables_give_a_sector_column_to_use_cases_only() -> None:
    from dashboard.present import trending_rows
    from index.trends import build_report

    starts = [datetime(2026, 1, 5, tzinfo=UTC) + timedelta(weeks=i) for i in range(6)]
    series = {"rnn": [1, 1, 1, 2, 4, 6]}
    techniques = build_report("technique", starts, series, [50] * 6, {"rnn": ("RNN", None)})
    [row] = trending_rows(techniques)
    assert row["name"] == "RNN" and "sector" not in row
    cases = build_report("use_case", starts, series, [50] * 6, {"rnn": ("Maintenance", "industry")})
    [row] = trending_rows(cases)
    assert row["sector"] == "industry"


def test_week_overview_counts_and_heatmap(corpus: Store, settings) -> None:
    view = week_overview(corpus, settings)
    assert view.end.date().isoformat() == "2026-03-05"
    assert view.new_documents == 4 and view.previous_documents == 1  # the X-ray is older
    sectors = {r["sector"]: r["new"] for r in view.by_sector}
    assert sectors["finance"] == 1 and sectors["health"] == 0
    assert [i.canonical_id for i in view.top_per_sector["Financial services"]] == ["fraud-gnn"]
    cells = {(c["sector"], c["technique"]): c["documents"] for c in heatmap(corpus, settings)}
    assert sum(cells.values()) >= 3
    assert any(n > 0 for (s, _), n in cells.items() if s == "Health")


def test_source_health_shows_failures(corpus: Store) -> None:
    health = source_runs(corpus)
    assert health.documents == len(DOCS)
    [latest] = latest_run_rows(health.latest)
    assert (latest["status"], latest["last error"]) == ("error", "HTTP 503")


# -- pages with data ---------------------------------------------------------------------


def test_this_week_page(corpus: Store) -> None:
    at = app_test("this_week")
    assert not at.exception
    shown = texts(at)
    assert "Week of **26 Feb 2026** to **05 Mar 2026**" in shown
    assert "Top new innovations per sector" in shown
    assert r"\<script\>alert\(1\)\</script\>" in shown  # the hostile title, as text
    assert "Nothing new this week for this sector." in shown  # health: the X-ray is older
    # five documents: no theme, and the page says why
    assert "No emerging theme. Too few documents to look for themes" in shown.replace("\\", "")
    assert_no_raw_html(at)
    assert at.metric[0].value == "4"


def test_sectors_page_lists_use_cases_with_reasons(corpus: Store) -> None:
    at = app_test("sectors", sector="industry")
    assert not at.exception
    assert at.selectbox[0].value == "industry"
    shown = texts(at)
    assert "Predictive maintenance" in shown
    assert "LSTM networks predict the remaining useful life" in shown
    assert "Why: Matched by the description and keywords of 'Predictive maintenance'" in shown
    # techniques by their names, as in the digest, not by their keys ("rnn")
    captions = [str(c.value) for c in at.caption if str(c.value).startswith("Techniques: ")]
    assert captions and "Recurrent networks \\(RNN, LSTM, GRU\\)" in captions[0]
    assert "rnn" not in captions[0]
    assert "Does this fit?" in shown  # the questions that teach the matcher most
    # the javascript: URL is not turned into a link
    assert "javascript:" not in shown
    assert_no_raw_html(at)
    at.selectbox[0].select("finance").run()
    assert at.query_params["sector"] == "finance"
    assert "Fraud detection" in texts(at)


def test_fits_and_does_not_fit_buttons_record_feedback(corpus: Store) -> None:
    from index.feedback import feedback_rows

    at = app_test("sectors", sector="industry")
    no = [b for b in at.button if (b.key or "").startswith("fb-uc-") and b.key.endswith("-no")]
    # each button names the sector and the item it is about, not just "Does not fit"
    assert no and no[0].label.startswith("Does not fit Industry: ")
    assert any(b.label.startswith("Fits Industry: LSTM networks predict") for b in at.button)
    no[0].click().run()
    assert not at.exception
    assert "Thank you: recorded that it does not fit Industry" in texts(at)
    rows = feedback_rows(corpus)
    assert len(rows) == 1 and rows[0].sector == "industry" and not rows[0].fits
    assert rows[0].origin == "dashboard"


def test_a_use_case_learning_from_its_description_is_asked_about_with_it_chosen(
    corpus: Store,
) -> None:
    from index.feedback import feedback_rows

    # Finance's use cases with fewer than five judged papers (fraud detection has two) are
    # scored by their description; the page asks about the papers likeliest to belong.
    at = app_test("sectors", sector="finance")
    assert not at.exception
    chosen = [s for s in at.selectbox if (s.key or "").startswith("fb-ask-") and s.value]
    assert chosen, texts(at)
    doc = chosen[0].key.removeprefix("fb-ask-").removesuffix("-finance-uc")
    assert "Veille knows" in texts(at)  # why it asks, with the use case named
    yes = next(b for b in at.button if b.key == f"fb-ask-{doc}-finance-yes")
    yes.click().run()
    assert not at.exception
    rows = feedback_rows(corpus)
    assert [(r.canonical_id, r.use_case, r.fits) for r in rows] == [(doc, chosen[0].value, True)]


def test_sectors_page_says_how_well_the_matcher_knows_the_sector_and_learns(
    corpus: Store, settings
) -> None:
    from index.learner import load_matcher
    from index.taxonomy import load_taxonomy
    from jobs.runs import recent_job_runs

    taxonomy = load_taxonomy(settings)
    before = load_matcher(settings, settings.model, taxonomy).targets["health"]
    at = app_test("sectors", sector="health")
    assert not at.exception
    shown = texts(at)
    assert "How well Veille knows Health" in shown
    assert f"Veille learned Health from {before.positives:,} judged documents" in shown
    assert f"it found {before.recall:.0%} of those that fit (recall)" in shown
    assert "Nobody has answered about Health yet." in shown
    assert "Table: how each use case of the sector is matched" in shown
    # A lead answers; the page says the answer waits for the next training ...
    yes = next(
        b
        for b in at.button
        if (b.key or "").startswith("fb-uc-") and (b.key or "").endswith("-xray-health-yes")
    )
    yes.click().run()
    shown = texts(at)
    assert "Your team has answered 1 time about Health: 1 fits, 0 does not fit." in shown
    assert "New answers count from the next training" in shown
    # ... and a click trains it now, in the background; then the page says it learned.
    at.button(key="train-now").click().run()
    assert "Training started (process" in texts(at)
    deadline = time.monotonic() + 180
    runs = []
    while time.monotonic() < deadline and not runs:
        runs = [r for r in recent_job_runs(corpus, 5) if r.job == "matcher" and r.finished]
        time.sleep(0.2)
    assert runs and runs[0].outcome == "ok", runs
    pid = int(re.search(r"\(process (\d+)\)", texts(at)).group(1))
    while time.monotonic() < deadline and (s := proc_stat(pid)) is not None and s[0] != "Z":
        time.sleep(0.05)
    assert proc_stat(pid) is None or proc_stat(pid)[0] == "Z", f"job process {pid} still runs"
    at.run()
    shown = texts(at)
    assert "Every answer is already trained on." in shown
    assert f"Veille learned Health from {before.positives + 1:,} judged documents" in shown
    assert not [b for b in at.button if b.key == "train-now"]  # nothing left to train on


def test_search_page_keeps_query_and_filters_in_url(corpus: Store) -> None:
    at = app_test("search")
    assert not at.exception
    assert "Type a query and press Search" in texts(at)
    at.text_input[0].input("graph neural network for money laundering")
    at.button[0].click().run()
    assert not at.exception
    assert at.query_params["q"] == "graph neural network for money laundering"
    shown = texts(at)
    assert re.search(r"^\d+ results$", shown, re.M) and r"GNN fraud rings" in shown
    assert_no_raw_html(at)
    # a shared link with a sector filter restricts the results before ranking
    at = app_test("search", q="neural network", sector="health")
    assert not at.exception
    shown = texts(at)
    assert "Convolutional networks read chest X\\-rays" in shown
    assert "turbofan" not in shown and "fraud" not in shown.lower()


def test_more_like_this(corpus: Store) -> None:
    at = app_test("search", like="fraud-gnn")
    assert not at.exception
    shown = texts(at)
    # The heading names the document by its title (crawled text: escaped), not by its id.
    [heading] = [str(h.value) for h in at.subheader if str(h.value).startswith("More like")]
    assert "GNN fraud rings" in heading and "fraud\\-gnn" not in heading
    assert_no_raw_html(at)
    assert shown.count("GNN fraud rings") == 1  # the document itself is not its own neighbour
    assert "turbofan" in shown or "chest X" in shown
    at = app_test("search", like="nope")
    assert "no document with id" in texts(at)


def test_document_page(corpus: Store) -> None:
    at = app_test("document", id="xray")
    assert not at.exception
    shown = texts(at)
    assert "Convolutional networks read chest X\\-rays" in shown
    assert "Health" in shown and "Why:" in shown
    assert "Similar items" in shown
    # a document that fits two use cases of one sector gets feedback controls for each
    with corpus.engine.begin() as conn:
        row = (
            conn.execute(
                sa.select(doc_matches).where(doc_matches.c.doc_id == corpus.resolve("xray").id)
            )
            .first()
            ._asdict()
        )
        other = "patient_coaching" if row["use_case"] != "patient_coaching" else "diagnosis_support"
        conn.execute(doc_matches.insert().values({**row, "use_case": other}))
    at = app_test("document", id="xray")
    assert not at.exception
    answers = [s.value for s in at.selectbox if re.fullmatch(r"fb-match-.*-xray-health-uc", s.key)]
    assert sorted(answers) == sorted([row["use_case"], other])
    at = app_test("document", id="no-such-doc")
    assert "No document with id" in texts(at)


def test_trends_page(corpus: Store) -> None:
    at = app_test("trends")
    assert not at.exception
    shown = texts(at)
    assert "Growth and bursts" in shown
    assert "Growth: documents in the window's second half against its first half" in shown
    assert at.multiselect[0].value  # some series are shown by default
    at.multiselect[0].set_value([]).run()
    assert "No series is chosen: pick one or more under “Series shown”" in texts(at)
    at.multiselect[0].set_value(at.multiselect[0].options[:1]).run()
    assert "Emerging themes" in shown
    # the newest document is of Thursday 5 March, long before today: the chart says the
    # window ends there and its last week is partial (not "so far")
    assert (
        "The window ends on 2026-03-05, the newest publication date stored, so its last week "
        "(starting 2026-03-02) holds 4 days: its counts are partial, not a fall."
    ) in shown.replace("\\", "")
    assert "No emerging theme. Too few documents to look for themes" in shown.replace("\\", "")


def _theme_page() -> None:
    from core.models import Document
    from dashboard.common import theme_cards
    from index.themes import SectorTouch, Theme, ThemeList, summarise

    new = Theme("vision-language-action models", ["VLA"], 9, 0, 0.0, [], new=True)
    new.keywords = ["manipulation", "grasping"]
    hostile = '<img src=x onerror="alert(1)"> segmentation'
    growing = Theme(
        hostile,
        ["tumours"],
        12,
        4,
        3.1,
        [Document("p1", "Segmenting *tumours*", "…", url="javascript:alert(1)")],
        weeks_running=3,
        sectors=[SectorTouch("health", "diagnosis", "Diagnosis support", 4, "Health")],
    )
    for theme in (new, growing):
        theme.summary = summarise(theme)
    theme_cards([new, growing])
    theme_cards(
        ThemeList(
            note="Too few documents to look for themes.",
            crawl_changes=["category cs.IT entered the crawl"],
        )
    )


def test_theme_cards_say_what_grew_for_how_long_and_where() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_theme_page, default_timeout=60).run()
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert labels[0] == (
        "vision\\-language\\-action models \\(manipulation, grasping\\) — 9 recent, new this period"
    )
    assert labels[1].endswith("— 12 recent, 4 before, growing for 3 weeks")
    assert not RAW_TAG.search(labels[1])
    plain = texts(at).replace("\\", "")  # Markdown escapes, removed to read the words
    assert "New this period: 9 recent documents, none before." in plain
    assert "3.1x the count expected" in plain
    assert "Touches: Health › Diagnosis support (4 documents)" in plain
    assert "Segmenting *tumours*" in plain and "javascript:" not in plain
    assert "No emerging theme. Too few documents to look for themes." in plain
    assert "Crawl change, not a theme: category cs.IT entered the crawl" in plain
    assert_no_raw_html(at)


def test_sources_page(corpus: Store) -> None:
    at = app_test("sources")
    assert not at.exception
    shown = texts(at)
    assert "1 source failed on their last run: arxiv" in shown


# -- pages on an empty store -------------------------------------------------------------


@pytest.mark.parametrize("page", ["this_week", "sectors", "search", "document", "trends"])
def test_pages_explain_what_to_do_when_empty(page: str, store: Store) -> None:
    at = app_test(page)
    assert not at.exception
    assert "No documents yet" in texts(at)
    assert "veille crawl arxiv" in texts(at)


def test_sources_page_follows_a_crawl_in_progress(store: Store) -> None:
    """The first crawl after install (or any crawl) shows its counts so far on Sources."""
    run = store.start_run("arxiv")
    store.progress_run(run, pages=2, fetched=200, new=150, updated=3)
    at = app_test("sources")
    assert not at.exception
    assert "Crawling now" in texts(at)
    [progress] = [d.value for d in at.dataframe if "running for" in d.value.columns]
    row = progress.iloc[0]
    assert (row["source"], row["pages"], row["new"], row["updated"]) == ("arxiv", 2, 150, 3)

    store.finish_run(run, status="ok", pages=3, fetched=300, new=220)
    at = app_test("sources")
    assert "Crawling now" not in texts(at)


def test_sources_page_empty(store: Store) -> None:
    at = app_test("sources")
    assert not at.exception
    assert "No crawl has run yet" in texts(at)
    assert "Scheduled jobs" in texts(at)


def test_sources_page_operator_button_runs_a_job(store: Store, settings) -> None:
    from jobs.runs import recent_job_runs

    at = app_test("sources")
    frames = [d.value for d in at.dataframe]
    news = next(f for f in frames if "feed" in f.columns)  # the shipped default feeds
    assert len(news) >= 3 and set(news["enabled"]) <= {"yes", "no"}
    schedules = next(f for f in frames if "schedule" in f.columns)
    assert {"arxiv", "news", "digest"} <= set(schedules["job"])
    at.button(key="launch-reindex").click().run()
    assert "Started the reindex job" not in texts(at)  # a click only asks for confirmation
    assert "Start “Re-index now”?" in texts(at)
    at.button(key="launch-confirm").click().run()
    assert "Started the reindex job" in texts(at)
    assert "Start “Re-index now”?" not in texts(at)  # the answered question is gone
    assert not [b for b in at.button if b.key == "launch-confirm"]
    deadline = time.monotonic() + 120
    runs = []
    while time.monotonic() < deadline:
        runs = [r for r in recent_job_runs(store, 5) if r.job == "reindex" and r.finished]
        if runs:
            break
        time.sleep(1)
    assert runs and runs[0].outcome in ("ok", "skipped"), runs
    # the job's process ends soon after its run is recorded: wait for it, leave nothing behind
    pid = int(re.search(r"\(process (\d+)\)", texts(at)).group(1))
    while time.monotonic() < deadline and (s := proc_stat(pid)) is not None and s[0] != "Z":
        time.sleep(0.05)
    assert proc_stat(pid) is None or proc_stat(pid)[0] == "Z", f"job process {pid} still runs"


def test_control_labels_name_their_item_without_markup() -> None:
    from dashboard.common import label_title

    assert label_title("Short title") == "Short title"
    long = "Research on Low-Latency Inference and Training Efficiency Optimization for Graph"
    assert label_title(long) == "Research on Low-Latency Inference and Training…"
    assert label_title(HOSTILE) == "script alert(1) /script img src=x…"
    assert label_title("**Bold** [x](y) $a$") == "Bold x (y) a"


def test_operator_actions_need_a_confirmation_and_are_rate_limited(
    store: Store, settings, monkeypatch
) -> None:
    import jobs.launch

    started: list[str] = []

    class Started:
        pid = 4242

    def no_process(*args, **kwargs):  # the job's process itself is tested above
        started.append(args[0][-1])
        return Started()

    monkeypatch.setattr(jobs.launch.subprocess, "Popen", no_process)
    at = app_test("sources")
    at.button(key="launch-arxiv").click().run()
    at.button(key="launch-cancel").click().run()
    assert "Nothing was started." in texts(at) and started == []
    at.button(key="launch-arxiv").click().run()
    at.button(key="launch-confirm").click().run()
    assert "Started the arxiv job" in texts(at) and started == ["arxiv"]

    # clicking again, from this session or another one, is refused during the cool-down
    for session in (at, app_test("sources")):
        session.button(key="launch-arxiv").click().run()
        session.button(key="launch-confirm").click().run()
        shown = texts(session)
        assert "Not started: the arxiv job was started from the dashboard" in shown, shown
        assert "operator\\_cooldown = 300 s" in shown
    assert started == ["arxiv"]
    # after the cool-down the job can be started again
    later = datetime.now(UTC) + timedelta(seconds=301)
    jobs.launch.launch_job(settings, "arxiv", store=store, now=later)
    assert started == ["arxiv", "arxiv"]


def test_more_like_this_escapes_the_address_bar_value(corpus: Store) -> None:
    at = app_test("search", like="[win a prize](https://evil.example) ![x](https://t.example/p)")
    assert not at.exception
    [error] = at.error
    assert "no document with id" in error.value
    assert "](https://" not in error.value and "\\[win a prize\\]" in error.value


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("127.0.0.1:8501", True),
        ("localhost:8501", True),
        ("[::1]:8501", True),
        ("veille.example.com", True),  # the host of public_url
        ("proxy.internal:443", True),  # dashboard_allowed_hosts
        ("evil.example:8501", False),  # a rebound DNS name
        ("127.0.0.1.evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_only_the_configured_host_names_are_answered(header, expected) -> None:
    from core.settings import dashboard_hosts, host_allowed, load_settings

    settings = load_settings(
        public_url="https://veille.example.com/", dashboard_allowed_hosts=["proxy.internal"]
    )
    assert host_allowed(header, dashboard_hosts(settings)) is expected


def test_dashboard_never_renders_raw_html() -> None:
    root = Path(APP).parent
    for path in root.rglob("*.py"):
        assert "unsafe_allow_html" not in path.read_text(encoding="utf-8"), path


def test_unsubscribe_page_needs_a_valid_signed_link(store: Store, settings) -> None:
    from core.subscribers import add_subscriber, get_subscriber
    from index.taxonomy import load_taxonomy
    from jobs.unsubscribe_links import make_unsubscribe_token

    add_subscriber(
        store, "ana@example.org", sectors="finance", consent=True, taxonomy=load_taxonomy(settings)
    )
    token = make_unsubscribe_token(settings, "ana@example.org", store=store)
    # a forged token (one character changed) is refused and changes nothing
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    at = app_test("unsubscribe", token=forged)
    at.button[0].click().run()
    assert "not valid" in texts(at)
    assert get_subscriber(store, "ana@example.org").active
    # opening the link alone does nothing (mail scanners open links); the click unsubscribes
    at = app_test("unsubscribe", token=token)
    assert get_subscriber(store, "ana@example.org").active
    at.button[0].click().run()
    assert not at.exception
    assert "ana@example.org will receive no more digests" in texts(at).replace("\\", "")
    assert not get_subscriber(store, "ana@example.org").active


def test_maturity_signals() -> None:
    from index.maturity import maturity

    ripe = maturity(
        Document(
            "m1",
            "Fast fraud scoring",
            "Our model outperforms strong baselines and is deployed in production at a bank. "
            "Code is available at https://github.com/example/fraud.",
        )
    )
    assert ripe.signals == ["code released", "benchmarked", "industry use"]
    assert ripe.score == 0.75
    bare = maturity(Document("m2", "A theorem", "We prove a bound on prime gaps."))
    assert bare.signals == [] and bare.score == 0.0
    # a comment of the arXiv entry counts too
    assert (
        "data released"
        in maturity(
            Document("m3", "T", "Text.", extra={"comment": "The dataset is publicly available."})
        ).signals
    )


def test_sectors_page_orders_by_maturity(corpus: Store) -> None:
    at = app_test("sectors", sector="industry")
    assert "Maturity: no signal in the text" in texts(at)  # the LSTM abstract names none
    radio = next(r for r in at.radio if r.label == "Order by")
    radio.set_value("maturity").run()
    assert not at.exception
    assert "LSTM networks predict the remaining useful life" in texts(at)


def test_feedback_page_records_a_signed_answer_after_a_click(store: Store, settings) -> None:
    from index.feedback import feedback_rows
    from jobs.feedback_links import make_token

    store.upsert(DOCS[:1])
    canonical = DOCS[0].canonical_id
    assert store.resolve(canonical) is not None
    token = make_token(settings, store, canonical, "finance", None, fits=True)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    at = app_test("feedback", token=forged)
    assert "Nothing was recorded." in texts(at)
    # opening the link alone records nothing (mail scanners open links); the click does
    at = app_test("feedback", token=token)
    assert not at.exception and feedback_rows(store) == []
    at.button[0].click().run()
    assert not at.exception
    assert "your answer is recorded" in texts(at)
    [answer] = feedback_rows(store)
    assert (answer.canonical_id, answer.sector, answer.fits) == (canonical, "finance", True)

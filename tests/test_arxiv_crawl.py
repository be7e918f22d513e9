"""The arXiv crawler against a real HTTP server on 127.0.0.1 serving API answers.

Answers are recorded in tests/fixtures/arxiv_api/ (written for the tests in both API
layouts) or built from the fixture corpus; the real answers of ../shared/data are a realdata test.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner

from core.settings import load_settings
from core.store import Store
from crawler.arxiv_client import ArxivFetchError
from crawler.arxiv_crawl import crawl_arxiv, watermark
from crawler.arxiv_parse import MalformedPage, parse_page, split_categories
from jobs.cli import cli
from tests.conftest import fixture, sample_records, shared_data
from tests.loopback import LoopbackServer, Request, Response

ATOM = "application/atom+xml; charset=utf-8"
BASE = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def entry_xml(rec: dict, updated: datetime, version: int = 1) -> str:
    cats = "".join(
        f'<category term="{escape(c)}" scheme="http://arxiv.org/schemas/atom"/>'
        for c in rec["categories"] + rec.get("msc_acm_classes", [])
    )
    authors = "".join(f"<author><name>{escape(a)}</name></author>" for a in rec["authors"])
    rid = f"{rec['id']}v{version}"
    return (
        f"<entry><id>http://arxiv.org/abs/{rid}</id>"
        f"<title>{escape(rec['title'])}</title>"
        f"<updated>{updated:%Y-%m-%dT%H:%M:%SZ}</updated>"
        f'<link href="https://arxiv.org/abs/{rid}" rel="alternate" type="text/html"/>'
        f'<link href="https://arxiv.org/pdf/{rid}" rel="related" title="pdf"/>'
        f"<summary>{escape(rec['abstract'])}</summary>{cats}"
        f"<published>{rec['published']}T00:00:00Z</published>"
        + (f"<arxiv:comment>{escape(rec['comment'])}</arxiv:comment>" if rec.get("comment") else "")
        + f'<arxiv:primary_category term="{rec["categories"][0]}"/>{authors}</entry>'
    )


def feed_xml(entries: list[str], total: int, start: int) -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">'
        "<id>https://arxiv.org/api/test</id><title>arXiv Query</title>"
        f"<opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>"
        f"<opensearch:totalResults>{total}</opensearch:totalResults>"
        f"<opensearch:startIndex>{start}</opensearch:startIndex>" + "".join(entries) + "</feed>"
    ).encode()


class FakeArxiv:
    """Serves the API over a list of records, newest-updated first, paginated like arXiv."""

    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.updated = {r["id"]: BASE - timedelta(hours=i) for i, r in enumerate(records)}
        self.versions = {r["id"]: 1 for r in records}
        self.faults: list[Response | str] = []  # served before normal answers, one per request

    def __call__(self, request: Request) -> Response:
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, Response):
                return fault
            if fault == "empty":
                return Response(feed_xml([], len(self.records), 0), headers={"Content-Type": ATOM})
        start = int(request.query["start"][0])
        size = int(request.query["max_results"][0])
        ordered = sorted(self.records, key=lambda r: self.updated[r["id"]], reverse=True)
        page = ordered[start : start + size]
        entries = [entry_xml(r, self.updated[r["id"]], self.versions[r["id"]]) for r in page]
        return Response(feed_xml(entries, len(ordered), start), headers={"Content-Type": ATOM})


@pytest.fixture
def records() -> list[dict]:
    recs = sample_records(25)
    recs[0] = {**recs[0], "categories": ["cs.CV", "cs.LG"], "msc_acm_classes": ["68T45", "I.2.10"]}
    return recs


@pytest.fixture
def arxiv_server(records):
    fake = FakeArxiv(records)
    with LoopbackServer() as server:
        server.route("/api/query", fake)
        yield server, fake


def settings_for(server: LoopbackServer, **extra):
    values = {
        "arxiv_api_url": server.url("/api/query"),
        "arxiv_delay": 0,
        "arxiv_backoff": 0.05,
        "arxiv_page_size": 10,
        "arxiv_timeout": 2,
        "arxiv_max_retries": 2,
        "arxiv_categories": ["cs.LG"],
        "crawl_allowed_networks": ["127.0.0.1/32"],  # refused by default, like any loopback
    }
    values.update(extra)
    return load_settings(**values)


def test_parse_answers_in_both_layouts() -> None:
    new = parse_page(fixture("arxiv_api", "query_current.xml").read_bytes())
    assert (new.total_results, new.start_index) == (1342, 0)
    # six entries; the withdrawn one has no abstract and is left out
    assert [d.canonical_id for d in new.documents] == [
        "2403.90117",
        "2405.90342",
        "2311.90871",
        "2406.90025",
        "2402.90560",
    ]
    first = new.documents[0]
    assert first.url == "https://arxiv.org/abs/2403.90117" and first.extra["version"] == "v1"
    assert first.extra["doi"] == "10.5555/veille.2024.0117"
    assert first.categories == ["cs.SE", "cs.LG"] and first.extra["primary_category"] == "cs.SE"
    assert first.authors == ["Ingrid Solberg", "Tomás Arriaga"]
    assert first.published == datetime(2024, 3, 14, 10, 2, 11, tzinfo=UTC)
    assert first.extra["journal_ref"].startswith("Proceedings of the Workshop")
    revised = new.documents[1]  # a third version, with MSC and ACM codes among its categories
    assert revised.extra["version"] == "v3"
    assert revised.extra["pdf_url"] == "https://arxiv.org/pdf/2405.90342v3"
    assert revised.categories == ["cs.CV", "cs.LG"]
    assert revised.extra["msc_acm_classes"] == ["68T45", "I.2.10"]
    assert new.documents[4].categories == ["cond-mat.stat-mech", "physics.comp-ph"]

    legacy = parse_page(fixture("arxiv_api", "query_legacy.xml").read_bytes())
    assert legacy.total_results == 17 and len(legacy.documents) == 6
    assert all(d.url.startswith("https://arxiv.org/abs/") for d in legacy.documents)
    assert all(d.extra["pdf_url"].startswith("https://arxiv.org/pdf/") for d in legacy.documents)
    old_style = legacy.documents[0]  # an id from before 2007, abstract wrapped at 80 columns
    assert old_style.canonical_id == "cond-mat/0507213"
    assert old_style.text.startswith("We study the motion of hard rods")
    assert "\n" not in old_style.text and "  " not in old_style.text
    assert old_style.extra["doi"] == "10.5555/veille.legacy.2005.07"
    assert old_style.extra["comment"] == "9 pages, 4 figures"
    assert legacy.documents[1].title == "Counting vortices in a stirred superfluid film"
    assert legacy.documents[1].extra["version"] == "v2"

    empty = parse_page(fixture("arxiv_api", "empty.xml").read_bytes())
    assert empty.total_results == 0 and empty.documents == []
    assert split_categories(["cs.LG", "68T45", "I.2.7", "q-fin.ST", "cond-mat.stat-mech"]) == (
        ["cs.LG", "q-fin.ST", "cond-mat.stat-mech"],
        ["68T45", "I.2.7"],
    )


@pytest.mark.realdata
def test_parse_real_answers_both_layouts() -> None:
    new = parse_page(shared_data("arxiv_api", "query_all_testing_max100_2026.xml").read_bytes())
    assert new.total_results == 214881 and len(new.documents) == 100
    first = new.documents[0]
    assert first.canonical_id == "2202.12139" and first.extra["version"] == "v1"
    assert first.extra["doi"] == "10.1109/ICSTW55395.2022.00035"
    assert first.categories == ["cs.SE", "cs.LG"] and first.extra["primary_category"] == "cs.SE"
    legacy = parse_page(shared_data("arxiv_api", "query_au_del_maestro_2016.xml").read_bytes())
    assert legacy.total_results == 31 and len(legacy.documents) == 10
    assert all(d.url.startswith("https://arxiv.org/abs/") for d in legacy.documents)
    empty = parse_page(shared_data("arxiv_api", "idlist_0000.0000_empty_2026.xml").read_bytes())
    assert empty.total_results == 0 and empty.documents == []


def test_truncated_body_is_a_clear_error() -> None:
    body = fixture("arxiv_api", "query_current.xml").read_bytes()
    with pytest.raises(MalformedPage, match="malformed or truncated"):
        parse_page(body[: len(body) // 2])
    with pytest.raises(MalformedPage, match="not an Atom feed"):
        parse_page(b"<html><body>Service unavailable</body></html>")


def test_multipage_crawl_then_watermark_then_new_version(
    arxiv_server, records, store: Store
) -> None:
    server, fake = arxiv_server
    settings = settings_for(server)
    run = crawl_arxiv(store, settings, since=date(2020, 1, 1))
    assert (run.pages, run.fetched, run.new, run.status) == (3, 25, 25, "ok")
    assert store.count() == 25
    doc = store.resolve(records[0]["id"])
    assert doc.categories == ["cs.CV", "cs.LG"]
    assert doc.extra["msc_acm_classes"] == ["68T45", "I.2.10"]
    assert doc.extra["pdf_url"] == f"https://arxiv.org/pdf/{records[0]['id']}v1"
    assert doc.kind == "paper" and doc.source == "arxiv"
    requests = server.requests_to("/api/query")
    assert [r.query["start"][0] for r in requests] == ["0", "10", "20"]
    assert "cat:cs.LG" in requests[0].query["search_query"][0]
    assert requests[0].query["sortBy"] == ["lastUpdatedDate"]
    assert requests[0].headers["user-agent"].startswith("VeilleBot/")
    assert watermark(store, "cat:cs.LG") == BASE

    # Second run: only the first page is read, nothing new.
    again = crawl_arxiv(store, settings)
    assert (again.pages, again.new, again.updated) == (1, 0, 0)

    # A new version of one paper: one row updated, not duplicated.
    target = records[5]["id"]
    fake.versions[target] = 2
    fake.updated[target] = BASE + timedelta(hours=1)
    fake.records[5] = {
        **records[5],
        "abstract": records[5]["abstract"] + " Revised with new results.",
    }
    third = crawl_arxiv(store, settings)
    assert (third.new, third.updated) == (0, 1)
    assert store.count() == 25
    revised = store.resolve(target)
    assert revised.text.endswith("Revised with new results.") and revised.extra["version"] == "v2"
    assert [r.status for r in store.recent_runs(3)] == ["ok", "ok", "ok"]


def test_http_500_timeout_and_empty_page_are_retried(arxiv_server, store: Store) -> None:
    server, fake = arxiv_server
    settings = settings_for(server, arxiv_max_retries=3)
    stalled = threading.Event()  # the slow answer comes only after the crawl (it times out)
    fake.faults = [
        Response(b"oops", status=500),
        Response(b"slow", status=200, hold=stalled),
        Response(b"busy", status=429),
    ]
    try:
        run = crawl_arxiv(store, settings, since=date(2020, 1, 1), max_results=15)
    finally:
        stalled.set()
    assert run.status == "ok" and run.new == 15
    # an empty page in the middle of the results is retried too
    fake.faults = []
    original = fake.__call__

    served = {"n": 0}

    def flaky(request: Request) -> Response:
        served["n"] += 1
        if served["n"] == 2:  # the second page comes back empty once
            return Response(feed_xml([], 25, 10), headers={"Content-Type": ATOM})
        return original(request)

    server.route("/api/query", flaky)
    run = crawl_arxiv(store, settings, since=date(2020, 1, 1))
    assert run.status == "ok" and run.fetched == 25 and run.new == 10


def test_malformed_answer_fails_clearly_and_keeps_what_was_stored(
    arxiv_server, store: Store
) -> None:
    server, fake = arxiv_server
    settings = settings_for(server)
    good = fake

    def truncated_after_first(request: Request) -> Response:
        response = good(request)
        if request.query["start"][0] != "0":
            return Response(response.body[: len(response.body) // 2], headers=response.headers)
        return response

    server.route("/api/query", truncated_after_first)
    with pytest.raises(ArxivFetchError, match="malformed or truncated XML"):
        crawl_arxiv(store, settings, since=date(2020, 1, 1))
    run = store.recent_runs(1)[0]
    assert run.status == "error" and "truncated" in run.last_error
    assert run.new == 10 and store.count() == 10  # the first page stays
    assert len(server.requests_to("/api/query")) == 1 + 3  # first page + three tries

    # Resuming: the next run starts at the page that failed.
    server.route("/api/query", good)
    resumed = crawl_arxiv(store, settings, since=date(2020, 1, 1))
    starts = [r.query["start"][0] for r in server.requests_to("/api/query")[4:]]
    assert starts == ["10", "20"] and resumed.new == 15 and store.count() == 25


def test_requests_are_spaced_by_the_configured_delay(arxiv_server, store: Store) -> None:
    server, _ = arxiv_server
    settings = settings_for(server, arxiv_delay=0.3)
    crawl_arxiv(store, settings, since=date(2020, 1, 1))
    times = [r.at for r in server.requests_to("/api/query")]
    assert len(times) == 3
    assert all(b - a >= 0.29 for a, b in zip(times, times[1:], strict=False))


def test_http_404_is_not_retried(arxiv_server, store: Store) -> None:
    server, fake = arxiv_server
    fake.faults = [Response(b"no", status=404)]
    with pytest.raises(ArxivFetchError, match="HTTP 404"):
        crawl_arxiv(store, settings_for(server), since=date(2020, 1, 1))
    assert len(server.requests_to("/api/query")) == 1


def test_an_unknown_host_fails_at_once_and_a_silent_name_server_is_retried(monkeypatch) -> None:
    """Offline, the name lookup fails: asking again for a minute would only keep the user
    waiting. A name server that did not answer (EAI_AGAIN) may answer the next time."""
    import socket

    from crawler.arxiv_client import ArxivFetcher, PageRequest

    def lookup(error: int):
        def fail(*_args, **_kwargs):
            raise socket.gaierror(error, "no such host")

        return fail

    fetcher = ArxivFetcher(
        "http://export.arxiv.test/api/query", user_agent="t", delay=0, backoff=0, max_retries=3
    )
    request = PageRequest("cat:cs.LG", 0, 10)
    monkeypatch.setattr(socket, "getaddrinfo", lookup(socket.EAI_NONAME))
    with pytest.raises(ArxivFetchError, match="not found.*offline.*not retried"):
        fetcher.fetch(request)
    assert fetcher.requests_made == 1
    monkeypatch.setattr(socket, "getaddrinfo", lookup(socket.EAI_AGAIN))
    with pytest.raises(ArxivFetchError, match="failed after 4 tries: name server did not answer"):
        fetcher.fetch(request)
    assert fetcher.requests_made == 1 + 4


@pytest.mark.slow
def test_cli_crawl_then_search(arxiv_server, records, monkeypatch, real_embedder) -> None:
    server, _ = arxiv_server
    monkeypatch.setenv("VEILLE_ARXIV_API_URL", server.url("/api/query"))
    monkeypatch.setenv("VEILLE_ARXIV_DELAY", "0")
    monkeypatch.setenv("VEILLE_CRAWL_ALLOWED_NETWORKS", '["127.0.0.1/32"]')
    monkeypatch.setenv("VEILLE_ARXIV_CATEGORIES", '["cs.LG"]')
    result = CliRunner().invoke(cli, ["crawl", "arxiv", "--since", "2020-01-01", "--max", "12"])
    assert result.exit_code == 0, result.output
    assert "12 new" in result.output and "Indexed: 12 documents" in result.output
    result = CliRunner().invoke(cli, ["stats", "--json"])
    assert '"source": "arxiv"' in result.output and '"new": 12' in result.output
    result = CliRunner().invoke(cli, ["search", records[3]["title"], "--k", "1", "--json"])
    assert records[3]["id"] in result.output


def test_api_on_a_loopback_address_is_refused_by_default(arxiv_server, store: Store) -> None:
    server, _ = arxiv_server
    settings = settings_for(server, crawl_allowed_networks=[])
    with pytest.raises(ArxivFetchError, match=r"not sent: refused 127\.0\.0\.1: .*loopback"):
        crawl_arxiv(store, settings, since=date(2020, 1, 1))
    assert server.requests == [] and store.recent_runs(1)[0].status == "error"


def test_redirects_are_checked_at_every_hop_and_bodies_are_capped(
    arxiv_server, store: Store
) -> None:
    server, fake = arxiv_server
    fake.faults = [Response(status=302, headers={"Location": "/api/moved"})]
    server.route("/api/moved", fake)  # a redirect to an allowed host is followed
    run = crawl_arxiv(store, settings_for(server), since=date(2020, 1, 1), max_results=10)
    assert run.new == 10 and len(server.requests_to("/api/moved")) == 1
    inside = f"http://127.0.0.2:{server.port}/latest/meta-data/"
    fake.faults = [Response(status=307, headers={"Location": inside})]
    with pytest.raises(ArxivFetchError, match=r"refused 127\.0\.0\.2: .*loopback"):
        crawl_arxiv(store, settings_for(server), since=date(2020, 1, 1))
    with pytest.raises(ArxivFetchError, match="larger than the 10,000-byte cap"):
        crawl_arxiv(store, settings_for(server, arxiv_max_bytes=10_000), since=date(2020, 1, 1))
    assert store.count() == 10  # what was stored before stays


def test_an_unexpected_exception_closes_the_run_as_an_error(arxiv_server, store: Store) -> None:
    server, fake = arxiv_server
    good = fake

    def bad_date_on_second_page(request: Request) -> Response:
        response = good(request)
        if request.query["start"][0] != "0":  # well-formed XML, but a date that is not one
            body = response.body.replace(b"<updated>2026-", b"<updated>x2026-", 1)
            return Response(body, headers=response.headers)
        return response

    server.route("/api/query", bad_date_on_second_page)
    with pytest.raises(ValueError, match="Invalid isoformat") as raised:
        crawl_arxiv(store, settings_for(server), since=date(2020, 1, 1))
    assert not isinstance(raised.value, MalformedPage)  # not one of the expected types
    run = store.recent_runs(1)[0]
    assert run.status == "error" and run.errors == 1
    assert run.last_error.startswith("ValueError: Invalid isoformat string")
    assert run.new == 10 and store.count() == 10  # the first page stays


def test_the_run_returned_is_the_crawls_own(arxiv_server, store: Store) -> None:
    server, fake = arxiv_server
    other: list[int] = []

    def another_run_starts_meanwhile(request: Request) -> Response:
        if not other:  # a second arXiv crawl (another process) starts while this one runs
            other.append(store.start_run("arxiv"))
        return fake(request)

    server.route("/api/query", another_run_starts_meanwhile)
    run = crawl_arxiv(store, settings_for(server), since=date(2020, 1, 1))
    assert store.recent_runs(1, source="arxiv")[0].id == other[0]  # the latest is the other
    assert run.id != other[0] and (run.status, run.new, run.pages) == ("ok", 25, 3)


def test_a_fixed_now_dates_the_run_and_the_first_window(arxiv_server, store: Store) -> None:
    server, _ = arxiv_server
    now = BASE + timedelta(hours=12)  # papers are updated hourly back from BASE
    run = crawl_arxiv(store, settings_for(server, arxiv_initial_days=1), now=now)
    # the first crawl reads the last day before ``now``, not before the clock
    assert run.new == 13 and watermark(store, "cat:cs.LG") == BASE
    assert run.started == now and run.finished == now

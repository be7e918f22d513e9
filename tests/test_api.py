"""The analyst HTTP API, served by a real uvicorn on a loopback port.

One server per module over a small indexed corpus (tests/fixtures/corpus_small.jsonl); the
tests talk to it over HTTP with httpx, as a notebook or a BI tool would.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis
from click.testing import CliRunner
from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from api.auth import RateLimiter
from core.api_keys import create_key, list_keys
from core.loader import load_jsonl
from core.settings import load_settings
from core.store import Store
from core.subscribers import add_subscriber, get_subscriber
from index.feedback import feedback_rows
from index.pipeline import index_and_match
from index.search import Searcher
from index.taxonomy import load_taxonomy
from jobs.cli import cli
from jobs.feedback_links import make_token
from jobs.unsubscribe_links import make_unsubscribe_token
from tests.apiserver import ServedApi

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROBLEM = "application/problem+json"


class Served(ServedApi):
    """A running API over the small corpus, with a read-write and a read-only key."""

    def __init__(self, data_dir: Path, real_embedder) -> None:
        self.data_dir = data_dir
        settings = load_settings(data_dir=data_dir)
        store = Store.from_settings(settings)
        load_jsonl(FIXTURES / "corpus_small.jsonl", store)
        index_and_match(store, settings, embedder=real_embedder)
        searcher = Searcher.open(settings, store=store, embedder=real_embedder)
        super().__init__(settings, store, searcher)
        # links in digests must point at this server, whose port is known only now
        self.settings = load_settings(data_dir=data_dir, public_url=self.base)
        self.app.state.service.settings = self.settings
        self.writer = create_key(store, "analyst").secret
        self.reader = create_key(store, "bi-tool", read_only=True).secret
        self.start()

    def stop(self) -> None:
        super().stop()
        self.store.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory, real_embedder):
    served = Served(tmp_path_factory.mktemp("api") / "data", real_embedder)
    yield served
    served.stop()


@pytest.fixture
def as_analyst(api):
    with api.client(api.writer) as client:
        yield client


def test_search_hits_match_the_cli_json(api, as_analyst, monkeypatch) -> None:
    answer = as_analyst.get("/v1/search", params={"q": "fraud in card payments", "k": 5})
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["hits"][0]["title"] == "Graph neural networks flag card fraud rings"
    monkeypatch.setenv("VEILLE_DATA_DIR", str(api.data_dir))
    result = CliRunner().invoke(
        cli, ["search", "fraud in card payments", "--k", "5", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    cli_hits = json.loads(result.stdout)
    assert page["hits"] == cli_hits  # same fields, same order, same scores
    assert {"sectors", "techniques", "snippet", "score"} <= set(page["hits"][0])
    assert any(m["sector"] == "finance" for m in page["hits"][0]["sectors"])


def test_filters_and_pages(api, as_analyst) -> None:
    whole = as_analyst.get("/v1/search", params={"q": "neural networks", "k": 6}).json()
    first = as_analyst.get("/v1/search", params={"q": "neural networks", "k": 3}).json()
    second = as_analyst.get(
        "/v1/search", params={"q": "neural networks", "k": 3, "offset": first["next_offset"]}
    ).json()
    assert first["next_offset"] == 3
    assert [h["id"] for h in first["hits"] + second["hits"]] == [h["id"] for h in whole["hits"]]
    last = as_analyst.get("/v1/search", params={"q": "neural networks", "k": 5, "offset": 10})
    assert last.json()["next_offset"] is None and len(last.json()["hits"]) == 2

    health = as_analyst.get("/v1/search", params={"q": "images", "sector": "health"}).json()
    assert health["hits"] and all(
        any(m["sector"] == "health" for m in h["sectors"]) for h in health["hits"]
    )
    march = as_analyst.get(
        "/v1/search", params={"q": "networks", "since": "2026-03-12", "until": "2026-03-13"}
    ).json()
    assert {h["published"] for h in march["hits"]} <= {"2026-03-12", "2026-03-13"}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"q": "x", "k": 0}, "k"),
        ({"q": "x", "k": 5000}, "k"),
        ({"q": "x", "mode": "fuzzy"}, "mode"),
        ({"q": "x", "since": "yesterday"}, "since"),
        ({"q": "x", "since": "2026-03-10", "until": "2026-03-01"}, "since"),
        ({"q": "x", "sector": "space"}, "sector"),
        ({"q": "x", "technique": "alchemy"}, "technique"),
        ({"q": "x", "offset": -1}, "offset"),
        ({"k": 3}, "q"),
        ({"q": "   "}, "q"),
    ],
)
def test_bad_parameters_get_a_problem_naming_them(api, as_analyst, params, name) -> None:
    answer = as_analyst.get("/v1/search", params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["status"] == 422 and problem["instance"] == "/v1/search"
    assert name in [p["name"] for p in problem["invalid_params"]], problem
    assert all(p["reason"] for p in problem["invalid_params"])


def test_documents_similar_sectors_trends_themes(api, as_analyst) -> None:
    doc = as_analyst.get("/v1/documents/2601.00009").json()
    assert doc["title"] == "Reading chest X-rays with convolutional networks"
    assert any(m["sector"] == "health" and m["why"] for m in doc["matches"])
    assert "cnn" in [t["technique"] for t in doc["techniques"]]
    by_url = as_analyst.get("/v1/documents/https://arxiv.org/abs/2601.00009")
    assert by_url.json()["id"] == "2601.00009"

    similar = as_analyst.get("/v1/documents/2601.00009/similar", params={"k": 3}).json()
    assert similar["id"] == "2601.00009" and len(similar["hits"]) == 3
    assert "2601.00009" not in [h["id"] for h in similar["hits"]]

    missing = as_analyst.get("/v1/documents/9999.99999")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM)
    assert "9999.99999" in missing.json()["detail"]

    sectors = as_analyst.get("/v1/sectors").json()["sectors"]
    assert [s["key"] for s in sectors] == ["finance", "legal", "retail", "industry", "health"]
    health = as_analyst.get("/v1/sectors/health", params={"k": 2}).json()
    assert health["sector"] == "health"
    found = [m for uc in health["use_cases"] for m in uc["matches"]]
    assert any(m["id"] == "2601.00009" and m["why"] for m in found)
    assert as_analyst.get("/v1/sectors/space").status_code == 404
    # a sector's key in any case, or its name, is the same sector
    assert as_analyst.get("/v1/sectors/Health", params={"k": 2}).json() == health
    assert as_analyst.get("/v1/sectors/FINANCE").json()["sector"] == "finance"

    trends = as_analyst.get("/v1/trends", params={"weeks": 4, "until": "2026-03-15"}).json()
    assert trends["by"] == "technique" and len(trends["weeks"]) == 4
    assert sum(trends["totals"]) == 12
    themes = as_analyst.get("/v1/themes", params={"until": "2026-03-15"})
    assert themes.status_code == 200 and themes.json()["themes"] == []
    assert themes.json()["note"].startswith("Too few documents to look for themes")


def test_keys_read_only_and_revoked(api, monkeypatch) -> None:
    body = {"document": "2601.00011", "sector": "industry", "fits": True}
    with api.client() as anonymous:
        refused = anonymous.get("/v1/search", params={"q": "robots"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert anonymous.get("/healthz").json()["status"] == "ok"  # no key needed
    with api.client("vk_AAAAAAAA_" + "x" * 43) as forged:
        assert forged.get("/v1/search", params={"q": "robots"}).status_code == 401
    with api.client(api.reader) as reader:
        assert reader.get("/v1/search", params={"q": "robots"}).status_code == 200
        denied = reader.post("/v1/feedback", json=body)
        assert denied.status_code == 403 and "read-only" in denied.json()["detail"]
    assert not [f for f in feedback_rows(api.store) if f.canonical_id == "2601.00011"]

    with api.client(api.writer) as writer:
        saved = writer.post("/v1/feedback", json={**body, "use_case": "robotics"})
        assert saved.status_code == 201, saved.text
        assert saved.json()["by"] == "analyst" and saved.json()["use_case"] == "robotics"
        # The document follows the answer at once, before the matcher trains again.
        shown = writer.get("/v1/documents/2601.00011").json()["matches"]
        [robotics] = [m for m in shown if m["sector"] == "industry"]
        assert robotics["why"].startswith("Confirmed: your team said it fits")
        wrong = writer.post("/v1/feedback", json={**body, "sector": "space"})
        assert wrong.status_code == 422 and wrong.json()["invalid_params"][0]["name"] == "sector"
        unknown = writer.post("/v1/feedback", json={**body, "document": "nope"})
        assert unknown.json()["invalid_params"][0]["name"] == "document"
        garbled = writer.post(
            "/v1/feedback", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert garbled.status_code == 400, garbled.text
        assert garbled.json()["detail"].startswith("the request body is not valid JSON")
        assert garbled.json()["invalid_params"][0]["name"] == "body"
    answers = [f for f in feedback_rows(api.store) if f.canonical_id == "2601.00011"]
    assert [(a.sector, a.use_case, a.fits, a.origin) for a in answers] == [
        ("industry", "robotics", True, "api")
    ]

    temporary = create_key(api.store, "temporary")
    monkeypatch.setenv("VEILLE_DATA_DIR", str(api.data_dir))
    with api.client(temporary.secret) as client:
        assert client.get("/v1/sectors").status_code == 200
        revoked = CliRunner().invoke(cli, ["api-keys", "revoke", "temporary"])
        assert revoked.exit_code == 0, revoked.output
        assert client.get("/v1/sectors").status_code == 401  # at once, no restart
    listed = CliRunner().invoke(cli, ["api-keys", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(listed.output)}
    assert rows["temporary"]["revoked"] and rows["analyst"]["revoked"] is None
    assert temporary.secret not in listed.output and "key_hash" not in listed.output


def test_rate_limit_answers_429_with_retry_after(api) -> None:
    previous = api.app.state.limiter
    api.app.state.limiter = RateLimiter(3)
    try:
        with api.client(api.reader) as client:
            codes = [client.get("/v1/sectors").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            limited = client.get("/v1/sectors")
            assert int(limited.headers["retry-after"]) >= 1
            assert "3 requests a minute" in limited.json()["detail"]
        with api.client(api.writer) as other:  # each key has its own allowance
            assert other.get("/v1/sectors").status_code == 200
    finally:
        api.app.state.limiter = previous


def test_schema_docs_and_no_cors_by_default(api) -> None:
    with api.client() as client:
        schema = client.get("/openapi.json").json()
        assert {"/v1/search", "/v1/feedback", "/unsubscribe", "/healthz"} <= set(schema["paths"])
        hit = schema["components"]["schemas"]["SearchHit"]["properties"]
        assert {"id", "title", "url", "published", "kind", "source", "score", "snippet"} <= set(hit)
        assert client.get("/docs").status_code == 200
        preflight = client.options(
            "/v1/search",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_cors_when_configured(api) -> None:
    settings = load_settings(data_dir=api.data_dir, api_cors_origins=["https://bi.example"])
    from starlette.testclient import TestClient

    app = create_app(settings, store=api.store, service=api.app.state.service)
    with TestClient(app) as client:
        answer = client.options(
            "/v1/search",
            headers={"Origin": "https://bi.example", "Access-Control-Request-Method": "GET"},
        )
        assert answer.headers["access-control-allow-origin"] == "https://bi.example"


def test_one_click_unsubscribe_from_a_received_digest(api, monkeypatch) -> None:
    from aiosmtpd.controller import Controller

    from jobs.digest_delivery import send_digests

    received = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            import email
            import email.policy

            received.append(
                email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            )
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        smtp_port = sock.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        settings = load_settings(
            data_dir=api.data_dir,
            public_url=api.base,
            allow_loopback_public_url=True,  # the API under test is on this machine
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
        )
        taxonomy = load_taxonomy(settings)
        add_subscriber(
            api.store, "lead@example.com", sectors="health", consent=True, taxonomy=taxonomy
        )
        from datetime import UTC, datetime

        report = send_digests(api.store, settings, now=datetime(2026, 3, 16, 8, tzinfo=UTC))
        assert report.sent == ["lead@example.com"], report.summary()
    finally:
        controller.stop()
    [message] = received
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{api.base}/unsubscribe?token=")

    with httpx.Client(timeout=30) as browser:
        page = browser.get(link)  # what a link scanner does: changes nothing
        assert page.status_code == 200 and "<form" in page.text
        assert get_subscriber(api.store, "lead@example.com").active
        forged = browser.post(link[:-3] + "abc", content=b"List-Unsubscribe=One-Click")
        assert forged.status_code == 400 and "Nothing was changed" in forged.text
        assert get_subscriber(api.store, "lead@example.com").active
        done = browser.post(
            link,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200 and "unsubscribed" in done.text
    assert not get_subscriber(api.store, "lead@example.com").active


def test_digest_feedback_link_lands_on_the_api(api) -> None:
    token = make_token(api.settings, api.store, "2601.00007", "industry", None, fits=True)
    before = len(feedback_rows(api.store))
    with httpx.Client(base_url=api.base, timeout=30) as browser:
        page = browser.get("/feedback", params={"token": token})
        assert page.status_code == 200
        assert "remaining useful life" in page.text and "fits Industry?" in page.text
        assert len(feedback_rows(api.store)) == before  # the GET recorded nothing
        forged = browser.post("/feedback", data={"token": token[:-2] + "xx"})
        assert forged.status_code == 400 and len(feedback_rows(api.store)) == before
        done = browser.post("/feedback", data={"token": token})
        assert done.status_code == 200 and "recorded" in done.text
    [answer] = feedback_rows(api.store)[before:]
    assert (answer.canonical_id, answer.sector, answer.fits, answer.origin) == (
        "2601.00007",
        "industry",
        True,
        "digest",
    )


def test_hostile_text_is_escaped_on_public_pages(api) -> None:
    with httpx.Client(base_url=api.base, timeout=30) as browser:
        page = browser.get("/unsubscribe", params={"token": '"><script>alert(1)</script>'})
        assert page.status_code == 400 and "<script>" not in page.text


def test_unsubscribe_page_refuses_an_altered_link_before_showing_the_button(api) -> None:
    token = make_unsubscribe_token(api.settings, "lee@example.org", store=api.store)
    with httpx.Client(base_url=api.base, timeout=30) as browser:
        good = browser.get("/unsubscribe", params={"token": token})
        assert good.status_code == 200 and "<button" in good.text
        altered = browser.get("/unsubscribe", params={"token": token[:-2] + "xx"})
        assert altered.status_code == 400 and "<button" not in altered.text
        assert "invalid or has been altered" in altered.text
        # a sentence, starting with a capital letter, and saying nothing changed
        assert re.search(
            r'<p class="error">[A-Z][^<]*invalid or has been altered[^<]*\. '
            r"Nothing was changed\.</p>",
            altered.text,
        )


def test_cli_search_goes_through_a_running_api(api, tmp_path) -> None:
    env = {
        **os.environ,
        "VEILLE_API_URL": api.base,
        "VEILLE_API_KEY": api.reader,
        "VEILLE_DATA_DIR": str(tmp_path / "empty"),  # no local index: the answer is the API's
    }
    command = [sys.executable, "-c", "from jobs.cli import main; main()"]

    def veille(*args: str, **more_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *args],
            env={**env, **more_env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    found = veille("search", "jet engine maintenance", "--k", "2", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["id"] == "2601.00007" and len(hits) == 2
    assert "model and indexes loaded" not in found.stderr  # nothing was loaded locally
    assert not (tmp_path / "empty").exists()

    similar = veille("similar", "2601.00007", "--k", "1")
    assert similar.returncode == 0 and re.search(r"^ 1\. ", similar.stdout, re.M)
    too_many = veille("similar", "2601.00007", "--k", "900")
    # The API's own limit is named, not only the parameter.
    assert too_many.returncode == 1 and re.search(
        r"k: .*less than or equal to \d+", too_many.stderr
    )

    bad_key = veille("search", "x", VEILLE_API_KEY="wrong")
    assert (
        bad_key.returncode == 1 and "401" in bad_key.stderr and "VEILLE_API_KEY" in bad_key.stderr
    )


def test_keys_are_stored_hashed_and_names_checked(api) -> None:
    created = create_key(api.store, "hash-check")
    raw = Path(api.settings.data_dir, "veille.db").read_bytes()
    assert created.secret.encode() not in raw
    assert [k for k in list_keys(api.store) if k.name == "hash-check"]
    with pytest.raises(ValueError, match="exists already"):
        create_key(api.store, "hash-check")
    with pytest.raises(ValueError, match="bad key name"):
        create_key(api.store, "<script>")


def test_health_counts_what_is_indexed_now(tmp_path, real_embedder) -> None:
    """A probe sees a new index at once, not after the next /v1 request loads it."""
    from api.service import Service

    settings = load_settings(data_dir=tmp_path / "data")
    store = Store.from_settings(settings)
    rows = (FIXTURES / "corpus_small.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(rows[:5]) + "\n", encoding="utf-8")
    load_jsonl(tmp_path / "a.jsonl", store)
    index_and_match(store, settings, embedder=real_embedder)
    service = Service(settings, store, Searcher.open(settings, store=store, embedder=real_embedder))
    assert service.health()["indexed"] == 5
    load_jsonl(FIXTURES / "corpus_small.jsonl", store)
    index_and_match(store, settings, embedder=real_embedder)
    assert service.health()["indexed"] == store.count() > 5
    store.close()


def test_api_refuses_a_public_address_without_allow_remote() -> None:
    result = CliRunner().invoke(cli, ["api", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output


def test_api_on_a_port_in_use_says_so_before_loading_anything(isolated_settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["api", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
    assert "Loading the model" not in result.output  # said at once, not after the slow part


# -- property-based: the API against its own OpenAPI schema ----------------------------------


@pytest.fixture
def no_rate_limit(api):
    previous = api.app.state.limiter
    api.app.state.limiter = RateLimiter(0)
    yield
    api.app.state.limiter = previous


def test_api_conforms_to_its_schema(api, no_rate_limit) -> None:
    """Schemathesis generates requests for every operation of the API's own /openapi.json:
    none crashes the API, and every answer (status code, content type, body) is one the
    schema documents. Data that is valid for the schema but unknown to Veille (a random
    sector name) is rightly refused, so that one check is left out."""
    schema = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    headers = {"Authorization": f"Bearer {api.writer}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    statuses: list[int] = []

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
        )
        def conforms(case) -> None:
            response = case.call_and_validate(
                headers=headers, excluded_checks=[positive_data_acceptance]
            )
            statuses.append(response.status_code)

        conforms()
    assert len(statuses) >= 100 and 500 not in statuses
    assert {200, 422} <= set(statuses)  # both good answers and named refusals were checked

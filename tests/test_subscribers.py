"""Subscribers: consent, validation that names the input, export and erasure (GDPR)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from core.subscribers import (
    add_subscriber,
    digest_sends,
    ensure_tables,
    export_subscriber,
    get_subscriber,
    list_subscribers,
    normalize_email,
    remove_subscriber,
    unsubscribe,
)
from index.taxonomy import load_taxonomy
from jobs.cli import cli

NOW = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)


@pytest.fixture
def taxonomy(settings):
    return load_taxonomy(settings)


def test_add_records_consent_and_normalises(store, taxonomy) -> None:
    sub = add_subscriber(
        store,
        "  Ana.Lopez@Example.COM ",
        sectors="finance, Health",
        techniques=["LSTM", "gnn"],
        consent=True,
        source="workshop form",
        taxonomy=taxonomy,
        now=NOW,
    )
    assert sub.email == "ana.lopez@example.com"
    assert sub.sectors == ["finance", "health"]
    assert sub.techniques == ["rnn", "gnn"]
    assert sub.consent_at == NOW and sub.consent_source == "workshop form"
    assert sub.active
    # adding again updates the choices, keeps one row and the creation date
    again = add_subscriber(
        store, "ana.lopez@example.com", sectors=["legal"], consent=True, taxonomy=taxonomy
    )
    assert again.sectors == ["legal"] and again.techniques == []
    assert again.created == NOW
    assert [s.email for s in list_subscribers(store)] == ["ana.lopez@example.com"]


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "empty"),
        ("no-at-sign.example.com", "exactly one '@'"),
        ("two@@example.com", "exactly one '@'"),
        ("space in@example.com", "spaces"),
        ("ctrl\x07@example.com", "control"),
        ("x@localhost", "invalid domain"),
        ("x@exa_mple.com", "invalid domain"),
        ("a..b@example.com", "dots"),
        ("<a>@example.com", "before '@'"),
    ],
)
def test_bad_addresses_are_refused_with_the_input_named(email: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        normalize_email(email)
    if email.strip() and "\x07" not in email:
        assert repr(email)[1:-1][:10] in str(info.value)


def test_bad_choices_and_missing_consent_store_nothing(store, taxonomy) -> None:
    with pytest.raises(ValueError, match=r"sector 'space'.*known sectors: finance"):
        add_subscriber(store, "a@example.com", sectors="space", consent=True, taxonomy=taxonomy)
    with pytest.raises(ValueError, match=r"technique 'quantum'.*known techniques"):
        add_subscriber(
            store,
            "a@example.com",
            sectors="finance",
            techniques="quantum",
            consent=True,
            taxonomy=taxonomy,
        )
    with pytest.raises(ValueError, match="at least one sector"):
        add_subscriber(store, "a@example.com", sectors="", consent=True, taxonomy=taxonomy)
    with pytest.raises(ValueError, match="without consent|no consent"):
        add_subscriber(store, "a@example.com", sectors="finance", consent=False, taxonomy=taxonomy)
    assert list_subscribers(store) == []


def test_unsubscribe_export_and_erase(store, taxonomy) -> None:
    add_subscriber(
        store, "b@example.org", sectors="retail", consent=True, taxonomy=taxonomy, now=NOW
    )
    add_subscriber(store, "c@example.org", sectors="health", consent=True, taxonomy=taxonomy)
    with store.write() as conn:
        conn.execute(
            digest_sends.insert().values(
                email="b@example.org",
                week="2026-W11",
                status="sent",
                attempts=1,
                error="",
                sent_at=NOW.replace(tzinfo=None),
            )
        )
    assert unsubscribe(store, "B@example.org", now=NOW)
    assert not unsubscribe(store, "b@example.org")  # already done
    assert not get_subscriber(store, "b@example.org").active
    assert [s.email for s in list_subscribers(store, active_only=True)] == ["c@example.org"]

    data = export_subscriber(store, "b@example.org")
    json.dumps(data)  # JSON-ready
    assert data["subscription"]["sectors"] == ["retail"]
    assert data["subscription"]["consent_at"].startswith("2026-03-11T09:30")
    assert data["subscription"]["unsubscribed"] is not None
    assert data["digests"] == [
        {
            "week": "2026-W11",
            "status": "sent",
            "attempts": 1,
            "error": "",
            "sent_at": "2026-03-11T09:30:00+00:00",
        }
    ]

    assert remove_subscriber(store, "b@example.org")
    assert not remove_subscriber(store, "b@example.org")
    with pytest.raises(KeyError, match="no data held about b@example.org"):
        export_subscriber(store, "b@example.org")
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(digest_sends)).scalar()
    assert left == 0


def test_a_row_without_consent_is_not_active(store) -> None:
    from core.subscribers import subscribers

    ensure_tables(store)
    with store.write() as conn:
        conn.execute(
            subscribers.insert().values(
                email="imported@example.com",
                sectors=["finance"],
                techniques=[],
                consent_at=None,
                consent_source="",
                created=NOW.replace(tzinfo=None),
            )
        )
    assert not get_subscriber(store, "imported@example.com").active
    assert list_subscribers(store, active_only=True) == []


def test_cli_subscribers_round_trip(settings) -> None:
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    refused = run("subscribers", "add", "d@example.com", "--sectors", "finance")
    assert refused.exit_code != 0 and "--consent" in refused.output
    bad = run("subscribers", "add", "d@example", "--sectors", "finance", "--consent")
    assert bad.exit_code == 1 and "'d@example'" in bad.output
    ok = run(
        "subscribers",
        "add",
        "d@example.com",
        "--sectors",
        "finance,health",
        "--techniques",
        "transformer",
        "--consent",
        "--source",
        "cli-test",
    )
    assert ok.exit_code == 0, ok.output
    assert "Subscribed d@example.com to finance, health" in ok.output
    listed = json.loads(run("subscribers", "list", "--json").output)
    assert listed[0]["email"] == "d@example.com" and listed[0]["active"] is True
    assert listed[0]["consent_source"] == "cli-test"
    exported = json.loads(run("subscribers", "export", "d@example.com").output)
    assert exported["subscription"]["techniques"] == ["transformer"]
    assert run("subscribers", "remove", "d@example.com").exit_code == 0
    missing = run("subscribers", "export", "d@example.com")
    assert missing.exit_code == 1 and "no data held" in missing.output

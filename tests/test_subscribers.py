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
    subscribe = (
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
    ok = run(*subscribe)
    assert ok.exit_code == 0, ok.output
    assert "Subscribed d@example.com to finance, health" in ok.output
    again = run("subscribers", "add", "D@example.com", "--sectors", "legal", "--consent")
    assert again.exit_code == 0, again.output
    assert (
        "Updated d@example.com: now legal (was finance, health; techniques: transformer)."
        in again.output
    )
    run(*subscribe)  # back to the first choice
    listed = json.loads(run("subscribers", "list", "--json").output)
    assert listed[0]["email"] == "d@example.com" and listed[0]["active"] is True
    assert listed[0]["consent_source"] == "cli-test"
    exported = json.loads(run("subscribers", "export", "d@example.com").output)
    assert exported["subscription"]["techniques"] == ["transformer"]
    assert run("subscribers", "remove", "d@example.com").exit_code == 0
    missing = run("subscribers", "export", "d@example.com")
    assert missing.exit_code == 1 and "no data held" in missing.output


def test_subscribing_again_keeps_the_earlier_consent_history(store, taxonomy) -> None:
    later = NOW.replace(day=18)
    add_subscriber(
        store, "h@example.org", sectors="retail", consent=True, taxonomy=taxonomy, now=NOW
    )
    unsubscribe(store, "h@example.org", now=NOW.replace(day=12))
    add_subscriber(
        store,
        "h@example.org",
        sectors="health",
        consent=True,
        taxonomy=taxonomy,
        source="dashboard form",
        now=later,
    )
    add_subscriber(
        store, "h@example.org", sectors="health,legal", consent=True, taxonomy=taxonomy, now=later
    )
    data = export_subscriber(store, "h@example.org")
    history = [
        (h["event"], h["at"][:10], h["source"], h["sectors"]) for h in data["consent_history"]
    ]
    assert history == [
        ("subscribed", "2026-03-11", "cli", ["retail"]),
        ("unsubscribed", "2026-03-12", "link", ["retail"]),
        ("subscribed", "2026-03-18", "dashboard form", ["health"]),
        ("changed", "2026-03-18", "cli", ["health", "legal"]),
    ]
    assert data["subscription"]["created"].startswith("2026-03-11")  # first subscription kept


def _files_hold(settings, needle: bytes) -> list[str]:
    """Database files (main file, WAL, shared memory) whose raw bytes contain ``needle``."""
    folder = settings.data_dir
    return [p.name for p in folder.glob("veille.db*") if needle in p.read_bytes()]


def test_erasure_leaves_the_address_nowhere(settings, store, taxonomy) -> None:
    import sqlalchemy.exc

    from core.subscribers import subscribers
    from jobs.erasure import erase_subscriber
    from jobs.runner import JOBS, JobSpec, run_job
    from jobs.runs import recent_job_runs

    address = "erase.me@example.org"
    add_subscriber(store, address, sectors="finance", consent=True, taxonomy=taxonomy, now=NOW)
    unsubscribe(store, address, now=NOW)
    add_subscriber(store, address, sectors="legal", consent=True, taxonomy=taxonomy, now=NOW)

    # a job whose database error concerns the address: the error text carries no parameters
    def clashing(store, settings, now):
        with store.write() as conn:
            conn.execute(
                subscribers.insert().values(
                    email=address, sectors=[], techniques=[], created=NOW.replace(tzinfo=None)
                )
            )

    JOBS["clash"] = JobSpec(clashing, "schedule_reindex", "test job")
    try:
        run = run_job("clash", settings, store=store)
    finally:
        del JOBS["clash"]
    assert run.outcome == "error" and "IntegrityError" in run.message
    assert address not in run.message and "hidden due to hide_parameters" in run.message
    with pytest.raises(sqlalchemy.exc.IntegrityError) as raised:
        clashing(store, settings, None)
    assert address not in str(raised.value)

    # a run recorded by an older Veille, whose error did carry it, and a job log
    with store.write() as conn:
        from jobs.runs import job_runs

        conn.execute(
            job_runs.insert().values(
                job="digest",
                started=NOW.replace(tzinfo=None),
                finished=NOW.replace(tzinfo=None),
                outcome="error",
                message=f"IntegrityError: [parameters: ('{address.upper()}', 'x')]",
                owner="old",
            )
        )
    logs = settings.data_dir / "logs"
    logs.mkdir()
    (logs / "job-news.log").write_text(f"INFO sending to {address}\nother line\n")
    (logs / "job-arxiv.log").write_text("nothing personal\n")
    store.checkpoint()
    assert _files_hold(settings, address.encode())  # it is there before erasure

    erased = erase_subscriber(store, settings, address)
    assert (erased.subscriber, erased.job_runs, erased.log_files) == (True, 1, 1)
    assert all(address not in r.message.lower() for r in recent_job_runs(store, 10))
    assert "sub:" in recent_job_runs(store, 1, job="digest")[0].message
    assert address not in (logs / "job-news.log").read_text()
    assert (logs / "job-arxiv.log").read_text() == "nothing personal\n"
    # deleted with secure_delete and the WAL emptied: not even free pages keep it
    assert _files_hold(settings, address.encode()) == []
    with pytest.raises(KeyError):
        export_subscriber(store, address)


def test_cli_remove_erases_everywhere(settings) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli, ["subscribers", "add", "cli.erase@example.org", "--sectors", "retail", "--consent"]
    )
    assert added.exit_code == 0, added.output
    removed = runner.invoke(cli, ["subscribers", "remove", "cli.erase@example.org"])
    assert removed.exit_code == 0 and "Removed cli.erase@example.org" in removed.output
    again = runner.invoke(cli, ["subscribers", "remove", "cli.erase@example.org"])
    assert again.exit_code == 1 and "no data held about cli.erase@example.org" in again.output

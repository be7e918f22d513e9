"""Fault injection: kill -9 mid-send, an SMTP server dropping the connection mid-DATA, and a
database held locked by another writer. Real processes, a real SMTP server on 127.0.0.1, real
SQLite; every wait is on an event or a process, never a fixed sleep.

The figures these tests establish are recorded in RELIABILITY.md ("Delivery and jobs").
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.db import DatabaseBusy
from core.settings import load_settings
from core.store import Store
from core.subscribers import add_subscriber, export_subscriber
from index.taxonomy import load_taxonomy
from jobs.cli import cli
from jobs.runner import run_job
from jobs.runs import recent_job_runs
from tests.test_digest import Collector, _free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = [f"reader{i}@example.com" for i in range(1, 6)]
SECTORS = ["finance", "health", "legal", "retail", "industry"]


@pytest.fixture
def env(monkeypatch, isolated_settings):
    """Cheap model, loopback links allowed, SMTP on a free loopback port (set per test)."""
    monkeypatch.setenv("VEILLE_MODEL", "hash:64")
    monkeypatch.setenv("VEILLE_ALLOW_LOOPBACK_PUBLIC_URL", "true")
    monkeypatch.setenv("VEILLE_SMTP_HOST", "127.0.0.1")
    return isolated_settings


def _subscribe(store: Store, settings, people=PEOPLE) -> None:
    taxonomy = load_taxonomy(settings)
    for address, sector in zip(people, SECTORS, strict=False):
        add_subscriber(store, address, sectors=sector, consent=True, taxonomy=taxonomy)


class Stalling(Collector):
    """Keeps every message, and stalls (without answering) after storing message ``at``:
    the server has the message, the client is still waiting for the 250 reply."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.received) == self.at:
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return answer


@pytest.mark.parametrize("kill_at", [1, 3, 5])
def test_kill_9_mid_send_then_restart_sends_each_digest_exactly_once(
    env, monkeypatch, kill_at
) -> None:
    smtp = Stalling(kill_at)
    smtp.start(_free_port())
    monkeypatch.setenv("VEILLE_SMTP_PORT", str(smtp.port))
    settings = load_settings()
    store = Store.from_settings(settings)
    _subscribe(store, settings)
    child = subprocess.Popen(
        [sys.executable, "-c", "from jobs.cli import main; main()", "jobs", "run", "digest"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert smtp.stalled.wait(120), "the digest job never reached the stalled message"
        child.send_signal(signal.SIGKILL)  # kill -9 while the message is in flight
        child.wait(30)
    finally:
        smtp.release.set()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    killed = recent_job_runs(store, 1, job="digest")[0]
    assert killed.outcome == "running"  # as the dead process left it

    # restart: the dead run is closed with its reason, its lease freed at once
    run = run_job("digest", settings, store=store)
    smtp.stop()
    runs = {r.id: r for r in recent_job_runs(store, 10, job="digest")}
    assert runs[killed.id].outcome == "abandoned"
    assert f"its process ({child.pid} on this host) stopped" in runs[killed.id].message
    assert run.outcome == "ok", run.message
    assert f"{len(PEOPLE) - kill_at} sent" in run.message
    assert "1 uncertain" in run.message  # the one in flight: never resent
    assert all(r.outcome != "running" for r in recent_job_runs(store, 50))
    copies = Counter(rcpt[0] for rcpt, _ in smtp.received)
    assert copies == Counter(PEOPLE), copies  # everyone once: no duplicate, nobody skipped
    store.close()


class DroppingServer:
    """Speaks just enough SMTP to accept a message, then closes the connection in the
    middle of its DATA (after a few bytes, before the final dot)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.drops = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 loopback ESMTP\r\n")
                for line in lines:
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        conn.sendall(b"250-loopback\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 go ahead\r\n")
                        lines.read(64)  # some of the message, then the line goes dead
                        self.drops += 1
                        break
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    else:
                        conn.sendall(b"250 OK\r\n")

    def close(self) -> None:
        self.sock.close()


def test_a_connection_dropped_mid_data_is_retried_later_without_duplicate(env, monkeypatch) -> None:
    dropping = DroppingServer()
    monkeypatch.setenv("VEILLE_SMTP_PORT", str(dropping.port))
    settings = load_settings()
    store = Store.from_settings(settings)
    people = PEOPLE[:3]
    _subscribe(store, settings, people)
    first = run_job("digest", settings, store=store)
    dropping.close()
    assert first.outcome == "error" and "3 failed (retried later)" in first.message
    assert dropping.drops == 3  # each send reconnected, and each was cut mid-DATA
    [failed] = export_subscriber(store, people[0])["digests"]
    assert failed["status"] == "failed" and "SMTPServerDisconnected" in failed["error"]

    smtp = Collector()
    smtp.start(_free_port())
    monkeypatch.setenv("VEILLE_SMTP_PORT", str(smtp.port))
    settings = load_settings()
    retry = run_job("digest_retry", settings, store=store)
    again = run_job("digest_retry", settings, store=store)
    smtp.stop()
    assert retry.outcome == "ok" and "3 sent" in retry.message, retry.message
    assert again.outcome == "skipped"  # nothing left to retry
    assert Counter(rcpt[0] for rcpt, _ in smtp.received) == Counter(people)
    history = export_subscriber(store, people[0])["digests"]
    assert [(h["status"], h["attempts"]) for h in history] == [("sent", 2)]
    store.close()


def _hold_write_lock(settings) -> sqlite3.Connection:
    holder = sqlite3.connect(str(settings.data_dir / "veille.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_job_waits_for_a_locked_database_and_says_so(env, monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_DB_BUSY_TIMEOUT", "0.2")
    settings = load_settings()
    store = Store.from_settings(settings)
    run_job("reindex", settings, store=store)  # tables exist; the lock below is the only fault

    # another writer holds the database through every try: a clear refusal, nothing half-done
    holder = _hold_write_lock(settings)
    try:
        with pytest.raises(DatabaseBusy, match=r"starting job reindex: database busy"):
            run_job("reindex", settings, store=store)
        result = CliRunner().invoke(cli, ["jobs", "run", "reindex"])
        assert result.exit_code == 1
        assert "database busy (locked by another writer)" in result.output, result.output
    finally:
        holder.rollback()
    assert [r.outcome for r in recent_job_runs(store, 10)] == ["ok"]

    # the other writer finishes while the job waits: the job goes on and runs
    holder = _hold_write_lock(settings)
    released: list[str] = []

    class ReleaseOnFirstWait(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "database busy (try 1" in record.getMessage() and not released:
                released.append(record.getMessage())
                holder.rollback()

    handler = ReleaseOnFirstWait()
    logging.getLogger("core.db").addHandler(handler)
    try:
        run = run_job("reindex", settings, store=store)
    finally:
        logging.getLogger("core.db").removeHandler(handler)
        holder.rollback()
    assert released and "starting job reindex: database busy (try 1 of 3)" in released[0]
    assert run.outcome == "ok", run.message
    store.close()

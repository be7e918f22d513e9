"""`veille up`: prepares the corpus, then serves the dashboard and the scheduler until Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.settings import load_settings
from core.store import Store
from tests.loopback import LoopbackServer, Response

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def api_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_up_serves_dashboard_and_scheduler_then_stops_on_ctrl_c(
    isolated_settings: Path, tmp_path: Path
) -> None:
    port = free_port()
    api_port = free_port()
    arxiv = LoopbackServer().__enter__()  # the first run's arXiv crawl comes here
    today = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    atom = (FIXTURES / "arxiv_atom_template.xml").read_text().replace("{published}", today)
    arxiv.route("/api/query", Response(atom.encode(), headers={"Content-Type": "application/xml"}))
    # The cheap hash embedder keeps this test fast; the real model is tested elsewhere.
    env = dict(
        os.environ,
        VEILLE_MODEL="hash:64",
        HF_HUB_OFFLINE="1",
        VEILLE_ARXIV_API_URL=arxiv.url("/api/query"),
        VEILLE_ARXIV_DELAY="0",
        VEILLE_CRAWL_ALLOWED_NETWORKS='["127.0.0.1/32"]',  # the crawlers refuse loopback else
        VEILLE_NEWS_DEFAULT_SOURCES="false",
    )
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "veille"),
            "up",
            "--port",
            str(port),
            "--api-port",
            str(api_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (healthy(port) and api_healthy(api_port)):
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            time.sleep(0.5)
        assert healthy(port), (tmp_path / "up.log").read_text()
        assert api_healthy(api_port), (tmp_path / "up.log").read_text()
        # the starter corpus is in the store and the jobs are stored in the same database
        store = Store.from_settings(load_settings())
        assert store.count() >= 150
        from jobs.cron import JOB_PREFIX, JOBSTORE_TABLE

        table = sa.Table(JOBSTORE_TABLE, sa.MetaData(), autoload_with=store.engine)
        with store.engine.connect() as conn:
            stored = {r[0] for r in conn.execute(sa.select(table.c.id))}
        assert {f"{JOB_PREFIX}arxiv", f"{JOB_PREFIX}digest"} <= stored
        # the first run crawled arXiv at once, without waiting for the 06:00 schedule
        while time.monotonic() < deadline and not store.by_canonical_id("2611.90002"):
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            time.sleep(0.5)
        assert store.by_canonical_id("2611.90001"), (tmp_path / "up.log").read_text()
        assert arxiv.requests_to("/api/query")
        store.close()
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
        arxiv.__exit__(None, None, None)
    output = (tmp_path / "up.log").read_text()
    assert "Dashboard: http://127.0.0.1:" in output and "Stopped." in output
    assert "First run: crawling arXiv" in output
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (healthy(port) or api_healthy(api_port)):
        time.sleep(0.2)
    assert not healthy(port), "the dashboard kept running after Ctrl-C"
    assert not api_healthy(api_port), "the API kept running after Ctrl-C"


def test_first_run_offline_says_so_and_goes_on(isolated_settings: Path, capsys) -> None:
    from jobs.cli.common import AppContext
    from jobs.cli.data import first_crawls

    closed = free_port()  # nothing listens there: what an offline machine sees
    app = AppContext(overrides={"arxiv_api_url": f"http://127.0.0.1:{closed}/api/query"})
    assert first_crawls(app) == []
    out = capsys.readouterr().out
    assert out.startswith("Offline: 127.0.0.1 cannot be reached") and out.count("\n") == 1

    run = app.store().start_run("arxiv")  # once something was crawled, no first-run crawl
    app.store().finish_run(run, status="ok")
    assert first_crawls(app) == [] and capsys.readouterr().out == ""

"""The dashboard in a real browser: `veille dashboard` on a loopback port, headless Chromium.

Screenshots of every page are saved under test-artifacts/browser/ (or $VEILLE_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.loader import load_starter
from core.models import Document
from core.store import Store
from index.indexer import update_index

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("VEILLE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> Graph fraud rings"

# path, heading, a text the page must show
PAGES = [
    ("", "This week", "Top new innovations per sector"),
    ("sectors?sector=health", "Sectors", "Diagnosis support"),
    ("search?q=graph+neural+networks+for+fraud+detection", "Search", "result(s)"),
    ("document?id=2503.13928", "Document", "Fibonacci-Net"),
    ("trends", "Trends", "Growth and bursts"),
    ("sources", "Sources", "Last run per source"),
    ("feedback", "Tell Veille whether a match fits", "Does it fit?"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(settings, store: Store, real_embedder, isolated_settings: Path):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    pytest.importorskip("playwright")
    load_starter(store)
    store.upsert(
        [
            Document(
                "hostile-title",
                HOSTILE,
                "Fraudsters coordinate across cards and merchants; a graph neural network over "
                "the transaction graph finds the fraud rings and money laundering patterns.",
                url="https://example.org/hostile",
                published=datetime(2026, 6, 29, tzinfo=UTC),  # the starter corpus's last week
            )
        ]
    )
    update_index(store, settings)
    run = store.start_run("news:example")
    store.finish_run(run, status="error", errors=1, last_error="HTTP 404 on the feed")
    port = free_port()
    env = dict(os.environ, VEILLE_DATA_DIR=str(isolated_settings), HF_HUB_OFFLINE="1")
    log = (isolated_settings.parent / "dashboard.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "veille"), "dashboard", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.terminate()
        log.close()
        output = (isolated_settings.parent / "dashboard.log").read_text()
        pytest.fail(f"the dashboard did not start:\n{output}")
    yield base
    process.terminate()
    process.wait(timeout=30)
    log.close()


def test_every_page_in_headless_chromium(dashboard: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alerts: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
        for path, heading, expected in PAGES:
            page.goto(f"{dashboard}/{path}")
            page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60_000)
            page.wait_for_selector(f"h1:has-text('{heading}')", timeout=120_000)
            page.wait_for_function(
                "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000
            )
            page.wait_for_timeout(1500)  # let the charts draw
            name = path.split("?")[0] or "this-week"
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            body = page.inner_text("body")
            assert expected in body, f"{name}: {expected!r} not shown"
            assert page.locator("[data-testid='stException']").count() == 0, f"{name}: exception"
            assert "Traceback" not in body and "Page not found" not in body, name
        # the hostile title is shown as text, never run or rendered as markup
        page.goto(f"{dashboard}/search?q=graph+fraud+rings+money+laundering")
        page.wait_for_selector("text=result(s)", timeout=120_000)
        assert "<script>alert(1)</script>" in page.inner_text("body")
        assert page.locator("img[src='x']").count() == 0
        browser.close()
    assert alerts == []

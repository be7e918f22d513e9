"""DNS rebinding: the real dashboard, reached through a foreign name that resolves to 127.0.0.1.

Chromium's host resolver maps ``rebound.example`` to 127.0.0.1, exactly what a hostile DNS
server does in a rebinding attack, so no request leaves the machine. The page must show
nothing but the refusal; the same dashboard under its own address works.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser import serve_dashboard

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_rebound_host_name_gets_nothing(isolated_settings: Path) -> None:
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    log_path = isolated_settings.parent / "dashboard.log"
    with serve_dashboard(isolated_settings, log_path) as base, sync_playwright() as pw:
        port = urlsplit(base).port
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--host-resolver-rules=MAP rebound.example 127.0.0.1",
            ],
        )
        page = browser.new_page()
        page.goto(f"http://rebound.example:{port}/sources")
        page.wait_for_selector("text=does not answer to the address", timeout=120_000)
        body = page.inner_text("body")
        assert "rebound.example" in body and "VEILLE_DASHBOARD_ALLOWED_HOSTS" in body
        assert "Operator actions" not in body and "Last run per source" not in body

        page.goto(f"{base}/sources")
        page.wait_for_selector("text=Operator actions", timeout=120_000)
        assert "does not answer" not in page.inner_text("body")
        browser.close()

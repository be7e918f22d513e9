"""DNS rebinding: the real dashboard, reached through a foreign name that resolves to 127.0.0.1.

Chromium's host resolver maps ``rebound.example`` to 127.0.0.1, exactly what a hostile DNS
server does in a rebinding attack, so no request leaves the machine. The page must show
nothing but the refusal; the same dashboard under its own address works.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_a_rebound_host_name_gets_nothing(isolated_settings: Path) -> None:
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, VEILLE_DATA_DIR=str(isolated_settings), HF_HUB_OFFLINE="1")
    log_path = isolated_settings.parent / "dashboard.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "veille"), "dashboard", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            if _healthy(base) or process.poll() is not None:
                break
            try:
                process.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        assert _healthy(base), log_path.read_text()
        with sync_playwright() as pw:
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
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

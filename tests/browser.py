"""What the browser tests share: one `veille dashboard` per test module, headless Chromium,
waiting for a page to finish drawing, and axe-core.

A module starts its dashboard once (starting Streamlit and loading the model costs seconds on
a small machine) and opens each page in the same browser. Nothing waits for a fixed time:
a page is ready when its own text is shown, its script run has ended and every chart has
drawn.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The WCAG 2.0 and 2.1 rules, levels A and AA (what RGAA 4 follows); no best practices.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]

# Streamlit marks its app root with the state of the script run (as its own tests use it).
_DRAWN = """() => document.querySelector('[data-testid="stApp"]')
        ?.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
        .every(chart => chart.querySelector('canvas, svg'))"""


def need_browser() -> str:
    """Debian's chromium and the Python packages, or skip with the reason."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    pytest.importorskip("playwright")
    pytest.importorskip("axe_playwright_python")
    return chromium


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def serve_dashboard(data_dir: Path, log_path: Path) -> Iterator[str]:
    """`veille dashboard` on a free loopback port over ``data_dir``; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(VEILLE_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "veille"), "dashboard", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while not _healthy(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the dashboard did not start:\n{log_path.read_text()}")
                time.sleep(0.2)  # polling a port, not waiting for a page
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def chromium() -> Iterator[object]:
    """One headless Chromium (Debian's, never a downloaded one) for a whole module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(page, url: str, heading: str, expected: str | re.Pattern[str] = "") -> None:
    """Go to ``url`` and wait until its ``heading`` and ``expected`` text are drawn."""
    page.goto(url)
    settle(page, heading, expected)


def settle(page, heading: str, expected: str | re.Pattern[str] = "") -> None:
    page.wait_for_selector(f"h1:has-text('{heading}')", timeout=120_000)
    if expected:
        page.get_by_text(expected, exact=False).first.wait_for(timeout=120_000)
    page.wait_for_function(_DRAWN, timeout=120_000)


def axe_violations(page) -> list[str]:
    """Every element axe finds in breach of a WCAG 2.1 A/AA rule: rule, element, why."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    found = []
    for rule in results.response["violations"]:
        for node in rule["nodes"]:
            checks = node.get("any", []) + node.get("all", []) + node.get("none", [])
            why = "; ".join(c["message"] for c in checks if c.get("message"))
            found.append(
                f"{rule['id']} ({rule['impact']}): {rule['help']}\n"
                f"    element {' '.join(map(str, node['target']))}: {node['html'][:200]}\n"
                f"    {why}"
            )
    return found


def focus_ring(page) -> dict[str, str]:
    """The focused element and how its focus is drawn (outline and box shadow)."""
    return page.evaluate(
        """() => {
            const e = document.activeElement;
            const s = getComputedStyle(e);
            return {tag: e.tagName, text: (e.innerText || e.value || '').trim().slice(0, 80),
                    label: e.getAttribute('aria-label') || '',
                    outline: s.outlineStyle === 'none' || s.outlineWidth === '0px'
                        ? 'none' : `${s.outlineWidth} ${s.outlineStyle} ${s.outlineColor}`,
                    shadow: s.boxShadow};
        }"""
    )

"""The dashboard's empty state in a real browser: no document, no crawl yet.

What a first-time operator sees must pass the same WCAG 2.1 A/AA checks as a full dashboard;
one `veille dashboard` over an empty data directory serves the whole module.
"""

from __future__ import annotations

import pytest

from tests.browser import axe_violations, chromium, need_browser, open_page, serve_dashboard

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NO_DOCUMENTS = "No documents yet"
# path, heading, a text the page must show
PAGES = [
    ("", "This week", NO_DOCUMENTS),
    ("sectors", "Sectors", NO_DOCUMENTS),
    ("shortlists", "Shortlists", NO_DOCUMENTS),
    ("trends", "Trends", NO_DOCUMENTS),
    ("search?q=fraud", "Search", NO_DOCUMENTS),
    ("document?id=1706.03762", "Document", NO_DOCUMENTS),
    ("sources", "Sources", "No crawl has run yet"),
    ("feedback", "Tell Veille whether a match fits", "Does it fit?"),
    ("unsubscribe", "Unsubscribe from the Veille digest", "unsubscribe link"),
]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory):
    need_browser()
    root = tmp_path_factory.mktemp("browser-empty")
    with serve_dashboard(root / "veille-data", root / "dashboard.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser(dashboard):
    with chromium() as found:
        yield found


@pytest.mark.parametrize(
    "path, heading, expected",
    [pytest.param(p, h, e, id=p.split("?")[0] or "this-week") for p, h, e in PAGES],
)
def test_no_wcag_violation_when_empty(dashboard: str, browser, path, heading, expected) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        open_page(page, f"{dashboard}/{path}", heading, expected)
        assert page.locator("[data-testid='stException']").count() == 0, path
        found = axe_violations(page)
    finally:
        page.close()
    assert not found, f"/{path}, empty: {len(found)} WCAG 2.1 A/AA violation(s):\n" + "\n".join(
        found
    )

"""The HTML report in a real headless Chromium: drawn, offline, and script-free.

Skipped only where Chromium or Playwright is absent (`make test` installs both). The
screenshot is kept as report.png in the run's test output folder (conftest.py's
``run_output``: $KPI_TEST_OUTPUT, or pytest's temporary folder; the path is printed at
the end of the run) for a person to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kpiengine.cli import main
from tests.test_report import ACCOUNTS, FILES, OPPORTUNITIES, SPEND, make_duckdb, write_files

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def open_report(browser, path: Path, javascript: bool = True):
    context = browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    events = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: events["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: events["console"].append(f"pageerror: {e}"))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, events


def test_demo_report_in_chromium(browser, tmp_path, run_output):
    out = tmp_path / "demo"
    assert main(["demo", "--rows", "3000", "--out", str(out)]) == 0
    page, events = open_report(browser, out / "report.html")
    run_output.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(run_output / "report.png"), full_page=False)
    cards = page.locator("section.card").count()
    assert cards > 50
    drawn = page.locator("section.card svg.trend polyline").count()
    assert drawn >= cards  # a trend chart per KPI
    assert page.locator("svg.trend").first.bounding_box()["width"] > 100
    assert events["console"] == []
    assert [u for u in events["requests"] if not u.startswith("file://")] == []
    assert events["dialogs"] == []


def test_injected_title_does_not_execute(browser, tmp_path):
    root = write_files(tmp_path / "defs", FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    target = tmp_path / "evil.html"
    assert (
        main(
            [
                "report",
                "evil",
                "--project",
                str(root),
                "--connector",
                url,
                "--from",
                "2024-01-01",
                "--to",
                "2024-06-01",
                "-o",
                str(target),
            ]
        )
        == 0
    )
    page, events = open_report(browser, target)
    assert events["dialogs"] == []  # alert(1) never ran
    assert page.locator("section.card h3").first.inner_text() == "<script>alert(1)</script>"
    assert page.locator("section.card img").count() == 0
    assert events["console"] == []


def test_readable_without_javascript(browser, tmp_path):
    root = write_files(tmp_path / "defs", FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    target = tmp_path / "plain.html"
    assert (
        main(
            [
                "report",
                "revenue",
                "win_rate",
                "--project",
                str(root),
                "--connector",
                url,
                "--from",
                "2024-01-01",
                "--to",
                "2024-06-01",
                "-o",
                str(target),
            ]
        )
        == 0
    )
    page, _ = open_report(browser, target, javascript=False)
    assert page.locator("section.card").count() == 2
    assert "110 EUR" in page.locator("table").inner_text()


def test_demo_funnel_readable_without_javascript(browser, tmp_path):
    """The demo report's funnel section (conversion KPIs, SPEC §13.5): drawn bars, one per
    step, and every number as text with JavaScript off; nothing fetched."""
    out = tmp_path / "demo"
    assert main(["demo", "--rows", "3000", "--out", str(out)]) == 0
    page, events = open_report(browser, out / "report.html", javascript=False)
    funnels = page.locator("section.funnels table.funnel")
    assert funnels.count() == 2  # leads by creation; leads by qualification (MQL)
    first = funnels.first
    steps = first.locator("tr.funnel-step")
    assert steps.count() == 3  # base events, opportunity, customer
    text = first.inner_text()
    assert "lead_to_opportunity_rate" in text and "lead_to_customer_rate" in text
    widths = [steps.nth(i).locator(".funnel-bar").bounding_box()["width"] for i in range(3)]
    assert widths[0] > widths[1] > widths[2] > 0  # bars narrow step by step
    assert [u for u in events["requests"] if not u.startswith("file://")] == []

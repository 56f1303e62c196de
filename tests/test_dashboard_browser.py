"""The dashboard in headless Chromium, following `promoter demo` live; saves a screenshot."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from browser import CHROMIUM_ARGS, Lines, artifacts_dir, chromium_path, stop
from playwright.sync_api import ConsoleMessage, Error, Page, Request, expect, sync_playwright

PROD = '[data-pipeline="shop"][data-env="prod"]'


def expected_noise(message: ConsoleMessage) -> bool:
    """/readyz answers 503 once the demo's worker has stopped; Chromium logs that as an error."""
    return "status of 503" in message.text and message.location["url"].endswith("/readyz")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def polls_while(page: Page, hidden: bool, seconds: float) -> int:
    """Requests to /api/status during `seconds` with the tab shown as hidden or visible."""
    state = "hidden" if hidden else "visible"
    page.evaluate(
        """state => {
            Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if "/api/status" in request.url:
            seen.append(request.url)

    page.on("request", on_request)
    page.wait_for_timeout(seconds * 1000)
    page.remove_listener("request", on_request)
    return len(seen)


@pytest.mark.timeout(120)
def test_dashboard_follows_the_demo_without_reloading(tmp_path: Path) -> None:
    executable = chromium_path()
    screenshot = artifacts_dir() / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            problems: list[str] = []

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error" and not expected_noise(message):
                    problems.append(f"console: {message.text} at {message.location}")

            def on_error(error: Error) -> None:
                problems.append(f"uncaught: {error}")

            page.on("console", on_console)
            page.on("pageerror", on_error)
            with (
                (tmp_path / "demo.log").open("w") as log,
                subprocess.Popen(
                    [sys.executable, "-m", "promoter", "demo", "--http-port", "0"],
                    cwd=tmp_path,
                    env={**os.environ, "PROMOTER_LOG_FORMAT": "json"},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                ) as demo,
            ):
                try:
                    play(page, demo, problems, screenshot)
                finally:
                    stop(demo)
        finally:
            browser.close()
    width, height = png_size(screenshot)
    assert width == 1366
    assert height >= 700
    assert screenshot.stat().st_size > 20_000


def play(page: Page, demo: subprocess.Popen[str], problems: list[str], screenshot: Path) -> None:
    assert demo.stdout is not None
    lines = Lines(demo.stdout)
    url = lines.wait_for(r"^dashboard: (http://127\.0\.0\.1:\d+/)$", 60)[1]
    page.goto(url)  # before anything reached prod (the story needs two 2 s soaks first)
    page.evaluate("window.loadedOnce = true")
    prod = page.locator(PROD)
    expect(prod.locator('[data-role="live"]')).to_have_text("nothing live")
    expect(page.locator("thead th[data-env]")).to_have_text(["dev", "staging", "prod"])

    # the page follows the story by polling: the bundle shows up in prod without a reload
    api = prod.locator('[data-role="live"] [data-artifact="api"] .v')
    expect(api).to_have_text("1.0.0", timeout=45_000)
    expect(prod.locator('[data-role="live"] [data-artifact="ranker"] .v')).to_have_text("1")

    lines.wait_for(r"^dashboard still at http://", 60)
    expect(prod.locator('[data-role="held"]')).to_be_visible(timeout=10_000)
    expect(api).to_have_text("1.0.0")
    expect(prod.locator('[data-role="hold-reason"]')).to_contain_text("rolled back from api 1.1.0")
    expect(page.locator('[data-pipeline="shop"][data-env="dev"] .v').first).to_have_text("1.1.0")
    expect(page.locator('#decisions [data-action="rollback"]')).to_have_count(1, timeout=10_000)
    assert page.locator("#decisions tbody tr[data-seq]").count() > 0
    expect(page.locator('#decisions tbody tr[data-seq] [data-action="hold"]').first).to_be_visible()
    expect(page.locator('[data-role="readiness"]')).not_to_have_text("worker: checking…")
    expect(page.locator('[data-role="updated"]')).to_have_text(re.compile(r"updated \d+s ago"))
    expect(page.locator('[data-role="connection"]')).to_be_hidden()
    assert page.evaluate("window.loadedOnce") is True, "the page was reloaded"

    # polling pauses while the tab is hidden and resumes when it is shown again
    assert polls_while(page, hidden=True, seconds=4.5) == 0
    assert polls_while(page, hidden=False, seconds=2.5) >= 1

    page.screenshot(path=str(screenshot), full_page=True)
    assert not problems, problems

    demo.send_signal(signal.SIGTERM)
    assert demo.wait(30) == 0
    # with the server gone, the page says so instead of showing stale data silently
    expect(page.locator('[data-role="connection"]')).to_be_visible(timeout=10_000)

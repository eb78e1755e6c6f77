"""Headless Chromium for the tests that look at pages (the HTML report, the web UI).

Playwright drives the system's Chromium (Debian's package: /usr/bin/chromium, or
$STUDYBENCH_CHROMIUM); no browser is downloaded. Without one the tests skip with a
reason, except where STUDYBENCH_REQUIRE_BROWSER=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import pytest


def chromium_path() -> str:
    path = os.environ.get("STUDYBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        message = "Chromium not found (apt-get install chromium, or set STUDYBENCH_CHROMIUM)"
        if os.environ.get("STUDYBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; STUDYBENCH_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip(message)
    return path


@contextmanager
def browser_page(width: int = 1200, height: int = 900):
    """``(page, problems)``: a fresh page, and a list that collects console errors,
    uncaught page errors and failed requests."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            yield page, problems
        finally:
            browser.close()

"""Screenshots for the README, taken in headless Chromium (Debian's package) with Playwright.

    python docs/screenshots.py report RUNS_DIR docs/report-lyrics.png   # builds the report first
    python docs/screenshots.py report RUNS_DIR docs/report-images.png "Images: transfer to block 2"
    python docs/screenshots.py serve BUNDLE [BUNDLE ...] docs/serve-ui.png
"""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

SONG = ("Whiskey on the porch and dust on my boots,\nthe old truck rolling down the county road,\n"
        "fiddle in the barn till the morning light")


def _browser(playwright):
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])


def report(runs_dir: str, png: str, heading: str | None = None) -> None:
    """The report's first screen, or the screen that starts at ``heading``."""
    from studybench.reporting.report import build_report

    page_path = build_report(runs_dir)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1150, "height": 1500})
        page.goto(page_path.as_uri())
        if heading:
            page.locator(f"h2:text-is('{heading}'), h3:text-is('{heading}')").first.evaluate(
                "h => window.scrollTo(0, h.getBoundingClientRect().top + window.scrollY - 20)")
        page.screenshot(path=png, full_page=False)
        browser.close()


def serve(bundles: list[str], png: str) -> None:
    import uvicorn

    from studybench.serve import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(bundles), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#lyrics-model option", state="attached")
        page.fill("#lyrics", SONG)
        page.click("#predict-lyrics")
        page.wait_for_selector("#lyrics-result .prediction")
        page.screenshot(path=png, full_page=True)
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "report":
        report(*args[:3])
    else:
        serve(args[:-1], args[-1])
    print(Path(args[1] if kind == "report" else args[-1]).resolve())

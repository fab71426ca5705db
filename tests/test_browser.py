"""End to end in a real browser: start `python app.py`, upload a clip in headless Chromium, read the verdict.

Leaves a full-page screenshot in reports/browser/result.png (kept by CI as an artefact).
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_app import REPO, TELEGRAM, shipped_or_fixture_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT = REPO / "reports" / "browser" / "result.png"
START_TIMEOUT_S = 120
RESULT_TIMEOUT_MS = 120_000


def wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll until the app answers; fail early with its output if it exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"app.py exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"app.py did not answer at {url} within {START_TIMEOUT_S} s")


@pytest.mark.slow
def test_upload_and_analyse_in_chromium(tmp_path_factory: pytest.TempPathFactory) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model_dir = shipped_or_fixture_model(tmp_path_factory)
    log = tmp_path_factory.mktemp("app") / "app.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--port", str(port), "--no-browser", "--model", str(model_dir)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, server, log)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                page.get_by_label("Upload file").click()
                page.locator("input[type=file]").first.set_input_files(str(TELEGRAM))
                page.locator("#analyse").click()
                verdict = page.locator("#verdict")
                sync_api.expect(verdict).to_contain_text("inference", timeout=RESULT_TIMEOUT_MS)
                text = verdict.inner_text()
                assert "COVID-19 probability" in text or "does not sound like a cough" in text
                assert "model" in text
                page.locator("#result-plot img").wait_for(timeout=RESULT_TIMEOUT_MS)
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

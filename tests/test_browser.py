"""End to end in a real browser: start `python app.py`, give it a clip in headless Chromium, read the verdict.

Leaves full-page screenshots in reports/browser/ (kept by CI as an artefact); result.png is the upload run.
"""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import free_port
from tests.test_app import REPO, TELEGRAM, shipped_or_fixture_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
REPORTS = REPO / "reports" / "browser"
START_TIMEOUT_S = 120
RESULT_TIMEOUT_MS = 120_000
RECORD_SECONDS = 3.0

pytestmark = pytest.mark.slow


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


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python app.py` exactly as a user starts it, on a free port; stopped after the module."""
    pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}")
    port = free_port("127.0.0.1")
    model_dir = shipped_or_fixture_model(tmp_path_factory)
    log = tmp_path_factory.mktemp("app") / "app.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--port", str(port), "--no-browser", "--model", str(model_dir)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def analyse_and_read(page, screenshot: Path) -> str:
    """Once the clip is in (its download button shows), press Analyse, wait for verdict and figure, screenshot."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Download").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator("#analyse").click()
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("inference", timeout=RESULT_TIMEOUT_MS)
    page.locator("#result-plot img").wait_for(timeout=RESULT_TIMEOUT_MS)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    return verdict.inner_text()


def assert_verdict(text: str) -> None:
    assert ("COVID-19 probability" in text) != ("does not sound like a cough" in text)
    assert "model" in text and "ms" in text


def test_upload_and_analyse(app_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(app_url)
            page.get_by_label("Upload file").click()
            page.locator("input[type=file]").first.set_input_files(str(TELEGRAM))
            assert_verdict(analyse_and_read(page, REPORTS / "result.png"))
        finally:
            browser.close()


def test_record_from_microphone_and_analyse(app_url: str, tmp_path: Path) -> None:
    """Chromium's fake capture device plays a cough clip as the microphone, so the recording path is exercised."""
    from playwright.sync_api import sync_playwright

    mic = tmp_path / "mic.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(TELEGRAM), "-ar", "48000", "-ac", "1", str(mic)],
                   check=True)
    fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + fake_mic)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900}, permissions=["microphone"])
            page = context.new_page()
            page.goto(app_url)
            page.get_by_role("button", name="Record", exact=True).click()
            time.sleep(RECORD_SECONDS)
            page.get_by_role("button", name="Stop", exact=True).first.click()
            assert_verdict(analyse_and_read(page, REPORTS / "microphone.png"))
        finally:
            browser.close()

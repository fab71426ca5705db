"""End to end in a real browser: start `python app.py`, give it a clip in headless Chromium, read the verdict.

The page's two kinds of verdict are checked on the small fixture model with its sound-type gate open (every clip
is a cough: a COVID-19 score) and shut (nothing is: what it heard, no score); with a trained model exported for this
runtime, the speech example must get no score and a cough example one. Leaves full-page screenshots in
reports/browser/ (kept by CI as an artefact); result.png is the upload run.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

import app
import coughkd
from build import smoke
from coughkd import Prediction
from tests.model_fixture import make_model_dir
from tests.test_app import REPO, SPEECH, TELEGRAM, shipped_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
REPORTS = REPO / "reports" / "browser"
RESULT_TIMEOUT_MS = 120_000
RECORD_SECONDS = 3.0
COVID_SCORE = re.compile(r"COVID-19 probability: \d+%")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def browser_available() -> None:
    pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}")


def serve(model_dir: Path, log: Path) -> smoke.Server:
    """`python app.py` exactly as a user starts it, on a free port (a context manager that stops it)."""
    command = [sys.executable, str(REPO / "app.py"), "--port", "0", "--no-browser", "--model", str(model_dir)]
    return smoke.serve(command, log, cwd=REPO)


@pytest.fixture(scope="module")
def gate_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the fixture model with the gate open: every clip is a cough and gets a COVID-19 score."""
    folder = tmp_path_factory.mktemp("gate_open")
    with serve(make_model_dir(folder / "model", cough_threshold=0.0), folder / "app.log") as server:
        yield server.url


@pytest.fixture(scope="module")
def gate_shut(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the fixture model with the gate shut: no probability reaches the cough threshold."""
    folder = tmp_path_factory.mktemp("gate_shut")
    with serve(make_model_dir(folder / "model", cough_threshold=2.0), folder / "app.log") as server:
        yield server.url


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the trained model, when one exported for this runtime is in assets/model."""
    model_dir = shipped_model()
    if model_dir is None:
        pytest.skip("assets/model was not exported for this runtime (rebuild it with python -m training.reproduce)")
    with serve(model_dir, tmp_path_factory.mktemp("trained") / "app.log") as server:
        yield server.url


def open_page(playwright: Any, url: str, args: tuple[str, ...] = (), **context: Any) -> tuple[Any, Any]:
    """A fresh headless Chromium on `url`: (browser, page); the caller closes the browser."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *args])
    page = browser.new_context(viewport={"width": 1400, "height": 900}, **context).new_page()
    page.goto(url)
    return browser, page


def upload(page: Any, clip: Path) -> None:
    page.get_by_label("Upload file").click()
    page.locator("input[type=file]").first.set_input_files(str(clip))
    page.get_by_role("button", name="Download").wait_for(timeout=RESULT_TIMEOUT_MS)  # the clip is in


def analyse_and_read(page: Any, screenshot: Path) -> str:
    """Press Analyse, wait for verdict and figure, screenshot, return the verdict's text."""
    from playwright.sync_api import expect

    page.locator("#analyse").click()
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("decoding and inference", timeout=RESULT_TIMEOUT_MS)
    page.locator("#result-plot img").wait_for(timeout=RESULT_TIMEOUT_MS)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    return verdict.inner_text()


def assert_scored(text: str) -> None:
    assert COVID_SCORE.search(text) and "sensitivity" in text and "model" in text, text


def assert_not_a_cough(text: str) -> None:
    """What it heard, in one of the app's headlines, and no COVID-19 number anywhere."""
    assert any(text.startswith(headline) for headline in app.HEARD.values()), text
    assert "What the model heard:" in text and app.RECORD_AGAIN in text
    assert "COVID-19 probability" not in text and "threshold" not in text and "sensitivity" not in text, text


def test_upload_and_analyse_sends_nothing_off_this_machine(gate_open: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = open_page(playwright, gate_open)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        try:
            upload(page, TELEGRAM)
            assert_scored(analyse_and_read(page, REPORTS / "result.png"))
        finally:
            browser.close()
    hosts = {urlparse(url).hostname for url in requested if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, f"the page fetched from {hosts}"


def test_page_shows_what_it_heard_and_no_covid_number_for_a_non_cough(gate_shut: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = open_page(playwright, gate_shut)
        try:
            upload(page, SPEECH)
            assert_not_a_cough(analyse_and_read(page, REPORTS / "not_a_cough.png"))
            assert not COVID_SCORE.search(page.locator("body").inner_text())
        finally:
            browser.close()


def test_trained_model_scores_a_cough_and_not_speech(trained: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = open_page(playwright, trained)
        try:
            upload(page, SPEECH)
            speech = analyse_and_read(page, REPORTS / "speech.png")
            page.goto(trained)
            upload(page, TELEGRAM)
            cough = analyse_and_read(page, REPORTS / "cough.png")
        finally:
            browser.close()
    assert_not_a_cough(speech)
    assert speech.startswith(app.HEARD["speech"]), "the speech example should be heard as speech"
    assert_scored(cough)


def test_record_from_microphone_and_analyse(gate_open: str, tmp_path: Path) -> None:
    """Chromium's fake capture device plays a cough clip as the microphone, so the recording path is exercised."""
    from playwright.sync_api import sync_playwright

    mic = tmp_path / "mic.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(TELEGRAM), "-ar", "48000", "-ac", "1", str(mic)],
                   check=True)
    fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}"]
    with sync_playwright() as playwright:
        browser, page = open_page(playwright, gate_open, tuple(fake_mic), permissions=["microphone"])
        try:
            page.get_by_role("button", name="Record", exact=True).click()
            time.sleep(RECORD_SECONDS)
            page.get_by_role("button", name="Stop", exact=True).first.click()
            page.get_by_role("button", name="Download").wait_for(timeout=RESULT_TIMEOUT_MS)  # the recording is in
            assert_scored(analyse_and_read(page, REPORTS / "microphone.png"))
        finally:
            browser.close()


def test_a_full_queue_is_a_message_in_the_page_not_a_trace(tmp_path: Path) -> None:
    """Every worker busy and the queue full (a model that waits to be released): Analyse must say so plainly."""
    from gradio_client import Client, handle_file
    from gradio_client.utils import Status
    from playwright.sync_api import expect, sync_playwright

    model = coughkd.load(make_model_dir(tmp_path / "model"))
    release = threading.Event()

    class Held:
        manifest = model.manifest

        def predict(self, path: str) -> Prediction:
            release.wait()
            return model.predict(path)

    demo = app.build_demo(Held())
    try:
        url = app.launch(demo, port=0)
        client = Client(url, verbose=False)
        jobs = [client.submit(handle_file(str(TELEGRAM)), api_name="/predict")
                for _ in range(app.WORKERS + app.QUEUE_SIZE)]
        while sum(job.status().code == Status.IN_QUEUE for job in jobs) < app.QUEUE_SIZE:
            time.sleep(0.1)
        with sync_playwright() as playwright:
            browser, page = open_page(playwright, url)
            try:
                upload(page, TELEGRAM)
                page.locator("#analyse").click()
                expect(page.get_by_text("This application is currently busy. Please try again.")).to_be_visible(
                    timeout=RESULT_TIMEOUT_MS)
                page.screenshot(path=str(REPORTS / "queue_full.png"), full_page=True)
                text = page.locator("body").inner_text()
            finally:
                browser.close()
        assert "Traceback" not in text and "Exception" not in text
        release.set()
        assert all("error" not in job.result(timeout=RESULT_TIMEOUT_MS / 1000) for job in jobs)
    finally:
        release.set()
        demo.close()

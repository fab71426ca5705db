"""End to end in a real browser: `python app.py` in headless Chromium, used as a person would.

Every format phones and browsers record is uploaded through the page's own file input; the microphone is Chromium's
fake capture device playing a cough; a speech clip gets no score; a clip made 20 times too loud gets "please record
again"; a cough gets a plain-language result with its channel's figures and predictive values, which follow the
prevalence slider; a second recording clears the first's result and both land in the history side by side; the
report downloads as one HTML file; the page speaks Russian, Spanish and Hindi; the accessibility tree, keyboard
use, contrast, the font and a 390x844 phone are checked. The app runs the small fixture model (gate open: every clip
a cough; shut: none is) with the shipped model's operating point, so the figures are the real ones; with a trained
model exported for this runtime, the speech example must get no score and a cough example one.
Full-page screenshots go to reports/screenshots/ (kept by CI as an artefact).
"""
from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
import soxr

import app
import coughkd
from build import smoke
from coughkd import Prediction
from coughkd.audio import load_audio
from coughkd_app import figure, text
from tests.audio_formats import FORMATS, encode
from tests.model_fixture import make_model_dir
from tests.test_app import CALL_CENTRE, REPO, SPEECH, TELEGRAM, shipped_model
from tests.test_app_result import OPERATING_POINT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "reports" / "screenshots"
RESULT_TIMEOUT_MS = 120_000
RECORD_SECONDS = 3.0
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MIN_FIGURE_TEXT_PX = 10.0
MIN_CONTRAST = 4.5  # WCAG AA for body text
HEADLINES = {key: text.say("en", key) for key in text.EN if key.startswith("headline_")}
CONTRAST_JS = """(el) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 :
                                                    Math.pow((v + 0.055) / 1.055, 2.4); })
                                       .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  let node = el, bg = null;
  while (node) { const c = rgb(getComputedStyle(node).backgroundColor);
                 if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) { bg = c; break; } node = node.parentElement; }
  bg = bg || [255, 255, 255];
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def browser_available() -> None:
    pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}")


def fixture_model(folder: Path, cough_threshold: float) -> Path:
    """The fixture model with the shipped model's operating point and threshold, so the page shows real figures."""
    model_dir = make_model_dir(folder, cough_threshold=cough_threshold)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["operating_point"] = OPERATING_POINT
    manifest["threshold"]["covid"] = OPERATING_POINT["threshold"]
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    return model_dir


def serve(model_dir: Path, log: Path) -> smoke.Server:
    """`python app.py` exactly as a user starts it, on a free port (a context manager that stops it)."""
    command = [sys.executable, str(REPO / "app.py"), "--port", "0", "--no-browser", "--model", str(model_dir)]
    return smoke.serve(command, log, cwd=REPO)


@pytest.fixture(scope="module")
def gate_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the fixture model with the gate open: every clip is a cough and gets a COVID-19 score."""
    folder = tmp_path_factory.mktemp("gate_open")
    with serve(fixture_model(folder / "model", 0.0), folder / "app.log") as server:
        yield server.url


@pytest.fixture(scope="module")
def gate_shut(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the fixture model with the gate shut: no probability reaches the cough threshold."""
    folder = tmp_path_factory.mktemp("gate_shut")
    with serve(fixture_model(folder / "model", 2.0), folder / "app.log") as server:
        yield server.url


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the trained model, when one exported for this runtime is in assets/model."""
    model_dir = shipped_model()
    if model_dir is None:
        pytest.skip("assets/model was not exported for this runtime (rebuild it with python -m training.reproduce)")
    with serve(model_dir, tmp_path_factory.mktemp("trained") / "app.log") as server:
        yield server.url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright for the module (its sync API runs one instance per thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[Any]:
    """One headless Chromium for the module's tests; each test gets a fresh context (no shared storage)."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Telegram example cough in every upload format, and made 20 times too loud (clipped, WebM/Opus)."""
    folder = tmp_path_factory.mktemp("clips")
    cough = load_audio(TELEGRAM).waveform * 0.5
    made = {name: encode(cough, 16000, name, folder) for name in FORMATS}
    loud = np.clip(soxr.resample(cough * 2, 16000, 48000) * 20, -1, 1)
    made["too_loud"] = encode(loud, 48000, "webm", folder, stem="too_loud")
    return made


@contextmanager
def opened(browser: Any, url: str, viewport: dict[str, int] = DESKTOP, **context: Any) -> Iterator[Any]:
    """A page of a fresh browser context on `url`, closed afterwards."""
    session = browser.new_context(viewport=viewport, accept_downloads=True, **context)
    try:
        page = session.new_page()
        page.goto(url)
        page.locator("#verdict .verdict").wait_for(timeout=RESULT_TIMEOUT_MS)  # the page has loaded its store
        yield page
    finally:
        session.close()


def upload(page: Any, clip: Path) -> None:
    """Through the page's own file input, as a file picker does; waits until the page says it is ready."""
    from playwright.sync_api import expect

    page.locator("#recording .source-selection button[aria-label='Upload file']").click()  # not translated by Gradio
    page.locator("#recording input[type=file]").set_input_files(str(clip))
    expect(page.locator("#verdict")).to_contain_text(clip.name, timeout=RESULT_TIMEOUT_MS)


def analyse(page: Any, name: str, screenshot: str | None) -> str:
    """Press Analyse, wait for the verdict of `name` and its figure, screenshot the page (a full-page screenshot
    scrolls it back to the top), return the verdict's text."""
    from playwright.sync_api import expect

    page.locator("#analyse").click()
    verdict = page.locator("#verdict .verdict-for")
    expect(verdict).to_contain_text(name, timeout=RESULT_TIMEOUT_MS)
    if page.locator("#verdict [data-outcome=error]").count() == 0:
        page.locator("#result-figure img").wait_for(timeout=RESULT_TIMEOUT_MS)
    if screenshot:
        shoot(page, screenshot)
    return page.locator("#verdict").inner_text()


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def headline(page: Any) -> str:
    return page.locator("#verdict .verdict-headline").inner_text()


def one_line(words: str) -> str:
    return re.sub(r"\s+", " ", words)


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_phones_and_browsers_record_is_accepted(chromium: Any, gate_open: str, clips: dict[str, Path],
                                                             name: str) -> None:
    """No "Invalid file type" for .webm or .3gp (Chromium calls them video/*), and each one is analysed."""
    clip = clips[name]
    with opened(chromium, gate_open) as page:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        upload(page, clip)
        verdict = analyse(page, clip.name, f"format_{name}.png")
        assert "Invalid file type" not in page.locator("body").inner_text()
    assert headline_of(verdict) in HEADLINES.values(), verdict
    channel = "telephone recordings" if FORMATS[name][2] <= 8000 else "phone app or a browser"
    assert headline_of(verdict) == HEADLINES["headline_retake"] or channel in one_line(verdict), verdict
    hosts = {urlparse(url).hostname for url in requested if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, f"the page fetched from {hosts}"


def test_a_webm_dropped_on_the_recorder_is_accepted(chromium: Any, gate_open: str, clips: dict[str, Path]) -> None:
    """Drag and drop takes the same route as the picker: a .webm typed video/webm, as Chromium types it, goes in."""
    from playwright.sync_api import expect

    clip = clips["webm"]
    with opened(chromium, gate_open) as page:
        page.locator("#recording .source-selection button[aria-label='Upload file']").click()
        page.locator("#recording .upload-container").evaluate("""(zone, [data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "video/webm"}));
            for (const type of ["dragenter", "dragover", "drop"]) {
              zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
            }
        }""", [base64.b64encode(clip.read_bytes()).decode("ascii"), clip.name])
        expect(page.locator("#verdict")).to_have_text(text.say("en", "ready", name=clip.name),
                                                      timeout=RESULT_TIMEOUT_MS)
        assert "Invalid file type" not in page.locator("body").inner_text()


def headline_of(verdict: str) -> str:
    """The verdict's headline: its second line (the first names the recording)."""
    return [line for line in verdict.splitlines() if line.strip()][1]


def test_record_from_microphone_and_analyse(playwright: Any, gate_open: str, tmp_path: Path) -> None:
    """Chromium's fake capture device plays a cough clip as the microphone, so the recording path is exercised."""
    from playwright.sync_api import expect

    mic = tmp_path / "mic.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(TELEGRAM), "-ar", "48000", "-ac", "1", str(mic)],
                   check=True)
    fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}"]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *fake_mic])
    try:
        with opened(browser, gate_open, permissions=["microphone"]) as page:
            page.get_by_role("button", name="Record", exact=True).click()
            time.sleep(RECORD_SECONDS)
            page.get_by_role("button", name="Stop", exact=True).first.click()
            expect(page.locator("#verdict")).to_contain_text("your microphone recording", timeout=RESULT_TIMEOUT_MS)
            verdict = analyse(page, "your microphone recording", "microphone.png")
    finally:
        browser.close()
    assert headline_of(verdict) in HEADLINES.values(), verdict


def test_speech_gets_what_it_heard_and_no_covid_number(chromium: Any, gate_shut: str) -> None:
    with opened(chromium, gate_shut) as page:
        upload(page, SPEECH)
        verdict = analyse(page, SPEECH.name, "speech.png")
        body = page.locator("body").inner_text()
    assert headline_of(verdict) in (HEADLINES["headline_speech"], HEADLINES["headline_breathing"],
                                    HEADLINES["headline_other"]), verdict
    assert "only for coughs" in verdict
    assert "flagged" not in body and "Model score" not in body and "How sure" not in body


def test_a_clipped_recording_is_no_result_with_the_reason(chromium: Any, gate_open: str,
                                                         clips: dict[str, Path]) -> None:
    with opened(chromium, gate_open) as page:
        upload(page, clips["too_loud"])
        verdict = analyse(page, clips["too_loud"].name, "clipped.png")
        alt = page.locator("#result-figure img").get_attribute("alt")
    assert headline_of(verdict) == HEADLINES["headline_retake"], verdict
    assert text.say("en", "reason_clipped") in verdict and text.say("en", "tip_clipped") in verdict
    assert "How sure" not in verdict and "flagged" not in verdict.split("Full numbers")[0]
    assert "%" not in alt, f"a recording to record again shows no score, not even per cough: {alt}"


def test_a_cough_in_plain_words_with_its_channels_figures_history_and_no_stale_result(chromium: Any,
                                                                                      gate_open: str) -> None:
    """Telegram audio gets the Telegram figures and PPV/NPV at 5%, then at the slider's 20%; a telephone clip
    clears the first result the moment it is chosen, gets the call-centre figures, and both sit in the history."""
    from playwright.sync_api import expect

    with opened(chromium, gate_open) as page:
        upload(page, TELEGRAM)
        first = one_line(analyse(page, TELEGRAM.name, "cough.png"))
        assert headline_of(page.locator("#verdict").inner_text()) in (HEADLINES["headline_positive"],
                                                                      HEADLINES["headline_negative"]), first
        assert ("Of 100 people with COVID-19 who record like this, about 25 are flagged; of 100 people without "
                "it, about 3 are flagged.") in first
        assert "phone app or a browser" in first and "If 5 in 100 people around you" in first
        assert "about 34 in 100 really have it" in first and "about 96 in 100 really do not" in first
        page.locator("#prevalence input[type=number]").fill("20")
        page.locator("#prevalence input[type=number]").press("Enter")
        expect(page.locator("#verdict")).to_contain_text("If 20 in 100 people around you", timeout=RESULT_TIMEOUT_MS)
        assert "about 71 in 100 really have it" in one_line(page.locator("#verdict").inner_text())
        upload(page, CALL_CENTRE)
        expect(page.locator("#verdict")).to_have_text(text.say("en", "ready", name=CALL_CENTRE.name))
        assert page.locator("#result-figure img").count() == 0 and page.locator("#report-link").count() == 0, \
            "the previous figure and report go with the previous recording"
        second = one_line(analyse(page, CALL_CENTRE.name, "second_cough.png"))
        assert "about 73 are flagged; of 100 people without it, about 21 are flagged" in second
        assert "telephone recordings, 8 kHz or less" in second
        cards = page.locator("#history .history-card")
        expect(cards).to_have_count(2)
        assert CALL_CENTRE.name in cards.nth(0).inner_text() and TELEGRAM.name in cards.nth(1).inner_text()
        # Both boxes from one frame: the page may still be scrolling smoothly to the verdict, and each
        # bounding_box() call would read the cards at another point of that scroll.
        boxes = cards.evaluate_all("cards => cards.map(c => { const r = c.getBoundingClientRect();"
                                   " return {x: r.x, y: r.y}; })")
        assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"], f"side by side: {boxes}"
        shoot(page, "history.png")


def test_the_report_downloads_as_one_self_contained_file(chromium: Any, gate_open: str) -> None:
    with opened(chromium, gate_open) as page:
        upload(page, TELEGRAM)
        verdict = analyse(page, TELEGRAM.name, "report_page.png")
        with page.expect_download() as download:
            page.locator("#report-link").click()
        document = Path(download.value.path()).read_text(encoding="utf-8")
        name = download.value.suggested_filename
    assert re.fullmatch(r"coughkd-report-cough_telegram_1-\d{14}\.html", name), name
    assert headline_of(verdict) in document and 'src="data:image/png;base64,' in document
    assert "fixture-seed0" in document and "UTC" in document and "Research demo" in document
    assert "about 25 are flagged" in document
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", document), "the report fetches nothing"


@pytest.mark.parametrize(("locale", "lang"), [("ru-RU", "ru"), ("es-ES", "es"), ("hi-IN", "hi")])
def test_the_page_speaks_the_browsers_language(chromium: Any, gate_open: str, locale: str, lang: str) -> None:
    from playwright.sync_api import expect

    page_text = text.page_text(lang)
    with opened(chromium, gate_open, locale=locale) as page:
        expect(page.locator("h1")).to_have_text(text.say(lang, "title"))
        assert text.say(lang, "disclaimer").split("**")[1] in page.locator("#disclaimer").inner_text()
        expect(page.locator("#analyse")).to_have_text(page_text["analyse"])
        upload(page, TELEGRAM)
        page.locator("#analyse").click()
        expect(page.locator("#verdict .verdict-headline")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        shoot(page, f"language_{lang}.png")
        shown = page.locator("#verdict .verdict-headline").inner_text()
    assert shown in {text.say(lang, key) for key in text.EN if key.startswith("headline_")}, shown


def test_accessibility_tree_keyboard_and_contrast(chromium: Any, gate_open: str) -> None:
    """The verdict is a live region with a heading, the figure has a real text alternative, the page works from
    the keyboard (Analyse, the full numbers, the report), and its text has AA contrast."""
    from playwright.sync_api import expect

    with opened(chromium, gate_open) as page:
        upload(page, TELEGRAM)
        page.locator("body").focus()
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement && document.activeElement.id") == "analyse":
                break
        else:
            pytest.fail("Tab never reached the Analyse button")
        page.keyboard.press("Enter")
        expect(page.locator("#verdict .verdict-for")).to_contain_text(TELEGRAM.name, timeout=RESULT_TIMEOUT_MS)
        page.locator("#result-figure img").wait_for(timeout=RESULT_TIMEOUT_MS)
        tree = page.locator("#verdict").aria_snapshot()
        title = headline(page)
        assert tree.startswith("- status:") and f'heading "{title}" [level=2]' in tree, tree
        assert page.locator("#verdict").get_attribute("aria-live") == "polite"
        name = page.locator("#result-figure img").get_attribute("alt")
        assert TELEGRAM.name in name and title in name and "scoring" in name, name
        assert f'img "{name}"' in page.locator("#result-figure").aria_snapshot()
        summary = page.locator("#verdict summary")
        summary.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#verdict details")).to_have_attribute("open", "")
        page.locator("#report-link").focus()
        assert page.evaluate("document.activeElement.id") == "report-link"
        for selector in ("#analyse", "#verdict .verdict-headline", "#verdict .verdict-next", "#verdict .verdict-for",
                         "#prevalence label", "#history .history-time", "#disclaimer p"):
            ratio = page.locator(selector).first.evaluate(CONTRAST_JS)
            assert ratio >= MIN_CONTRAST, f"{selector}: contrast {ratio:.2f}"
        shoot(page, "accessibility.png")


def test_phone_shows_the_result_in_view_with_a_readable_figure(chromium: Any, gate_open: str) -> None:
    from playwright.sync_api import expect

    with opened(chromium, gate_open, viewport=PHONE, is_mobile=True, has_touch=True) as page:
        upload(page, TELEGRAM)
        page.evaluate("window.scrollTo(0, 0)")  # the result lies below the fold from here
        analyse(page, TELEGRAM.name, None)
        expect(page.locator("#verdict .verdict-headline")).to_be_in_viewport()
        page.screenshot(path=str(SCREENSHOTS / "phone_result_in_view.png"))
        img = page.locator("#result-figure img")
        shown, natural = img.evaluate("(el) => [el.clientWidth, el.naturalWidth]")
        smallest_px = figure.SMALLEST_FONT_PT * figure.DPI / 72 * shown / natural
        assert smallest_px >= MIN_FIGURE_TEXT_PX, f"the figure's smallest text is {smallest_px:.1f} px at 390 px"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
        shoot(page, "phone.png")


def test_one_system_font_draws_the_analyse_button(chromium: Any, gate_open: str) -> None:
    """Every glyph of "Analyse" from one font (Gradio's bundled semibold IBM Plex had only "a" and "b"), and no
    web font fetched at all: the page uses the system's fonts."""
    with opened(chromium, gate_open) as page:
        client = page.context.new_cdp_session(page)
        client.send("DOM.enable")
        client.send("CSS.enable")
        root = client.send("DOM.getDocument")["root"]["nodeId"]
        node = client.send("DOM.querySelector", {"nodeId": root, "selector": "#analyse"})["nodeId"]
        used = client.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        family = page.locator("#analyse").evaluate("(el) => getComputedStyle(el).fontFamily")
        fonts = page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)"
                              ".filter((u) => /\\.(woff2?|ttf|otf)(\\?|$)/.test(u))")
    assert len(used) == 1, f"'Analyse' is drawn in {used}"
    assert family.startswith("system-ui") and fonts == [], (family, fonts)


def test_trained_model_scores_a_cough_and_not_speech(chromium: Any, trained: str) -> None:
    with opened(chromium, trained) as page:
        upload(page, SPEECH)
        speech = analyse(page, SPEECH.name, "trained_speech.png")
        upload(page, TELEGRAM)
        cough = analyse(page, TELEGRAM.name, "trained_cough.png")
    assert headline_of(speech) == HEADLINES["headline_speech"], speech
    assert headline_of(cough) in (HEADLINES["headline_positive"], HEADLINES["headline_negative"],
                                  HEADLINES["headline_retake"]), cough


def test_a_full_queue_is_a_message_in_the_page_not_a_trace(chromium: Any, tmp_path: Path) -> None:
    """Every worker busy and the queue full (a model that waits to be released): Analyse must say so plainly."""
    from gradio_client import Client, handle_file
    from gradio_client.utils import Status
    from playwright.sync_api import expect

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
        with opened(chromium, url) as page:
            upload(page, TELEGRAM)
            page.locator("#analyse").click()
            expect(page.get_by_text("This application is currently busy. Please try again.")).to_be_visible(
                timeout=RESULT_TIMEOUT_MS)
            shoot(page, "queue_full.png")
            body = page.locator("body").inner_text()
        assert "Traceback" not in body and "Exception" not in body
        release.set()
        assert all("error" not in job.result(timeout=RESULT_TIMEOUT_MS / 1000) for job in jobs)
    finally:
        release.set()
        demo.close()

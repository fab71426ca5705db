"""The desktop build: PyInstaller makes a lean one-folder app that starts headless, serves the UI and answers the API.

Builds once per run into a temporary folder (about two minutes), bundling the shipped model or, before training has
exported one, the small fixture model. Writes the folder size and start-up time to reports/build/desktop.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from build import exe, smoke
from tests import network_trace
from tests.test_app import shipped_or_fixture_model

REPO = Path(__file__).resolve().parents[1]
MAX_FOLDER_MB = 500  # measured 449 MB: PyAV's FFmpeg libraries (~100 MB) decode every format in-process
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
RESULT_TIMEOUT_MS = 120_000
REPORT = REPO / "reports" / "build" / "desktop.json"  # size and start-up time, kept by CI


def model_to_ship(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported model when training has produced one this runtime can run, else the fixture model (same format)."""
    return shipped_or_fixture_model(tmp_path_factory)


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exe")
    log = out / "pyinstaller.log"
    command = [sys.executable, "-m", "build.exe", "--model", str(model_to_ship(tmp_path_factory)),
               "--dist", str(out / "dist"), "--work", str(out / "work")]
    with log.open("w") as handle:
        done = subprocess.run(command, check=False, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, timeout=1800)
    if done.returncode != 0:
        pytest.fail(f"python -m build.exe failed ({done.returncode}):\n{smoke.log_tail(log, 80)}")
    return out / "dist" / exe.NAME


@pytest.fixture(scope="module")
def server(app_dir: Path) -> Iterator[smoke.Server]:
    """The built app started as a headless user would: only --no-browser, so host and port are its defaults."""
    with smoke.serve([str(exe.executable(app_dir)), "--no-browser"], app_dir.parent / "app.log") as running:
        measured = {"folder_mb": round(exe.folder_mb(app_dir), 1), "startup_s": round(running.startup_s, 2)}
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(measured, indent=2))
        print(f"\ndesktop build: {measured}")
        yield running


@pytest.mark.slow
def test_bundle_is_lean(app_dir: Path) -> None:
    assert exe.executable(app_dir).is_file()
    assert (app_dir / "_internal" / "assets" / "model" / "manifest.json").is_file()
    assert exe.forbidden_in(app_dir) == []
    assert not (app_dir / "_internal" / "torch").exists()
    assert not (app_dir / "_internal" / "transformers").exists()
    assert exe.folder_mb(app_dir) < MAX_FOLDER_MB


@pytest.mark.slow
def test_serves_on_localhost_and_predicts_a_bundled_example(app_dir: Path, server: smoke.Server) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    result = smoke.predict(server.url, app_dir / "_internal" / smoke.EXAMPLE)
    assert "error" not in result, result
    assert result["filename"] == smoke.EXAMPLE.name
    assert 0.0 <= result["cough_probability"] <= 1.0
    assert result["covid_probability"] is None if not result["is_cough"] else 0.0 <= result["covid_probability"] <= 1.0
    assert result["events"] and all(start < end for start, end, _ in result["events"])
    assert result["model"]


@pytest.mark.slow
@pytest.mark.skipif(network_trace.STRACE is None, reason="strace is not installed")
def test_smoke_run_sends_nothing(app_dir: Path, tmp_path: Path) -> None:
    """The smoke run (start, one API prediction, stop) under strace with an empty HOME: no DNS query, no connection
    off this machine, no OpenVINO client id. The bundle leaves openvino.tools out, but Gradio comes whole."""
    home, log = tmp_path / "home", tmp_path / "strace.log"
    home.mkdir()
    command = network_trace.command(log, [str(exe.executable(app_dir)), "--no-browser"])
    with smoke.serve(command, tmp_path / "app.log", env=network_trace.clean_environment(home)) as server:
        result = smoke.predict(server.url, app_dir / "_internal" / smoke.EXAMPLE)
    assert "covid_probability" in result, result
    network_trace.assert_offline(log, home)


@pytest.mark.slow
def test_page_shows_a_verdict_and_plot_in_chromium(app_dir: Path, server: smoke.Server) -> None:
    """The bundled front end and the matplotlib figure work frozen, not only the API."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.url)
            page.get_by_label("Upload file").click()
            page.locator("input[type=file]").first.set_input_files(str(app_dir / "_internal" / smoke.EXAMPLE))
            # Pressed before the upload lands, Analyse has nothing to score (a loaded machine showed it).
            sync_api.expect(page.locator("#verdict")).to_contain_text(Path(smoke.EXAMPLE).name,
                                                                      timeout=RESULT_TIMEOUT_MS)
            page.locator("#analyse").click()
            sync_api.expect(page.locator("#verdict")).to_contain_text("inference", timeout=RESULT_TIMEOUT_MS)
            page.locator("#result-figure img").wait_for(timeout=RESULT_TIMEOUT_MS)
        finally:
            browser.close()

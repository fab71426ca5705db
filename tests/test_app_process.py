"""`python app.py` as a process: its uploads are gone after every way it stops, what a killed run left is deleted at
the next start, and a burst of clients is answered correctly while hostile uploads are refused.

Each test gives the app a TMPDIR of its own, so its temp folder (serving.TEMP_PARENT there) is the test's to
inspect and no other app on this machine is touched. No assertion is timed; timeouts only stop a hung test.
"""
from __future__ import annotations

import math
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import coughkd
import serving
from build import smoke
from tests.test_app import REPO, TELEGRAM, shipped_or_fixture_model

pytestmark = pytest.mark.slow

STOP_TIMEOUT_S = 60
CLIENTS = 16


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shipped_or_fixture_model(tmp_path_factory)


def serve_app(model_dir: Path, tmp: Path, log: Path) -> smoke.Server:
    """`python app.py --no-browser --port 0` with TMPDIR=tmp, as a context manager that stops it if it still runs."""
    command = [sys.executable, str(REPO / "app.py"), "--no-browser", "--port", "0", "--model", str(model_dir)]
    return smoke.serve(command, log, cwd=REPO, env={**os.environ, "TMPDIR": str(tmp)})


def app_folders(tmp: Path) -> list[Path]:
    """The per-process folders under the app's temp parent (its lock files and the claim file are not folders)."""
    parent = tmp / serving.TEMP_PARENT.name
    return sorted(p for p in parent.iterdir() if p.is_dir()) if parent.exists() else []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_an_exit_signal_deletes_the_uploads(model_dir: Path, tmp_path: Path, name: str) -> None:
    with serve_app(model_dir, tmp_path, tmp_path / "app.log") as server:
        assert "covid_probability" in smoke.predict(server.url, TELEGRAM)
        [folder] = app_folders(tmp_path)
        assert list(folder.rglob(TELEGRAM.name)), "the upload sits in the app's own folder while it runs"
        os.kill(server.process.pid, getattr(signal, name))
        assert server.process.wait(timeout=STOP_TIMEOUT_S) == 0, smoke.log_tail(server.log)
    assert not folder.exists() and app_folders(tmp_path) == []
    assert [p.name for p in (tmp_path / serving.TEMP_PARENT.name).iterdir()] == [serving.CLAIM]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_next_start_deletes_what_a_killed_run_left(model_dir: Path, tmp_path: Path) -> None:
    with serve_app(model_dir, tmp_path, tmp_path / "killed.log") as server:
        smoke.predict(server.url, TELEGRAM)
        [left] = app_folders(tmp_path)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=STOP_TIMEOUT_S)
    assert list(left.rglob(TELEGRAM.name)), "kill -9 gives the app no chance to clean up"
    with serve_app(model_dir, tmp_path, tmp_path / "restarted.log"):
        assert not left.exists()
        assert len(app_folders(tmp_path)) == 1


def hostile_uploads(folder: Path) -> dict[Path, str]:
    """Uploads under Gradio's 50 MB limit that must be refused, each with the words of its refusal."""
    noise = folder / "noise.wav"
    noise.write_bytes(np.random.default_rng(0).bytes(40 * 2**20))
    silence = folder / "long_silence.wav"  # a valid WAV, 15 minutes of digital silence (29 MB)
    sf.write(silence, np.zeros(15 * 60 * 16000, np.int16), 16000, subtype="PCM_16")
    return {noise: "not a readable audio file", silence: "longer than 10 minutes"}


def same_answer(got: object, expected: object) -> bool:
    """Equal JSON, floats to a relative 1e-6 (the same model on the same file, in another process)."""
    if isinstance(expected, float) and isinstance(got, float):
        return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(same_answer(got[k], expected[k]) for k in expected)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(same_answer(g, e) for g, e in zip(got, expected))
    return got == expected


def test_a_burst_of_clients_is_answered_while_hostile_uploads_are_refused(model_dir: Path, tmp_path: Path) -> None:
    expected = coughkd.load(model_dir).predict(str(TELEGRAM)).to_json()
    del expected["latency_ms"]
    hostile = hostile_uploads(tmp_path)
    with serve_app(model_dir, tmp_path, tmp_path / "app.log") as server, \
            ThreadPoolExecutor(len(hostile) + CLIENTS) as pool:
        refusals = {path: pool.submit(smoke.predict, server.url, path) for path in hostile}
        answers = [pool.submit(smoke.predict, server.url, TELEGRAM) for _ in range(CLIENTS)]
        results = [answer.result() for answer in answers]
        refused = {path: job.result() for path, job in refusals.items()}
    for result in results:
        assert result.pop("filename") == TELEGRAM.name and result.pop("latency_ms") > 0, result
        assert same_answer(result, expected), (result, expected)
    for path, words in hostile.items():
        assert set(refused[path]) == {"error"} and words in refused[path]["error"], refused[path]

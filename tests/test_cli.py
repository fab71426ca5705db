"""`python -m coughkd predict`, run as a user would, in a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import coughkd
from coughkd.cli import _describe
from coughkd.predict import EventScore, Prediction
from tests.conftest import SHIPPED
from tests.model_fixture import make_model_dir

REPO = Path(__file__).resolve().parents[1]
KEYS = {"path", "covid_probability", "cough_probability", "is_cough", "sound_type", "sound_probabilities", "events",
        "latency_ms", "model"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coughkd", "predict", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(48000) * 1e-3
    x[8000:12000] += rng.standard_normal(4000) * 0.3
    x[30000:34000] += rng.standard_normal(4000) * 0.3
    sf.write(folder / "cough.wav", x, 16000)
    sf.write(folder / "cough.flac", x[:32000], 16000)
    (folder / "notes.wav").write_text("not audio")
    return {"good": folder / "cough.wav", "flac": folder / "cough.flac", "bad": folder / "notes.wav",
            "missing": folder / "missing.mp3"}


def test_json_lines_with_failures(model_dir: Path, recordings: dict[str, Path]) -> None:
    order = ["good", "bad", "flac", "missing"]
    result = cli("--json", "--model", str(model_dir), *(str(recordings[k]) for k in order))
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(recordings[k]) for k in order]
    good, bad, flac, missing = lines
    assert KEYS <= good.keys() and KEYS <= flac.keys()
    assert set(bad) == set(missing) == {"path", "error"}
    assert "not a readable audio file" in bad["error"] and "file not found" in missing["error"]
    assert len(good["events"]) == 2 and all(len(e) == 3 for e in good["events"])
    assert good["model"] == "fixture-seed0" and good["sound_type"] in coughkd.SOUND_TYPES
    assert (good["covid_probability"] is None) == (not good["is_cough"])


def test_all_good_exits_zero(model_dir: Path, recordings: dict[str, Path]) -> None:
    result = cli("--json", "--model", str(model_dir), "--variant", "fp32", str(recordings["good"]))
    assert result.returncode == 0
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["path"] == str(recordings["good"])


def test_human_readable(model_dir: Path, recordings: dict[str, Path]) -> None:
    result = cli("--model", str(model_dir), str(recordings["good"]), str(recordings["bad"]))
    assert result.returncode == 1
    assert f"{recordings['good']}: " in result.stdout and "2 events in 3.0 s" in result.stdout
    assert f"{recordings['bad']}: error: notes.wav: not a readable audio file" in result.stdout


@pytest.mark.parametrize("kind", ["cough", "speech", "other"])
def test_human_line_gives_a_verdict_only_for_coughs(kind: str) -> None:
    is_cough = kind == "cough"
    probabilities = {"cough": 0.9, "speech": 0.05, "breathing": 0.03, "other": 0.02} if is_cough else \
        {"cough": 0.1, "speech": 0.6, "breathing": 0.1, "other": 0.2} if kind == "speech" else \
        {"cough": 0.1, "speech": 0.1, "breathing": 0.1, "other": 0.7}
    p = Prediction(covid_probability=0.8 if is_cough else None, covid_positive=True if is_cough else None,
                   cough_probability=probabilities["cough"], is_cough=is_cough, sound_type=kind,
                   sound_probabilities=probabilities, threshold=0.6,
                   events=[EventScore(0.5, 0.8, kind, probabilities["cough"], 0.8 if is_cough else None)],
                   latency_ms=3.0, model="m", duration_s=2.0)
    text = _describe("x.wav", p)
    line = text.splitlines()[0]
    if is_cough:
        assert line.startswith("x.wav: COVID-19 POSITIVE (probability 0.80, threshold 0.60); cough (probability 0.90)")
        assert "covid 0.80" in text
    else:
        heard = "sounds like speech, not a cough (speech 0.60" if kind == "speech" else \
            "does not sound like a cough (other 0.70"
        assert line.startswith(f"x.wav: {heard}, cough 0.10); no COVID-19 verdict")
        assert "POSITIVE" not in text and "covid" not in text
    assert "1 event in 2.0 s" in line


def test_a_reader_that_leaves_early_gets_no_traceback(model_dir: Path, recordings: dict[str, Path]) -> None:
    files = [str(recordings["good"])] * 20
    with subprocess.Popen([sys.executable, "-m", "coughkd", "predict", "--model", str(model_dir), *files], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout.readline().startswith(str(recordings["good"]))
        process.stdout.close()  # what `| head -1` does
        stderr = process.stderr.read()
        assert process.wait(timeout=120) == 1
    assert "Traceback" not in stderr


def test_unusable_model(tmp_path: Path, recordings: dict[str, Path]) -> None:
    result = cli("--model", str(tmp_path), str(recordings["good"]))
    assert result.returncode == 1 and result.stdout == ""
    assert "manifest.json is missing" in result.stderr


def test_usage_errors() -> None:
    assert cli().returncode == 2
    assert cli("--variant", "fp16", "x.wav").returncode == 2


@SHIPPED
def test_shipped_model(cough_data: Path) -> None:
    files = [str(cough_data / "raw" / "002f642a-8406-49c0-bf19-310ad1c342de.mp3"),
             str(cough_data / "raw" / "098d66e5-bda6-4e99-b787-ab890046c44b.mp3")]
    result = cli("--json", *files)
    assert result.returncode == 1
    scored, failed = (json.loads(line) for line in result.stdout.splitlines())
    assert KEYS <= scored.keys() and scored["events"] and set(failed) == {"path", "error"}

"""The quality checks behind "please record again": each metric behaves as its docstring says on audio made to
measure, the example cough made 20 times too loud fails as clipped, and the thresholds still pass nearly all of the
data set they were chosen on (docs/quality_thresholds.md)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soxr

from coughkd import Audio, EventScore, Prediction
from coughkd.audio import AudioError, load_audio
from coughkd_app import quality
from tests.audio_formats import encode

REPO = Path(__file__).resolve().parents[1]
TELEGRAM = REPO / "assets" / "examples" / "cough_telegram_1.mp3"


def bursts(seconds: float = 3.0, rate: int = 16000, floor: float = 0.002, seed: int = 0) -> np.ndarray:
    """Three decaying noise bursts over a quiet floor: loud, short, noise-like events, as coughs are."""
    rng = np.random.default_rng(seed)
    x = floor * rng.standard_normal(int(seconds * rate))
    for start in (0.3, 1.2, 2.1):
        i, n = int(start * rate), int(0.3 * rate)
        x[i:i + n] += rng.standard_normal(n) * np.exp(-np.linspace(0, 5, n))
    return (x / np.abs(x).max()).astype(np.float32)


def prediction(events: list[tuple[float, float, str]], seconds: float = 3.0) -> Prediction:
    scored = [EventScore(a, b, kind, 0.9 if kind == "cough" else 0.1, 0.4 if kind == "cough" else None)
              for a, b, kind in events]
    return Prediction(0.4, False, 0.9, True, "cough", {"cough": 0.9}, 0.5, scored, 1.0, "test", seconds)


def audio(waveform: np.ndarray, rate: int = 48000, warnings: tuple[str, ...] = ()) -> Audio:
    return Audio(waveform, 16000, rate, len(waveform) / 16000, list(warnings))


COUGHS = [(0.3, 0.6, "cough"), (1.2, 1.5, "cough"), (2.1, 2.4, "cough")]
CLIPPED = "the recording is clipped (too loud for the microphone); results may be less reliable"


def test_crest_is_about_three_for_noise_bursts_and_near_one_once_clipped() -> None:
    clean = bursts()
    assert 2.5 < quality.loud_crest(clean) < 4.0
    assert quality.loud_crest(np.clip(clean * 30, -1, 1)) < 1.3


def test_snr_falls_as_noise_is_added() -> None:
    clean = bursts()
    noisy = clean + 0.3 * np.random.default_rng(1).standard_normal(len(clean)).astype(np.float32)
    assert quality.snr_db(clean, 16000) > 30 and quality.snr_db(noisy, 16000) < quality.MIN_SNR_DB["app"]


def test_channel_follows_the_original_sample_rate() -> None:
    assert [quality.channel(r) for r in (8000, 7999, 11025, 16000, 48000)] == [
        "telephone", "telephone", "app", "app", "app"]


def test_a_good_recording_passes() -> None:
    checked = quality.check(audio(bursts()), prediction(COUGHS))
    assert checked.ok and checked.problems == [] and checked.coughs == 3
    assert checked.cough_seconds == pytest.approx(0.9)


def test_clipping_needs_both_the_decoders_warning_and_flattened_loud_frames() -> None:
    flattened = np.clip(bursts() * 30, -1, 1)
    assert quality.check(audio(flattened, warnings=(CLIPPED,)), prediction(COUGHS)).problems == ["clipped"]
    assert quality.check(audio(flattened), prediction(COUGHS)).ok, "no full-scale samples seen: not clipped"
    assert quality.check(audio(bursts(), warnings=(CLIPPED,)), prediction(COUGHS)).ok, \
        "a few samples at full scale (1% of the data set's app recordings) are not heavy clipping"


def test_noise_threshold_depends_on_the_channel() -> None:
    clean = bursts()
    rng = np.random.default_rng(2)
    for level in np.linspace(0.01, 0.5, 40):  # the first noise level where the two channels disagree
        noisy = clean + level * rng.standard_normal(len(clean)).astype(np.float32)
        snr = quality.snr_db(noisy, 16000)
        if quality.MIN_SNR_DB["telephone"] <= snr < quality.MIN_SNR_DB["app"]:
            break
    else:
        pytest.fail("no noise level between the two thresholds")
    assert quality.check(audio(noisy, rate=48000), prediction(COUGHS)).problems == ["noisy"]
    assert quality.check(audio(noisy, rate=8000), prediction(COUGHS)).ok


def test_no_cough_and_too_little_cough() -> None:
    assert quality.check(audio(bursts()), prediction([(0.3, 0.6, "speech")])).problems == ["no_cough"]
    assert quality.check(audio(bursts()), prediction([(0.3, 0.4, "cough")])).problems == ["short"]
    assert quality.check(audio(bursts()), prediction([(0.3, 0.4, "cough"), (1.2, 1.36, "cough")])).ok


def test_problems_come_in_the_order_a_person_should_fix_them() -> None:
    flattened = np.clip(bursts() * 30, -1, 1)
    noisy = flattened + 0.8 * np.random.default_rng(3).standard_normal(len(flattened)).astype(np.float32)
    checked = quality.check(audio(noisy / np.abs(noisy).max(), warnings=(CLIPPED,)), prediction([]))
    assert checked.problems == [p for p in quality.PROBLEMS if p in checked.problems] and "no_cough" in checked.problems


def test_the_example_cough_twenty_times_too_loud_is_clipped(tmp_path: Path) -> None:
    """The issue's case: a cough amplified x20 (as a phone browser records it, WebM/Opus) scored as a result."""
    clean = load_audio(TELEGRAM)
    loud = np.clip(soxr.resample(clean.waveform, 16000, 48000) * 20, -1, 1)
    decoded = load_audio(encode(loud, 48000, "webm", tmp_path))
    events = [(0.2, 0.9, "cough"), (1.2, 1.8, "cough")]
    assert quality.check(decoded, prediction(events)).problems == ["clipped"]
    assert quality.check(clean, prediction(events)).ok


@pytest.mark.slow
def test_thresholds_pass_nearly_all_of_the_data_set(cough_data: Path) -> None:
    """On every 10th recording: the share the checks that need no model (clipping, noise) send back stays near
    what docs/quality_thresholds.md measured on all of them (0% and 0.4% / 1.3%)."""
    records = json.loads((cough_data / "metadata.json").read_text())[::10]
    failed, checked = 0, 0
    for record in records:
        try:
            decoded = load_audio(cough_data / "raw" / record["filename"])
        except AudioError:
            continue
        checked += 1
        result = quality.check(decoded, prediction([(0.0, decoded.duration_s, "cough")], decoded.duration_s))
        failed += bool(set(result.problems) & {"clipped", "noisy"})
    assert checked > 100 and failed / checked < 0.03

"""The full pipeline on the fixture model (and on the shipped model when it exists)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import coughkd
from coughkd import AudioError, CoughModel, EventScore, ModelError, Prediction
from coughkd.audio import load_audio
from coughkd.features import HOP_LENGTH, N_MELS, WINDOW_FRAMES, chunks
from coughkd.model import F32, MODEL_DIR
from coughkd.predict import aggregate, score, sigmoid, softmax, sound_type
from tests.conftest import SHIPPED, SHIPPED_PROBLEM
from tests.model_fixture import make_model_dir, reference
from training.lib.clips import centred_slices, clip_features

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model"), cough_threshold=0.0)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> CoughModel:
    """The fixture network with its gate open (cough threshold 0): every recording reaches the COVID-19 score."""
    return coughkd.load(model_dir, config=F32)


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> CoughModel:
    """The same network with a gate no recording passes (cough threshold above 1)."""
    return coughkd.load(make_model_dir(tmp_path_factory.mktemp("closed"), cough_threshold=1.01), config=F32)


def coughs(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Noise bursts every 1.5 s over a quiet floor: cough-like enough for the energy detector."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * rate)) * 1e-3
    for start in np.arange(0.2, seconds - 0.3, 1.5):
        a, b = int(start * rate), int((start + 0.25) * rate)
        x[a:b] += rng.standard_normal(b - a) * 0.3 * np.hanning(b - a)
    return x.astype(np.float32)


def without_latency(p: Prediction) -> dict:
    return {k: v for k, v in p.to_json().items() if k != "latency_ms"}


@pytest.mark.parametrize("seconds", [0.5, 30.0])
def test_short_and_long_inputs(model: CoughModel, seconds: float) -> None:
    p = model.predict(coughs(seconds), sample_rate=16000)
    assert p.duration_s == pytest.approx(seconds)
    bursts = len(np.arange(0.2, seconds - 0.3, 1.5))
    assert len(p.events) == max(bursts, 1)
    assert 0.0 < p.covid_probability < 1.0 and 0.0 < p.cough_probability < 1.0
    assert p.latency_ms > 0 and p.model == "fixture-seed0"


def test_prediction_is_consistent(model: CoughModel) -> None:
    p = model.predict(coughs(6.0), sample_rate=16000)
    assert all(isinstance(e, EventScore) for e in p.events)
    assert p.is_cough and p.sound_type == "cough" and all(e.sound_type == "cough" for e in p.events)
    assert p.covid_positive == (p.covid_probability >= p.threshold) and p.threshold == 0.5
    waveform = load_audio(coughs(6.0), sample_rate=16000).waveform
    expected = reference()(waveform[None])
    assert p.covid_probability == pytest.approx(float(sigmoid(expected["covid_logit"][0])), abs=1e-5)
    assert list(p.sound_probabilities) == list(coughkd.SOUND_TYPES)
    np.testing.assert_allclose(list(p.sound_probabilities.values()), softmax(expected["sound_logits"][0]), atol=1e-5)
    assert p.cough_probability == pytest.approx(p.sound_probabilities["cough"])
    # Each event reads the window position centred nearest it, from the same call's outputs.
    features = clip_features(waveform)
    assert [(e.start_s, e.end_s) for e in p.events] == [(e.start_s, e.end_s) for e in features.events]
    width, hop = model.runtime.window
    positions = np.clip(np.round((features.centres - width / 2) / hop).astype(int), 0, (len(waveform) - width) // hop)
    np.testing.assert_allclose([e.covid_probability for e in p.events],
                               sigmoid(expected["window_covid_logits"][0, positions]), atol=1e-5)
    np.testing.assert_allclose([e.cough_probability for e in p.events],
                               softmax(expected["window_sound_logits"][0, :, positions])[:, 0], atol=1e-5)


def test_event_windows_cover_their_events(model: CoughModel) -> None:
    """The window an event is scored on holds the event's centre, and stays inside the clip."""
    waveform = load_audio(coughs(6.0), sample_rate=16000).waveform
    width, hop = model.runtime.window
    scores = score(reference(), waveform, (width, hop), 0.0)
    outputs = reference()(waveform[None])
    for event, covid in zip(scores.events, scores.event_covid):
        (p,) = np.flatnonzero(np.isclose(outputs["window_covid_logits"][0], covid, atol=1e-6))[:1]
        assert p * hop <= (event.start_s + event.end_s) / 2 * 16000 <= p * hop + width
        assert p * hop + width <= len(waveform)


def test_clip_shorter_than_a_window_is_its_own_window(model: CoughModel) -> None:
    waveform = load_audio(coughs(0.5), sample_rate=16000).waveform
    scores = score(reference(), waveform, model.runtime.window, 0.0)
    assert len(scores.events) == 1 and scores.event_covid[0] == pytest.approx(scores.covid_logit, abs=1e-6)


def test_closed_gate_gives_no_covid_score(closed: CoughModel) -> None:
    """Audio that is not a cough gets no COVID-19 number anywhere: the contract cannot say "positive" for noise."""
    p = closed.predict(coughs(6.0), sample_rate=16000)
    assert not p.is_cough and p.sound_type in ("speech", "breathing", "other")
    assert p.covid_probability is None and p.covid_positive is None
    assert all(e.covid_probability is None and e.sound_type != "cough" for e in p.events)
    data = json.loads(json.dumps(p.to_json()))
    assert data["covid_positive"] is None and data["covid_probability"] is None
    assert data["sound_type"] == max(("speech", "breathing", "other"), key=data["sound_probabilities"].get)


def test_sound_type_rule() -> None:
    assert sound_type(np.array([0.3, 0.5, 0.1, 0.1]), cough_threshold=0.25) == "cough"
    assert sound_type(np.array([0.3, 0.5, 0.1, 0.1]), cough_threshold=0.35) == "speech"
    assert sound_type(np.array([0.3, 0.1, 0.2, 0.4]), cough_threshold=0.35) == "other"


def test_event_windows_are_slices_of_the_clip_log_mel() -> None:
    features = clip_features(coughs(6.0))
    assert features.windows.shape == (len(features.events), N_MELS, WINDOW_FRAMES)
    for window, centre in zip(features.windows, features.centres // HOP_LENGTH):
        start = min(max(centre - WINDOW_FRAMES // 2, 0), features.log_mel.shape[-1] - WINDOW_FRAMES)
        np.testing.assert_array_equal(window, features.log_mel[:, start:start + WINDOW_FRAMES])
    short = clip_features(coughs(0.5))
    assert short.windows.shape == (1, N_MELS, short.log_mel.shape[-1])  # a clip under 1 s is its own window


def test_centred_slices_stay_inside() -> None:
    x = np.arange(10)
    assert centred_slices(x, np.array([0, 5, 9]), 4).tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert centred_slices(x, np.array([5]), 20).tolist() == [list(range(10))]
    assert centred_slices(x, np.array([], dtype=int), 4).shape == (0, 4)


def test_chunks_cover_the_clip_without_a_short_tail() -> None:
    sizes = [c.shape[-1] for c in chunks(np.zeros((2, 7001)), rate=100)]
    assert sizes == [3000, 4001]  # 30 s pieces at 100 frames/s; the 10 ms tail joins the last piece
    assert [c.shape[-1] for c in chunks(np.zeros((2, 8000)), rate=100)] == [3000, 3000, 2000]
    assert [c.shape[-1] for c in chunks(np.zeros((2, 120)), rate=100)] == [120]
    assert [c.shape[-1] for c in chunks(np.zeros(70 * 16000))] == [480000, 640000]  # samples by default


def test_long_recording_is_scored_in_chunks(model: CoughModel) -> None:
    x = coughs(70.0)
    pieces = chunks(load_audio(x, sample_rate=16000).waveform)
    assert len(pieces) == 2
    expected = np.mean([reference()(piece[None])["covid_logit"][0] for piece in pieces])
    p = model.predict(x, sample_rate=16000)
    assert p.covid_probability == pytest.approx(float(sigmoid(expected)), abs=1e-5)
    assert len(p.events) == len(np.arange(0.2, 70.0 - 0.3, 1.5))  # the pieces' energies line up end to end
    # Each event reads the window centred nearest it in its own piece's outputs.
    width, hop = model.runtime.window
    centres = clip_features(np.concatenate(pieces)).centres
    piece = np.minimum(centres // len(pieces[0]), len(pieces) - 1)
    assert set(piece.tolist()) == {0, 1}
    expected_covid = []
    for centre, i in zip(centres, piece):
        start = i * len(pieces[0])
        position = min(max(round((centre - start - width / 2) / hop), 0), (len(pieces[i]) - width) // hop)
        expected_covid.append(reference()(pieces[i][None])["window_covid_logits"][0, position])
    np.testing.assert_allclose([e.covid_probability for e in p.events], sigmoid(np.array(expected_covid)), atol=1e-5)


def test_to_json(model: CoughModel) -> None:
    p = model.predict(coughs(4.0), sample_rate=16000)
    data = json.loads(json.dumps(p.to_json()))
    assert {"covid_probability", "cough_probability", "is_cough", "sound_type", "sound_probabilities", "events",
            "latency_ms", "model"} <= data.keys()
    assert data["events"] == [[e.start_s, e.end_s, e.covid_probability] for e in p.events]
    assert data["warnings"] == [] and data["duration_s"] == pytest.approx(4.0)


def test_deterministic(model: CoughModel) -> None:
    x = coughs(5.0, seed=3)
    first, second = model.predict(x, sample_rate=16000), model.predict(x.copy(), sample_rate=16000)
    assert without_latency(first) == without_latency(second)


def test_sample_rate_for_raw_arrays(model: CoughModel) -> None:
    at_48k = model.predict(coughs(3.0, rate=48000), sample_rate=48000)
    assert at_48k.duration_s == pytest.approx(3.0)
    assert [round(e.start_s, 1) for e in at_48k.events] == [0.2, 1.7]
    at_16k = model.predict(coughs(3.0, rate=16000), sample_rate=16000)
    assert at_48k.covid_probability == pytest.approx(at_16k.covid_probability, abs=0.05)


def test_microphone_tuple_and_audio_object(model: CoughModel) -> None:
    x = coughs(3.0, rate=48000)
    stereo = (np.stack([x, x], axis=1) * 32767).astype(np.int16)
    from_tuple = model.predict((48000, stereo))
    assert from_tuple.duration_s == pytest.approx(3.0)
    audio = load_audio((48000, stereo))
    assert without_latency(model.predict(audio)) == without_latency(from_tuple)


def test_warnings_are_passed_on(model: CoughModel) -> None:
    p = model.predict(coughs(3.0, rate=8000), sample_rate=8000)
    assert any("narrow-band" in w for w in p.warnings)


def test_bad_audio_raises(model: CoughModel) -> None:
    with pytest.raises(AudioError, match="silent"):
        model.predict(np.zeros(16000, np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="needs its sample rate"):
        model.predict(coughs(3.0, rate=48000))


def test_dataset_recording(model: CoughModel, cough_data: Path) -> None:
    p = model.predict(cough_data / "raw" / "002f642a-8406-49c0-bf19-310ad1c342de.mp3")
    assert len(p.events) >= 1 and p.duration_s == pytest.approx(4.3, abs=0.05)


def test_aggregate() -> None:
    assert aggregate(np.array([1.0, -3.0, 5.0])) == pytest.approx(1.0)
    assert isinstance(aggregate([0.5]), float)
    with pytest.raises(ValueError, match="zero logits"):
        aggregate(np.array([]))


def test_default_model() -> None:
    if SHIPPED_PROBLEM is None:
        assert 0.0 <= coughkd.predict(coughs(3.0), sample_rate=16000).cough_probability <= 1.0
    else:
        with pytest.raises(ModelError, match="missing|older runtime"):
            coughkd.predict(coughs(3.0), sample_rate=16000)


def test_runtime_never_imports_training_stack(model_dir: Path) -> None:
    code = (
        "import sys, numpy as np, coughkd\n"
        f"m = coughkd.load({str(model_dir)!r})\n"
        "x = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1\n"
        "m.predict(x, sample_rate=16000)\n"
        "heavy = sorted({n.split('.')[0] for n in sys.modules} & {'torch', 'transformers', 'accelerate', 'nncf'})\n"
        "print(','.join(heavy) or 'clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "clean"


@SHIPPED
def test_shipped_cough_head_tells_the_bundled_examples_apart() -> None:
    """The cough head of the shipped model, on the app's own examples: coughs pass, synthesised speech does not."""
    examples = MODEL_DIR.parent / "examples"
    model = coughkd.load()
    for clip in sorted(examples.glob("cough_*.mp3")):
        assert model.predict(clip).is_cough, clip.name
    speech = model.predict(examples / "speech_not_cough.mp3")
    assert not speech.is_cough, speech.cough_probability

"""EfficientAT mn04: exact weight layout, the 32 kHz front end, and real-sound sanity checks of both together."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from training.models import efficientat
from training.models.efficientat import (
    CLASS_LABELS,
    MN04,
    SAMPLE_RATE,
    EfficientATMel,
    class_names,
    kaldi_mel_filterbank,
    load_mn04,
)

SPEECH, COUGH = 0, 47


def load_32k(path: Path) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(audio.mean(axis=1), sr, SAMPLE_RATE).astype(np.float32)


@pytest.fixture(scope="module")
def mn04(shared_models: Path) -> MN04:
    return load_mn04()


def tag(model: MN04, waveform_32k: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        logits, embedding = model(EfficientATMel()(torch.from_numpy(waveform_32k)[None]))
    assert embedding.shape == (1, 384)
    return logits[0]


def test_state_dict_matches_published_listing_and_loads_strictly(shared_models: Path):
    listing = {}
    for line in (shared_models / "efficientat_mn04_state_dict.txt").read_text().splitlines():
        name, _, shape = line.partition(" (")
        if shape:
            listing[name] = tuple(int(d) for d in shape.rstrip(")").split(",") if d.strip())
    ours = {k: tuple(v.shape) for k, v in MN04().state_dict().items()}
    assert len(ours) == 312
    assert ours == listing
    model = MN04()
    state = torch.load(shared_models / "efficientat_mn04_as_mAP_432.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    assert torch.equal(load_mn04().classifier[5].weight, state["classifier.5.weight"])


def test_damaged_weights_are_refused(shared_models: Path, tmp_path: Path, monkeypatch):
    damaged = tmp_path / "mn04.pt"
    data = bytearray((shared_models / "efficientat_mn04_as_mAP_432.pt").read_bytes())
    data[-100] ^= 0xFF
    damaged.write_bytes(data)
    monkeypatch.setattr(efficientat, "SHARED_WEIGHTS", damaged)
    with pytest.raises(RuntimeError, match="SHA-256"):
        load_mn04()


def test_failed_download_gives_a_clear_error(tmp_path: Path, monkeypatch):
    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(efficientat, "SHARED_WEIGHTS", tmp_path / "absent.pt")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match="could not download.*mn04_as_mAP_432.pt"):
        load_mn04()


def test_mel_front_end_shape_and_filterbank():
    mel = EfficientATMel()(torch.randn(2, SAMPLE_RATE))
    assert mel.shape == (2, 1, 128, 1 + (SAMPLE_RATE - 1) // 320)
    fb = kaldi_mel_filterbank()
    assert fb.shape == (128, 513)
    assert torch.all(fb[:, -1] == 0)  # Nyquist bin weighted 0
    peaks = fb.argmax(dim=1)
    assert torch.all(peaks[1:] >= peaks[:-1])
    assert fb[:, 481:].sum() == 0  # nothing above fmax = 15 kHz (bin 480)
    assert fb.max() <= 1.0


def test_a_pure_tone_lights_up_its_mel_band():
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    mel = EfficientATMel()(torch.sin(2 * torch.pi * 1000.0 * t)[None])[0, 0]
    band = int(mel[:, 10:-10].mean(dim=1).argmax())
    fb = kaldi_mel_filterbank()
    assert abs(int(fb[band].argmax()) - round(1000 / (SAMPLE_RATE / 1024))) <= 1


def test_class_names_in_output_order():
    names = class_names(CLASS_LABELS)
    assert len(names) == 527
    assert (names[0], names[41], names[47], names[48], names[49]) == (
        "Speech", "Breathing", "Cough", "Throat clearing", "Sneeze")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_synthesised_speech_is_tagged_speech(mn04: MN04, tmp_path: Path):
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "The quick brown fox jumps over the lazy dog. "
                    "Please call me back tomorrow morning."], check=True)
    probs = torch.sigmoid(tag(mn04, load_32k(wav)))
    assert int(probs.argmax()) == SPEECH
    assert probs[SPEECH] > 0.3
    assert probs[COUGH] < 0.05


@pytest.mark.slow
def test_real_coughs_rank_cough_high(mn04: MN04, cough_data: Path):
    """First five decodable recordings of each source (sorted by name): measured Cough ranks 3,4,1,1,1 / 1,2,1,1,1."""
    meta = sorted(json.loads((cough_data / "metadata.json").read_text()), key=lambda r: r["filename"])
    ranks = {"call-center": [], "telegram": []}
    for row in meta:
        if len(ranks[row["source"]]) == 5:
            continue
        try:
            audio = load_32k(cough_data / "raw" / row["filename"])
        except sf.LibsndfileError:
            continue
        order = tag(mn04, audio).argsort(descending=True)
        ranks[row["source"]].append(int((order == COUGH).nonzero()) + 1)
    all_ranks = np.array(ranks["call-center"] + ranks["telegram"])
    assert len(all_ranks) == 10
    assert (all_ranks <= 3).sum() >= 7
    assert (all_ranks == 1).sum() >= 5
    assert sum(r <= 3 for r in ranks["telegram"]) >= 4  # wide-band audio is the easy case

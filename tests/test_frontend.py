"""The graph's front end (training.models.frontend) against the numpy front end it replaces (soxr's 8 kHz round trip,
then coughkd.features.log_mel) on real recordings, and against itself exported to OpenVINO. The differences are
printed (run with -s) and bounded where they are expected to be small."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from coughkd.audio import load_audio
from coughkd.events import frame_energy_db
from coughkd.features import HOP_LENGTH, N_MELS, log_mel, telephone_band
from training.models.frontend import FrontEnd, low_pass_taps

FRONT_END = FrontEnd().eval()


def graph(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        log_mels, energy = FRONT_END(torch.from_numpy(x[None]))
    return log_mels[0].numpy(), energy[0].numpy()


@pytest.mark.parametrize("n", [4800, 16001, 16159, 80000])
def test_shapes_for_any_length(n: int) -> None:
    log_mels, energy = graph(np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1)
    assert log_mels.shape == (N_MELS, 1 + n // HOP_LENGTH) and energy.shape == (n // 160,)  # energy: every 10 ms


def test_low_pass_keeps_the_band_and_stops_above_4khz() -> None:
    response = np.abs(np.fft.rfft(low_pass_taps(), 16000))
    assert np.abs(20 * np.log10(response[:3500])).max() < 0.1  # flat to 3.5 kHz
    assert 20 * np.log10(response[4000:].max()) < -50.0


def test_matches_the_numpy_front_end_on_real_recordings(cough_data: Path) -> None:
    """Inside the clip and below the top two bands (3.85-4 kHz, where soxr's edge is steeper than the FIR's) the
    log-mels agree to a fraction of a dB; the frame energies the events are found on agree closely everywhere."""
    paths = sorted((cough_data / "raw").glob("*.mp3"))[::40][:12]
    inner, top, edges, energy = [], [], [], []
    for path in paths:
        waveform = load_audio(path).waveform
        band = telephone_band(waveform)
        reference, ours = log_mel(band), graph(waveform)
        diff = np.abs(ours[0] - reference)
        inner.append(diff[:-2, 3:-3].max())
        top.append(diff[-2:, 3:-3].max())
        edges.append(np.concatenate([diff[:, :3], diff[:, -3:]], axis=1).max())
        numpy_energy = frame_energy_db(band)
        n = len(numpy_energy) - 2  # the graph's last two frames run past the end, zero padded
        energy.append(np.abs(ours[1][:n] - numpy_energy[:n]).max())
    print(f"\ngraph vs numpy front end, max abs diff over {len(paths)} recordings: log-mel (ln) inner frames, bands "
          f"0-61 {max(inner):.3f}; top two bands {max(top):.3f}; first/last 3 frames {max(edges):.3f}; frame energy "
          f"{max(energy):.3f} dB")
    assert max(inner) < 0.5 and np.median(inner) < 0.15
    assert max(energy) < 3.0 and np.median(energy) < 0.5


def test_openvino_computes_what_torch_does(tmp_path: Path) -> None:
    with torch.no_grad():
        model = ov.convert_model(FRONT_END, example_input=torch.zeros(1, 16000),
                                 input=[(ov.PartialShape([-1, -1]), ov.Type.f32)])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rng = np.random.default_rng(0)
    for n in (4800, 16159, 480000):
        x = (rng.standard_normal((2, n)) * np.geomspace(1e-3, 1.0, 2)[:, None]).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in FRONT_END(torch.from_numpy(x))]
        got = compiled(x)
        assert np.abs(got[0] - expected[0]).max() < 1e-3 and np.abs(got[1] - expected[1]).max() < 1e-3

"""The numpy front end must equal librosa's reference mel spectrogram, so training and runtime features agree."""
from __future__ import annotations

import numpy as np
import pytest

from coughkd import features
from coughkd.features import HOP_LENGTH, N_MELS, front_end_spec, log_mel, n_frames


def librosa_log_mel(x: np.ndarray) -> np.ndarray:
    librosa = pytest.importorskip("librosa")
    mel = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=512, win_length=400, hop_length=HOP_LENGTH, window="hann", center=True, pad_mode="reflect",
        power=2.0, n_mels=N_MELS, fmin=0.0, fmax=4000.0, htk=False, norm="slaney")
    return np.log(mel + 1e-6)


@pytest.mark.parametrize("n", [4800, 16000, 16001, 16159, 80000])
def test_matches_librosa(n: int) -> None:
    x = (np.random.default_rng(n).standard_normal(n) * 0.1).astype(np.float32)
    x[n // 3: n // 2] *= 8.0
    ours = log_mel(x)
    np.testing.assert_allclose(ours, librosa_log_mel(x), atol=1e-4, rtol=0)


def test_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=16000, n_fft=512, n_mels=N_MELS, fmin=0.0, fmax=4000.0, htk=False, norm="slaney")
    np.testing.assert_allclose(features._mel_filterbank(), reference, atol=1e-6)
    assert (features._mel_filterbank().sum(axis=1) > 0).all()


def test_shape_dtype_and_frames() -> None:
    for n in (1000, 16000, 16160, 16319):
        out = log_mel(np.ones(n, dtype=np.float32))
        assert out.shape == (N_MELS, 1 + n // HOP_LENGTH) == (N_MELS, n_frames(n))
        assert out.dtype == np.float32 and out.flags.c_contiguous


def test_batch_equals_rows() -> None:
    batch = np.random.default_rng(1).standard_normal((3, 2, 16000)).astype(np.float32)
    out = log_mel(batch)
    assert out.shape == (3, 2, N_MELS, 1 + 16000 // HOP_LENGTH)
    np.testing.assert_allclose(out[2, 1], log_mel(batch[2, 1]), atol=1e-6)


def test_band_limit_hides_energy_above_4khz() -> None:
    t = np.arange(16000) / 16000
    low = log_mel(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    high = log_mel(np.sin(2 * np.pi * 6000 * t).astype(np.float32))
    # The first and last frames see the reflect-padding seam, which is broadband; judge the frames inside.
    assert low[:, 2:-2].max() > 0.0
    assert high[:, 2:-2].max() < np.log(1e-6) + 1e-2


def test_float64_input_and_silence() -> None:
    out = log_mel(np.zeros(16000))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.log(np.float32(1e-6)))


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        log_mel(np.zeros(0, dtype=np.float32))


def test_front_end_spec() -> None:
    spec = front_end_spec()
    assert spec["n_fft"] == 512 and spec["win_length"] == 400 and spec["hop_length"] == 320
    assert spec["n_mels"] == 48 and spec["fmin"] == 0.0 and spec["fmax"] == 4000.0 and spec["sample_rate"] == 16000
    assert front_end_spec() == spec and front_end_spec() is not spec

"""The front end's definition: its constants, the spec the manifest records, and a numpy log-mel for drawing.

The features themselves are computed inside the OpenVINO graph, by the torch module training.models.frontend that
training also computes its features with, so the runtime never computes a feature the network reads. Everything is
seen through the telephone band: audio is low-passed below 4 kHz (and decimated to 8 kHz) before the log-mel and the
frame energy the events are found on, so a model cannot tell call-centre audio (8 kHz) from Telegram audio (48 kHz)
by bandwidth alone (dataset trap 1). This module stays numpy-only (and soxr): `log_mel` draws the app's
spectrogram and is the reference the graph's front end is tested against, `telephone_band` is the band the app's
quality checks measure their signal-to-noise ratio in.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import soxr
from numpy.lib.stride_tricks import sliding_window_view

from .audio import SAMPLE_RATE
from .events import FRAME_SECONDS, HOP_SECONDS, WINDOW_SECONDS

N_FFT = 512
WIN_LENGTH = 400
# 20 ms frames and 48 mels: half the frames and three quarters of the bands of 10 ms and 64, so the one graph runs
# about 1.7x faster (docs/experiments.md); 48 slaney mels below 4 kHz are still 1.6 DFT bins apart at the bottom.
HOP_LENGTH = 320
N_MELS = 48
FMIN = 0.0
FMAX = 4000.0
LOG_OFFSET = 1e-6
TELEPHONE_RATE = 8000
DECIMATION = SAMPLE_RATE // TELEPHONE_RATE  # the graph's features are computed at 8 kHz, after the low-pass
# The graph's band limit: a Kaiser-windowed sinc low-pass at 16 kHz (about -6 dB at the cut-off, > 50 dB down from
# 4 kHz), where soxr's 8 kHz round trip, the band limit before it, is -6 dB at 3.8 kHz too.
BAND_LIMIT_TAPS = 161
BAND_LIMIT_CUTOFF_HZ = 3800.0
BAND_LIMIT_BETA = 5.0
MAX_CLIP_SECONDS = 30.0  # longer recordings are scored in pieces of about this length
WINDOW_FRAMES = 1 + int(WINDOW_SECONDS * SAMPLE_RATE) // HOP_LENGTH


def front_end_spec() -> dict:
    """Everything that defines the features; written into the model manifest and compared at load time."""
    return {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "win_length": WIN_LENGTH, "hop_length": HOP_LENGTH,
            "n_mels": N_MELS, "fmin": FMIN, "fmax": FMAX, "window": "hann-periodic", "center": "reflect",
            "power": 2.0, "mel_scale": "slaney", "mel_norm": "slaney", "log": "ln", "log_offset": LOG_OFFSET,
            "band_limit": f"kaiser-sinc-{BAND_LIMIT_TAPS}-{BAND_LIMIT_CUTOFF_HZ:g}hz-beta{BAND_LIMIT_BETA:g}",
            "stft": f"dft-conv-at-{TELEPHONE_RATE}hz", "in_graph": True,
            "energy": f"mean-power-db-{FRAME_SECONDS:g}s-every-{HOP_SECONDS:g}s"}


def telephone_band(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limit audio to the 4 kHz telephone band by an 8 kHz round trip through soxr (same length, float32):
    where the quality checks measure, and the reference the graph's low-pass is compared with."""
    x = np.asarray(waveform, dtype=np.float32)
    if sample_rate <= TELEPHONE_RATE:
        return x.copy()
    narrow = soxr.resample(x, sample_rate, TELEPHONE_RATE, quality="VHQ")
    wide = soxr.resample(narrow, TELEPHONE_RATE, sample_rate, quality="VHQ").astype(np.float32)
    if wide.shape[0] >= x.shape[0]:
        return wide[: x.shape[0]]
    return np.pad(wide, (0, x.shape[0] - wide.shape[0]))


def n_frames(n_samples: int) -> int:
    """Frames produced for `n_samples` samples (centred framing)."""
    return 1 + n_samples // HOP_LENGTH


def log_mel(waveform: np.ndarray) -> np.ndarray:
    """(..., samples) float at 16 kHz -> (..., N_MELS, 1 + samples // HOP_LENGTH) float32 natural-log mel power,
    with no band limit of its own: for drawing, and the reference of the graph's front end."""
    x = np.asarray(waveform, dtype=np.float32)
    if x.shape[-1] == 0:
        raise ValueError("log_mel needs at least one sample")
    pad = [(0, 0)] * (x.ndim - 1) + [(N_FFT // 2, N_FFT // 2)]
    padded = np.pad(x, pad, mode="reflect")
    # The Hann window sits centred in the N_FFT frame with zeros around it, so only its WIN_LENGTH samples are
    # framed; rfft zero-pads at the end instead, which only changes the phase, never the power.
    offset = (N_FFT - WIN_LENGTH) // 2
    frames = sliding_window_view(padded[..., offset:], WIN_LENGTH, axis=-1)[..., ::HOP_LENGTH, :]
    frames = frames[..., : n_frames(x.shape[-1]), :]
    # numpy's float64 FFT is several times faster than its float32 one.
    spectrum = np.fft.rfft(frames * _window(), n=N_FFT, axis=-1)
    projection = mel_projection()
    spectrum = spectrum[..., : projection.shape[0]]
    power = (np.square(spectrum.real) + np.square(spectrum.imag)).astype(np.float32)
    mel = np.log(power @ projection + np.float32(LOG_OFFSET))
    return np.ascontiguousarray(np.swapaxes(mel, -1, -2))


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """Periodic Hann, as torch.hann_window and librosa use for spectral analysis."""
    n = np.arange(WIN_LENGTH)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log, linear)


@lru_cache(maxsize=1)
def _mel_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters with Slaney area normalisation."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def mel_projection() -> np.ndarray:
    """The filterbank as a contiguous (bins, N_MELS) matrix cut after the last bin below FMAX: a third of the
    multiply, and small enough that BLAS does not spin up threads that fight the model for the cores."""
    weights = _mel_filterbank()
    used = int(np.flatnonzero(weights.any(axis=0)).max()) + 1
    return np.ascontiguousarray(weights[:, :used].T)


def chunks(x: np.ndarray, seconds: float = MAX_CLIP_SECONDS, rate: float = SAMPLE_RATE) -> list[np.ndarray]:
    """x's last axis (16 kHz samples by default) in pieces of `seconds`; a tail under half a piece joins the piece
    before it, so no piece is too short to score and none is longer than 1.5 times `seconds`. A piece of whole
    seconds holds a whole number of frames, so the pieces' frame energies line up end to end."""
    size = int(seconds * rate)
    bounds = list(range(0, x.shape[-1], size))[1:]
    if bounds and x.shape[-1] - bounds[-1] < size // 2:
        bounds.pop()
    return np.split(x, bounds, axis=-1)

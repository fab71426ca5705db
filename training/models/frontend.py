"""The one front end: 16 kHz waveform -> telephone band -> log-mel and frame energy, as a torch module.

Training computes its features with this module and export puts the same module at the head of the OpenVINO graph,
so training, export and run time share one implementation by construction (coughkd.features holds its constants
and the spec the manifest records; its numpy log-mel only draws the app's figure and is the parity reference).

Why this shape, for speed inside one graph on a laptop CPU (each choice timed against the one before it with
OpenVINO on 5 s clips, see the commit messages):
- the band limit is a Kaiser-windowed sinc low-pass (fixed weights) applied with stride 2, which is also the
  decimation to 8 kHz: nothing above 4 kHz can reach the features, so 8 kHz and 48 kHz audio look alike. In the
  graph it runs in polyphase form: each block of POLYPHASE_BLOCK samples times the weights it contributes to the
  outputs of its own block and of the blocks before it, side by side, in one matmul, then each block's outputs
  summed from those products: the same sums as a one-channel strided conv1d, which CPUs run many times slower, with
  the time axis kept where the blocks put it (a convolution over the blocks as channels needed a transpose either
  side), and without copying each block beside its neighbours first (that concat cost a fifth of the front end);
- the STFT is a DFT as a strided convolution of the 8 kHz signal (a 200-sample periodic Hann, 25 ms, every 160
  samples, 20 ms), only for the bins the mel filterbank uses (up to 4 kHz, the same 31.25 Hz grid as a 512-point
  FFT at 16 kHz), scaled by 2 so its power matches the 400-sample analysis at 16 kHz; the squares of its cos and
  sin outputs go through the mel filterbank stacked twice, one matmul for power and mel, with the filterbank on
  the left so the result is already (mels, frames) (the same DFT as a matmul over frames, or OpenVINO's STFT or
  RDFT, ran slower);
- the frame energy that event detection reads is the mean power of 30 ms frames of the band-limited signal every
  10 ms (coughkd.events): sums of its square over 10 ms blocks, three neighbours added (an average pool ran slower).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from coughkd.audio import SAMPLE_RATE
from coughkd.events import ENERGY_FLOOR, FRAME_SECONDS, HOP_SECONDS
from coughkd.features import (
    BAND_LIMIT_BETA,
    BAND_LIMIT_CUTOFF_HZ,
    BAND_LIMIT_TAPS,
    DECIMATION,
    HOP_LENGTH,
    LOG_OFFSET,
    N_FFT,
    WIN_LENGTH,
    mel_projection,
)


def low_pass_taps() -> np.ndarray:
    """(BAND_LIMIT_TAPS,) Kaiser-windowed sinc with unit gain at 0 Hz, cutting at BAND_LIMIT_CUTOFF_HZ."""
    n = np.arange(BAND_LIMIT_TAPS) - (BAND_LIMIT_TAPS - 1) / 2
    taps = 2 * BAND_LIMIT_CUTOFF_HZ / SAMPLE_RATE * np.sinc(2 * BAND_LIMIT_CUTOFF_HZ / SAMPLE_RATE * n)
    taps *= np.kaiser(BAND_LIMIT_TAPS, BAND_LIMIT_BETA)
    return taps / taps.sum()


POLYPHASE_BLOCK = 160


def polyphase_spans(n_taps: int = BAND_LIMIT_TAPS, block: int = POLYPHASE_BLOCK, stride: int = DECIMATION) -> int:
    """How many consecutive blocks of `block` samples the outputs of one block read."""
    return -(-(stride * (block // stride - 1) + n_taps) // block)


def polyphase_matrix(taps: np.ndarray, block: int = POLYPHASE_BLOCK, stride: int = DECIMATION) -> np.ndarray:
    """(spans * block, block // stride) weights such that a row of `spans` consecutive blocks of `block` samples,
    starting at sample j * block, times column q is sum_k taps[k] * x[j * block + stride * q + k]."""
    outputs = block // stride
    spans = polyphase_spans(len(taps), block, stride)
    matrix = np.zeros((spans * block, outputs))
    for q in range(outputs):
        matrix[stride * q:stride * q + len(taps), q] = taps
    return matrix


def dft_basis() -> np.ndarray:
    """(2 * bins, 1, window) cos and -sin kernels of the windowed DFT at the decimated rate, bins up to 4 kHz."""
    window = WIN_LENGTH // DECIMATION
    n_fft = N_FFT // DECIMATION
    bins = mel_projection().shape[0]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    angle = 2 * np.pi * np.outer(np.arange(bins), np.arange(window)) / n_fft
    return (DECIMATION * np.concatenate([np.cos(angle), -np.sin(angle)]) * hann)[:, None, :]


class FrontEnd(nn.Module):
    """waveform (B, samples) at 16 kHz -> (log_mel (B, N_MELS, 1 + samples // HOP_LENGTH), energy_db
    (B, samples // HOP_LENGTH)); `band_limited` gives the 16 kHz band-limited waveform the teacher hears."""

    def __init__(self) -> None:
        super().__init__()
        taps = low_pass_taps()
        self.register_buffer("taps", torch.tensor(taps, dtype=torch.float32).view(1, 1, -1), persistent=False)
        spans = polyphase_matrix(taps).reshape(-1, POLYPHASE_BLOCK, POLYPHASE_BLOCK // DECIMATION)
        # (block, spans * outputs): what a block gives the outputs of the block `s` before it, for s = 0, 1, ...
        self.register_buffer("polyphase", torch.tensor(np.concatenate(spans, axis=1), dtype=torch.float32),
                             persistent=False)
        self.register_buffer("basis", torch.tensor(dft_basis(), dtype=torch.float32), persistent=False)
        projection = np.concatenate([mel_projection()] * 2).T  # the cos and the sin outputs' squares
        self.register_buffer("projection", torch.tensor(projection, dtype=torch.float32), persistent=False)
        self.hop = HOP_LENGTH // DECIMATION
        self.frame = round(FRAME_SECONDS * SAMPLE_RATE) // DECIMATION
        self.energy_hop = round(HOP_SECONDS * SAMPLE_RATE) // DECIMATION

    def band_limited(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, samples) at 16 kHz, the same filter as the features' (they read every DECIMATION-th sample of it)."""
        half = (BAND_LIMIT_TAPS - 1) // 2
        return F.conv1d(F.pad(waveform.unsqueeze(1), (half, half)), self.taps).squeeze(1)

    def decimated(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, (samples + 1) // 2) the band-limited waveform at 8 kHz (every other sample of `band_limited`)."""
        half = (BAND_LIMIT_TAPS - 1) // 2
        block, outputs = POLYPHASE_BLOCK, POLYPHASE_BLOCK // DECIMATION
        spans = polyphase_spans()  # a Python int: the slices below have constant bounds in the graph
        samples = waveform.shape[-1]
        rows = (samples + block - 1) // block  # (-(-samples // block) converted to wrong lengths)
        blocks = F.pad(waveform, (half, (rows + spans - 1) * block - samples - half)).unflatten(-1, (-1, block))
        products = blocks @ self.polyphase  # (B, rows + spans - 1, spans * outputs)
        # Rows s to s - spans + 1 from the end are rows s .. rows + s - 1: constant bounds, no shape arithmetic in the
        # graph (each computed bound is a few more nodes, which a graph of dynamic length runs on every call).
        narrow = sum((products[:, s:s - spans + 1 or None, s * outputs:(s + 1) * outputs] for s in range(1, spans)),
                     products[:, :1 - spans or None, :outputs])
        return narrow.flatten(1)[:, :(samples + 1) // DECIMATION]

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        narrow = self.decimated(waveform)
        half = self.basis.shape[-1] // 2
        spectrum = F.conv1d(F.pad(narrow.unsqueeze(1), (half, half), mode="reflect"), self.basis, stride=self.hop)
        log_mel = torch.log(torch.matmul(self.projection, torch.square(spectrum)) + LOG_OFFSET)
        log_mel = log_mel[..., :waveform.shape[-1] // HOP_LENGTH + 1]
        frames = waveform.shape[-1] // (self.energy_hop * DECIMATION)
        # Frames past the end are zero padded, so frame i starts at sample i * hop in every piece of a long clip.
        hops = self.frame // self.energy_hop
        padded = F.pad(torch.square(narrow), (0, (frames + hops - 1) * self.energy_hop - narrow.shape[-1]))
        sums = padded.unflatten(-1, (-1, self.energy_hop)).sum(dim=-1)
        energy = sum((sums[:, k:k - hops + 1 or None] for k in range(1, hops)),
                     sums[:, :1 - hops or None]) / self.frame
        energy_db = (10.0 / math.log(10.0)) * torch.log(torch.clamp(energy, min=ENERGY_FLOOR))
        return log_mel, energy_db

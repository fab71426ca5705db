"""EfficientAT "mn04_as": a MobileNetV3 (width 0.4) AudioSet tagger and the 32 kHz front end it was trained with.

Written from the architecture facts in ``../shared/models/README.md`` (Schmid, Koutini, Widmer, ICASSP 2023; weights
MIT-licensed). Module and attribute names follow the published state dict so the weights load with ``strict=True``.
The front end here is the teacher's own input contract; the student's front end is ``coughkd.features``.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import nn

from coughkd.model import sha256_file
from training.lib.data import SHARED

SAMPLE_RATE = 32000
N_CLASSES = 527
EMBED_DIM = 384
WEIGHTS_URL = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt"
WEIGHTS_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
SHARED_MODELS = SHARED / "models"
SHARED_WEIGHTS = SHARED_MODELS / "efficientat_mn04_as_mAP_432.pt"
CLASS_LABELS = SHARED_MODELS / "audioset_class_labels_indices.csv"

WIDTH = 0.4
BN_EPS = 0.001
BN_MOMENTUM = 0.01

# MobileNetV3-Large bottlenecks before width scaling: (kernel, expanded, out, squeeze-excite, hardswish, stride).
_LARGE_BLOCKS = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` without losing more than 10% (the MobileNet channel rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias, 'same' padding) + BatchNorm + optional activation; indices 0/1 match the weight keys."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 activation: type[nn.Module] | None = None):
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class ChannelSqueezeExcite(nn.Module):
    """Channel attention: average over frequency and time, bottleneck MLP, sigmoid gate per channel."""

    def __init__(self, channels: int):
        super().__init__()
        squeezed = make_divisible(channels // 4)
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.relu(self.fc1(x.mean(dim=(2, 3))))
        gate = torch.sigmoid(self.fc2(gate))
        return x * gate[:, :, None, None]


class SqueezeExciteBlock(nn.Module):
    """Holds the single channel SE layer under the name ``conc_se_layers.0`` used by the published weights."""

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSqueezeExcite(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """MobileNetV3 bottleneck: 1x1 expand, depthwise conv, optional SE, 1x1 projection, residual if shapes allow."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, hardswish: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(ConvBNAct(c_in, expanded, 1, activation=act))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, activation=act))
        if se:
            layers.append(SqueezeExciteBlock(expanded))
        layers.append(ConvBNAct(expanded, c_out, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MN04(nn.Module):
    """mn04 AudioSet tagger: EfficientATMel output (B, 1, 128, frames) -> (logits (B, 527), embedding (B, 384))."""

    def __init__(self, n_classes: int = N_CLASSES, dropout: float = 0.2):
        super().__init__()
        first = make_divisible(16 * WIDTH)
        layers: list[nn.Module] = [ConvBNAct(1, first, 3, stride=2, activation=nn.Hardswish)]
        c_in = first
        for kernel, expanded, c_out, se, hs, stride in _LARGE_BLOCKS:
            expanded, c_out = make_divisible(expanded * WIDTH), make_divisible(c_out * WIDTH)
            layers.append(InvertedResidual(c_in, kernel, expanded, c_out, se, hs, stride))
            c_in = c_out
        layers.append(ConvBNAct(c_in, 6 * c_in, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        hidden = make_divisible(1280 * WIDTH)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6 * c_in, hidden),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.features(mel)
        return self.classifier(x), x.mean(dim=(2, 3))


def kaldi_mel_filterbank(n_mels: int = 128, n_fft: int = 1024, sample_rate: int = SAMPLE_RATE,
                         fmin: float = 0.0, fmax: float = 15000.0) -> torch.Tensor:
    """Kaldi-style triangles, evenly spaced on the 1127 ln(1 + f/700) mel scale, over n_fft // 2 + 1 bins.

    Kaldi builds them on the n_fft // 2 bins below Nyquist; the Nyquist bin is appended with weight 0, as in training.
    """
    def mel(f: torch.Tensor) -> torch.Tensor:
        return 1127.0 * torch.log1p(f / 700.0)

    lo, hi = mel(torch.tensor(fmin, dtype=torch.float64)), mel(torch.tensor(fmax, dtype=torch.float64))
    step = (hi - lo) / (n_mels + 1)
    left = lo + step * torch.arange(n_mels, dtype=torch.float64)[:, None]
    centre, right = left + step, left + 2 * step
    bin_mel = mel(torch.arange(n_fft // 2, dtype=torch.float64) * sample_rate / n_fft)[None, :]
    up = (bin_mel - left) / (centre - left)
    down = (right - bin_mel) / (right - centre)
    weights = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.cat([weights, torch.zeros(n_mels, 1, dtype=torch.float64)], dim=1).float()


class EfficientATMel(nn.Module):
    """32 kHz waveform (B, samples) -> normalised log-mel (B, 1, 128, 1 + (samples - 1) // 320), mn04's input.

    Pre-emphasis drops one sample (a valid 2-tap filter), which is why the frame count uses samples - 1.
    """

    N_FFT, WIN_LENGTH, HOP_LENGTH, N_MELS, FMAX = 1024, 800, 320, 128, 15000.0

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(self.WIN_LENGTH, periodic=False), persistent=False)
        self.register_buffer("filterbank", kaldi_mel_filterbank(self.N_MELS, self.N_FFT, SAMPLE_RATE, 0.0, self.FMAX),
                             persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform[:, 1:] - 0.97 * waveform[:, :-1]
        spec = torch.stft(x, self.N_FFT, hop_length=self.HOP_LENGTH, win_length=self.WIN_LENGTH, window=self.window,
                          center=True, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.filterbank, power)
        return ((torch.log(mel + 1e-5) + 4.5) / 5.0).unsqueeze(1)


def _cached_weights() -> Path:
    """The published weights: the shared offline copy if present, else a download into torch hub's cache."""
    if SHARED_WEIGHTS.exists():
        return SHARED_WEIGHTS
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_URL.rsplit("/", 1)[-1]
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(WEIGHTS_URL, str(cached), hash_prefix=WEIGHTS_SHA256, progress=True)
        except Exception as err:
            raise RuntimeError(
                f"could not download the EfficientAT mn04 weights from {WEIGHTS_URL} ({err}); "
                f"download the file by hand and put it at {cached} or {SHARED_WEIGHTS.resolve()}, "
                "or pass its path to load_mn04(path)"
            ) from err
    return cached


def load_mn04(path: Path | None = None) -> MN04:
    """mn04 with the published AudioSet weights, in eval mode.

    ``path=None`` uses the shared offline copy or the upstream release (cached) and checks its SHA-256, so a damaged or
    different file is refused. An explicit ``path`` (e.g. a fine-tuned state dict) is trusted, but must still match
    every key and shape.
    """
    if path is None:
        path = _cached_weights()
        actual = sha256_file(path)
        if actual != WEIGHTS_SHA256:
            raise RuntimeError(f"{path}: SHA-256 {actual} is not the published mn04_as_mAP_432.pt ({WEIGHTS_SHA256})")
    model = MN04()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def class_names(path: Path = CLASS_LABELS) -> list[str]:
    """AudioSet display names in output order, from the ``index,mid,display_name`` CSV."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"]))]

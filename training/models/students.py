"""Compact students distilled from a large teacher.

Two families, compared side by side:
- ``LogMelCNN``: a small depthwise-separable CNN on the project's log-mel front end (coughkd.features).
- ``TinyWav2Vec``: a wav2vec2-style raw-waveform model, a strided conv feature encoder followed by a couple of
  small transformer layers, as in wav2vec2 but a thousand times smaller.

Both return ``(covid_logit, cough_logit)`` from ``forward``; ``members`` gives each member of the COVID-19 head
and the shared embedding, for embedding-matching distillation. Each stays under 100k parameters. What is exported is
``Screener``: the front end (training.models.frontend), the CNN student and the sound-type gate in one graph from
waveform to scores, which also scores every 1 s window position of the clip from the same pass (``window_logits``),
so an event's sound type costs no second network call.

The CNN's COVID-19 logit is the mean of two members: the CNN's own head, trained by SGD on the distillation loss,
and a linear read-out of MFCC statistics of the same log-mel, fitted to that same loss outright on the clean whole
training clips before the CNN trains, then frozen. Why: most of the Telegram signal lies in whole-clip MFCC
statistics, which the CNN alone does not pick up from a few dozen Telegram positives (docs/experiments.md).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import scipy.fft
import torch
from torch import nn
from torch.nn import functional as F

from coughkd.features import HOP_LENGTH, N_MELS
from coughkd.model import SOUND_TYPES
from training.models.frontend import FrontEnd

N_MFCC = 20
DELTA_WIDTH = 2
# The CNNs' time resolution: the stem's stride and two max pools, 8 log-mel frames per feature frame (160 ms); a
# window is WINDOW_WIDTH feature frames (0.96 s), what the 1 s event windows the networks train on come out as.
FEATURE_HOP = 8
WINDOW_WIDTH = 6
WINDOW_SAMPLES = WINDOW_WIDTH * FEATURE_HOP * HOP_LENGTH
WINDOW_HOP_SAMPLES = FEATURE_HOP * HOP_LENGTH


# How feature frames are pooled over time: "mean+max" (the mean beside the max, channels [mean..., max...]), "max"
# alone, which seconds of quiet around a short sound cannot dilute, or "active": the mean beside the max over the
# recording's active span alone (active_span), so that neither quiet nor digital silence before and after the sound
# is heard at all: a cough cut out with seconds of silence after it, as ESC-50 cuts its clips, sounds as the cough.
POOLINGS = {"mean+max": 2, "max": 1, "active": 2}  # pooling: statistics per channel
ACTIVE_DB = 30.0  # the active span: from the first to the last log-mel frame within this of the loudest


def active_span(log_mel: torch.Tensor) -> torch.Tensor:
    """(B, 1, frames) 1.0 from the first to the last frame of (B, n_mels, frames) natural-log mel power whose power
    is within ACTIVE_DB of the recording's loudest frame, 0.0 before and after. Pauses inside the span stay in it."""
    level = torch.logsumexp(log_mel, dim=1, keepdim=True)
    loud = (level >= level.amax(dim=-1, keepdim=True) - ACTIVE_DB * np.log(10.0) / 10.0).to(log_mel.dtype)
    seen = torch.cumsum(loud, dim=-1)
    still_to_come = seen[..., -1:] - seen + loud
    return ((seen > 0) & (still_to_come > 0)).to(log_mel.dtype)


def feature_frames_mask(mask: torch.Tensor) -> torch.Tensor:
    """A (B, 1, frames) log-mel mask at the CNNs' feature frames: the stem's stride-2 3x3 convolution and two 2x max
    pools over time, so a feature frame counts if any log-mel frame it is made of does. The pools drop the last few
    log-mel frames of some lengths; where the whole span lies there, every feature frame counts."""
    pooled = F.max_pool1d(F.max_pool1d(F.max_pool1d(mask, 3, 2, 1), 2), 2)
    return pooled + (pooled.amax(dim=-1, keepdim=True) == 0).to(pooled.dtype)


def pool_mask(log_mel: torch.Tensor, pooling: str) -> torch.Tensor | None:
    """The feature frames of a (B, n_mels, frames) log-mel that ``pooling`` reads: a mask for "active", None (all of
    them) otherwise."""
    return feature_frames_mask(active_span(log_mel)) if pooling == "active" else None


def time_pool(x: torch.Tensor, pooling: str = "mean+max", mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, POOLINGS[pooling] * C) of (B, C, T) feature frames pooled over the whole clip; "active" pools over the
    frames of ``mask`` (B, 1, T) alone, which needs frames >= 0 (they come out of a ReLU)."""
    if pooling == "max":
        return x.amax(dim=-1)
    if pooling == "active":
        kept = x * mask
        return torch.cat([kept.sum(dim=-1) / mask.sum(dim=-1), kept.amax(dim=-1)], dim=-1)
    return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=-1)


def sliding_pool(x: torch.Tensor, width: int, pooling: str = "mean+max",
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, POOLINGS[pooling] * C, T) time_pool of (B, C, T) over every window of `width` steps from each step on;
    windows past the end repeat the last step (the runtime reads only windows inside the clip). "active": over the
    window's frames inside ``mask`` (a window with none of them pools to 0)."""
    if pooling == "active":
        kept = F.pad(x * mask, (0, width - 1), mode="replicate")
        share = F.avg_pool1d(F.pad(mask, (0, width - 1), mode="replicate"), width, 1).clamp(min=1.0 / width)
        return torch.cat([F.avg_pool1d(kept, width, 1) / share, F.max_pool1d(kept, width, 1)], dim=1)
    padded = F.pad(x, (0, width - 1), mode="replicate")
    if pooling == "max":
        return F.max_pool1d(padded, width, 1)
    return torch.cat([F.avg_pool1d(padded, width, 1), F.max_pool1d(padded, width, 1)], dim=1)


def pooled_logits(frames: torch.Tensor, head: nn.Linear, pooling: str = "mean+max",
                  mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(clip logits (B, out), window logits (B, out, T)) of `head` on (B, C, T) feature frames pooled over the
    whole clip and over the WINDOW_WIDTH window from each frame on: one pass gives both."""
    clip = head(time_pool(frames, pooling, mask))
    windows = torch.matmul(head.weight, sliding_pool(frames, WINDOW_WIDTH, pooling, mask)) + head.bias.view(1, -1, 1)
    return clip, windows


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class MfccStatistics(nn.Module):
    """(B, 4 * n_mfcc) from a log-mel (B, n_mels, frames): mean and std over time of the MFCCs (orthonormal DCT-II
    of the log-mel) and of their regression deltas (edges repeated, as in HTK/librosa).

    The one definition of these statistics: the student's read-out, the teacher's MFCC probe and the MFCC baseline
    all compute theirs with this module."""

    def __init__(self, n_mels: int = N_MELS, n_mfcc: int = N_MFCC, delta_width: int = DELTA_WIDTH):
        super().__init__()
        dct = scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc]
        self.register_buffer("dct", torch.tensor(dct, dtype=torch.float32), persistent=False)
        offsets = torch.arange(-delta_width, delta_width + 1, dtype=torch.float32)
        kernel = offsets / (2 * (offsets[delta_width + 1:] ** 2).sum())
        self.register_buffer("delta_kernel", kernel.view(1, 1, -1).repeat(n_mfcc, 1, 1), persistent=False)
        self.delta_width = delta_width
        self.dim = 4 * n_mfcc

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        mfcc = torch.matmul(self.dct, log_mel)
        padded = F.pad(mfcc, (self.delta_width, self.delta_width), mode="replicate")
        delta = F.conv1d(padded, self.delta_kernel, groups=mfcc.shape[1])
        return torch.cat([mfcc.mean(-1), mfcc.std(-1, unbiased=False), delta.mean(-1), delta.std(-1, unbiased=False)],
                         dim=-1)

    def windows(self, log_mel: torch.Tensor, width: int, hop: int) -> torch.Tensor:
        """(B, dim, positions) the same statistics over every window of `width` frames every `hop` frames (windows
        past the end repeat the last frame)."""
        mfcc = torch.matmul(self.dct, log_mel)
        padded = F.pad(mfcc, (self.delta_width, self.delta_width), mode="replicate")
        delta = F.conv1d(padded, self.delta_kernel, groups=mfcc.shape[1])
        stats = []
        for z in (mfcc, delta):
            # Centred on the clip's mean first, so E[z^2] - E[z]^2 does not cancel away float32's digits.
            offset = z.mean(dim=-1, keepdim=True)
            z = F.pad(z - offset, (0, width - 1), mode="replicate")
            mean = F.avg_pool1d(z, width, hop)
            spread = torch.sqrt(torch.clamp(F.avg_pool1d(z * z, width, hop) - mean * mean, min=0.0))
            stats += [mean + offset, spread]
        return torch.cat(stats, dim=1)


class _TwoHeads(nn.Module):
    """COVID-19 and cough/not-cough heads on one shared embedding."""

    embed_dim: int
    member_names: tuple[str, ...] = ("head",)  # one name per member of the COVID-19 head, for tables

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def members(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(covid_logits (B, members), cough_logit, embedding)``: every member of the COVID-19 head is trained on
        the whole loss, and the exported logit is their mean."""
        embedding = self.embed(x)
        return self.covid_head(embedding), self.cough_head(embedding).squeeze(-1), embedding

    def fit_readout(self, inputs: list[np.ndarray], loss: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Fit, before SGD, the members whose training problem can be solved outright (none by default).
        ``inputs``: the labelled training clips, whole and clean; ``loss``: their logits (N,) -> the COVID-19 loss."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(covid_logit, cough_logit)``, the exported contract (training reads ``members``)."""
        covid_logits, cough_logit, _ = self.members(x)
        return covid_logits.mean(dim=-1), cough_logit


class _SeparableBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 conv, the MobileNet building block that keeps parameters low."""

    def __init__(self, c_in: int, c_out: int, pool: bool):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(x))


class LogMelCNN(_TwoHeads):
    """Input: log-mel (B, n_mels, frames) from coughkd.features.log_mel; any number of frames.

    With ``mfcc_readout``, the COVID-19 head has a second member: a linear read-out of the clip's standardised MFCC
    statistics (``fit_readout``), with an L2 penalty of ``readout_l2`` on its weights (0.03: the best of 0.003-0.3
    for the read-out alone in the cross-validation above; about scikit-learn's C = 0.03 on 600 recordings)."""

    def __init__(self, n_mels: int = N_MELS, channels: tuple[int, ...] = (24, 48, 96, 128, 160), dropout: float = 0.2,
                 mfcc_readout: bool = True, readout_l2: float = 0.03):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        self.blocks = nn.Sequential(
            *[_SeparableBlock(a, b, pool=i < 2) for i, (a, b) in enumerate(zip(channels[:-1], channels[1:]))]
        )
        self.embed_dim = 2 * channels[-1]
        self.dropout = nn.Dropout(dropout)
        self.covid_head = nn.Linear(self.embed_dim, 1)
        self.cough_head = nn.Linear(self.embed_dim, 1)
        self.mfcc = MfccStatistics(n_mels) if mfcc_readout else None
        if self.mfcc is not None:
            self.register_buffer("mfcc_mean", torch.zeros(self.mfcc.dim))
            self.register_buffer("mfcc_std", torch.ones(self.mfcc.dim))
            self.readout = nn.Linear(self.mfcc.dim, 1)
        self.readout_l2 = readout_l2
        self.member_names = ("CNN head",) + (("MFCC-statistics read-out",) if mfcc_readout else ())

    def frames(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, C, feature frames): the CNN pooled over frequency, one step per FEATURE_HOP log-mel frames."""
        return self.blocks(self.stem(self.input_norm(log_mel).unsqueeze(1))).mean(dim=2)

    def embed(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = self.frames(log_mel)
        return self.dropout(torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=-1))

    def clip_and_window_logits(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(covid_logit (B,), window logits (B, feature frames)): the exported COVID-19 logit of the clip, as
        `forward` gives it in eval mode, and of the WINDOW_WIDTH window from each feature frame on, as `forward`
        would give for that window alone but from the same pass over the clip."""
        head_clip, head_windows = pooled_logits(self.frames(log_mel), self.covid_head)
        clip, windows = [head_clip], [head_windows]
        if self.mfcc is not None:
            clip.append(self.readout((self.mfcc(log_mel) - self.mfcc_mean) / self.mfcc_std))
            stats = self.mfcc.windows(log_mel, WINDOW_WIDTH * FEATURE_HOP, FEATURE_HOP)[..., :head_windows.shape[-1]]
            standardised = (stats - self.mfcc_mean.view(1, -1, 1)) / self.mfcc_std.view(1, -1, 1)
            windows.append(torch.matmul(self.readout.weight, standardised)
                           + self.readout.bias.view(1, -1, 1))
        return torch.cat(clip, dim=-1).mean(dim=-1), torch.cat(windows, dim=1).mean(dim=1)

    def members(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        covid_logits, cough_logit, embedding = super().members(log_mel)
        if self.mfcc is None:
            return covid_logits, cough_logit, embedding
        readout = self.readout((self.mfcc(log_mel) - self.mfcc_mean) / self.mfcc_std)
        return torch.cat([covid_logits, readout], dim=-1), cough_logit, embedding

    def fit_readout(self, inputs: list[np.ndarray], loss: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Standardise the MFCC statistics over the training clips (as a StandardScaler would, so one L2 penalty
        suits every statistic), fit the read-out to ``loss`` + ``readout_l2`` * |w|^2 by L-BFGS, and freeze it.

        The problem is convex, so it is solved, not sampled: SGD beside the CNN saw the statistics of masked crops
        only, and ended far from this optimum (see the module docstring)."""
        if self.mfcc is None:
            return
        with torch.no_grad():
            stats = torch.cat([self.mfcc(torch.from_numpy(x[None]).to(self.mfcc_mean.device)) for x in inputs])
            self.mfcc_mean.copy_(stats.mean(dim=0))
            self.mfcc_std.copy_(stats.std(dim=0, unbiased=False).clamp(min=1e-6))
            standardised = (stats - self.mfcc_mean) / self.mfcc_std
            self.readout.weight.zero_()
            self.readout.bias.zero_()
        self.readout.requires_grad_(True)
        optimizer = torch.optim.LBFGS(self.readout.parameters(), max_iter=1000, tolerance_grad=1e-9,
                                      tolerance_change=1e-12, line_search_fn="strong_wolfe")

        def objective() -> torch.Tensor:
            optimizer.zero_grad()
            value = loss(self.readout(standardised).squeeze(-1)) + self.readout_l2 * self.readout.weight.pow(2).sum()
            value.backward()
            return value

        optimizer.step(objective)
        self.readout.zero_grad(set_to_none=True)
        self.readout.requires_grad_(False)


class TinyWav2Vec(_TwoHeads):
    """Input: raw 16 kHz waveform (B, samples). Strided conv encoder (100 frames/s) + small transformer."""

    def __init__(self, conv_dim: int = 32, d_model: int = 48, n_layers: int = 2, n_heads: int = 4, ff_dim: int = 96,
                 dropout: float = 0.1):
        super().__init__()
        # (kernel, stride) as in wav2vec2's feature encoder, fewer layers: total stride 160 = 10 ms at 16 kHz.
        spec = [(10, 5), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2)]
        layers: list[nn.Module] = []
        c_in = 1
        for i, (kernel, stride) in enumerate(spec):
            layers += [nn.Conv1d(c_in, conv_dim, kernel, stride=stride, bias=False)]
            layers += [nn.GroupNorm(conv_dim, conv_dim) if i == 0 else nn.Identity(), nn.GELU()]
            c_in = conv_dim
        self.feature_encoder = nn.Sequential(*layers)
        self.projection = nn.Sequential(nn.LayerNorm(conv_dim), nn.Linear(conv_dim, d_model))
        self.position = nn.Conv1d(d_model, d_model, 31, padding=15, groups=d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, ff_dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.embed_dim = 2 * d_model
        self.covid_head = nn.Linear(self.embed_dim, 1)
        self.cough_head = nn.Linear(self.embed_dim, 1)

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        # Zero mean, unit variance per clip, as wav2vec2's feature extractor does.
        x = (waveform - waveform.mean(-1, keepdim=True)) / (waveform.std(-1, keepdim=True) + 1e-5)
        x = self.feature_encoder(x.unsqueeze(1)).transpose(1, 2)
        x = self.projection(x)
        x = x + nn.functional.gelu(self.position(x.transpose(1, 2))).transpose(1, 2)
        x = self.encoder(x)
        return torch.cat([x.mean(dim=1), x.amax(dim=1)], dim=-1)


class SoundTypeCNN(nn.Module):
    """The sound-type gate: log-mel (B, n_mels, frames) of any length -> (B, len(SOUND_TYPES)) logits.

    A network of its own rather than a head on the COVID-19 student's embedding, so the gate can learn from
    thousands of real non-cough recordings without moving what the COVID-19 head learnt from a few hundred coughs.
    Max pooling over time (beside the mean with ``pooling="mean+max"`` and "active"), so one cough in a long
    recording of speech or quiet can carry the clip."""

    def __init__(self, n_mels: int = N_MELS, channels: tuple[int, ...] = (16, 32, 64, 96, 128), dropout: float = 0.2,
                 pooling: str = "mean+max"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {sorted(POOLINGS)}")
        self.pooling = pooling
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        self.blocks = nn.Sequential(
            *[_SeparableBlock(a, b, pool=i < 2) for i, (a, b) in enumerate(zip(channels[:-1], channels[1:]))]
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(POOLINGS[pooling] * channels[-1], len(SOUND_TYPES))

    @property
    def embedding_size(self) -> int:
        return self.head.in_features

    def frames(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, C, feature frames): the CNN pooled over frequency, one step per FEATURE_HOP log-mel frames."""
        return self.blocks(self.stem(self.input_norm(log_mel).unsqueeze(1))).mean(dim=2)

    def embed(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, embedding_size): the clip pooled over frequency, then over time (time_pool)."""
        return time_pool(self.frames(log_mel), self.pooling, pool_mask(log_mel, self.pooling))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(log_mel)))

    def clip_and_window_logits(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, len(SOUND_TYPES)) of the clip as `forward` gives them in eval mode, logits
        (B, len(SOUND_TYPES), feature frames) of the WINDOW_WIDTH window from each feature frame on), one pass."""
        return pooled_logits(self.frames(log_mel), self.head, self.pooling, pool_mask(log_mel, self.pooling))


class GateEnsemble(nn.Module):
    """The shipped gate: the mean logits of SoundTypeCNNs trained alike from different seeds. How many validation
    clips one network gets wrong, as other microphones and rooms would give them, moves a lot with its seed; the mean
    of two got fewer wrong than the mean of its members (docs/experiments.md)."""

    def __init__(self, members: list[SoundTypeCNN]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(log_mel) for m in self.members]).mean(dim=0)

    def clip_and_window_logits(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clips, windows = zip(*(m.clip_and_window_logits(log_mel) for m in self.members))
        return torch.stack(clips).mean(dim=0), torch.stack(windows).mean(dim=0)


def _side_by_side_conv(convs: list[nn.Conv2d]) -> nn.Conv2d:
    """One grouped convolution computing each of `convs` (alike but for weights) on its own share of the channels."""
    first = convs[0]
    conv = nn.Conv2d(first.in_channels * len(convs), first.out_channels * len(convs), first.kernel_size, first.stride,
                     first.padding, groups=first.groups * len(convs), bias=False)
    conv.weight.data = torch.cat([c.weight.data for c in convs])
    return conv


def _side_by_side_norm(norms: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(norms[0].num_features * len(norms), eps=norms[0].eps)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(norm, name).data = torch.cat([getattr(n, name).data for n in norms])
    return norm


class _InputNorms(nn.Module):
    """(B, n_mels, frames) -> (B, networks, n_mels, frames): each network's input batch norm, in eval mode, as a
    channel of its own. A module, so that its ops are named inside the gate (export keeps the gate in float from
    its named entries)."""

    def __init__(self, norms: list[nn.BatchNorm1d]):
        super().__init__()
        scales = [n.weight / torch.sqrt(n.running_var + n.eps) for n in norms]
        shifts = [n.bias - n.running_mean * s for n, s in zip(norms, scales)]
        self.register_buffer("scale", torch.stack(scales).detach()[None, :, :, None])
        self.register_buffer("shift", torch.stack(shifts).detach()[None, :, :, None])

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return log_mel.unsqueeze(1) * self.scale + self.shift


class SideBySide(nn.Module):
    """A GateEnsemble's networks as one, for export: each layer's convolutions side by side as one grouped
    convolution (a network per group), and one head that averages theirs. The ensemble's logits up to float
    rounding from half the graph nodes, which matters because a 25k-parameter network's time on a CPU goes mostly
    to the per-node cost of the inference engine, not to arithmetic. Inference only: it copies the weights."""

    def __init__(self, ensemble: GateEnsemble):
        super().__init__()
        members = list(ensemble.members)
        self.input_norm = _InputNorms([m.input_norm for m in members])
        self.stem = nn.Sequential(_side_by_side_conv([m.stem[0] for m in members]),
                                  _side_by_side_norm([m.stem[1] for m in members]), nn.ReLU())
        blocks = []
        for i, block in enumerate(members[0].blocks):
            layers = [m.blocks[i].layers for m in members]
            blocks.append(nn.Sequential(
                _side_by_side_conv([x[0] for x in layers]), _side_by_side_norm([x[1] for x in layers]), nn.ReLU(),
                _side_by_side_conv([x[3] for x in layers]), _side_by_side_norm([x[4] for x in layers]), nn.ReLU(),
                block.pool))
        self.blocks = nn.Sequential(*blocks)
        # The features come out as [network 0's channels, network 1's, ...]: each head's columns of each statistic
        # (the mean's, then the max's) are placed against them, and divided by the number of networks so the one
        # head gives the mean of theirs.
        self.pooling = members[0].pooling
        parts = POOLINGS[self.pooling]
        width = members[0].head.in_features // parts
        weights = [m.head.weight.data for m in members]
        self.head = nn.Linear(parts * width * len(members), len(SOUND_TYPES))
        self.head.weight.data = torch.cat([w[:, k * width:(k + 1) * width] for k in range(parts) for w in weights],
                                          dim=1) / len(members)
        self.head.bias.data = torch.stack([m.head.bias.data for m in members]).mean(dim=0)
        self.eval()

    def clip_and_window_logits(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GateEnsemble.clip_and_window_logits, in one pass."""
        return pooled_logits(self.blocks(self.stem(self.input_norm(log_mel))).mean(dim=2), self.head, self.pooling,
                             pool_mask(log_mel, self.pooling))


def gate_from_checkpoint(gate: dict) -> GateEnsemble:
    """The gate a ``training.gate`` checkpoint holds (its ``members``' state dicts, pooled as its ``config`` says;
    checkpoints from before the setting pooled by mean and max), in eval mode."""
    members = []
    for state in gate["members"]:
        member = SoundTypeCNN(pooling=gate.get("config", {}).get("pooling", "mean+max"))
        member.load_state_dict(state)
        members.append(member)
    return GateEnsemble(members).eval()


class Screener(nn.Module):
    """What is exported, one graph from waveform (B, samples) to coughkd.model.OUTPUTS: the COVID-19 student's
    logit and the sound-type gate's logits of the clip, both for every window position (WINDOW_SAMPLES of audio
    every WINDOW_HOP_SAMPLES), and the frame energies the events are found on (the student's own cough head was an
    auxiliary training target and is not exported)."""

    def __init__(self, covid: LogMelCNN, sound: SoundTypeCNN | GateEnsemble | SideBySide):
        super().__init__()
        if not isinstance(covid, LogMelCNN):
            raise TypeError(f"only the log-mel CNN student is exported, not {type(covid).__name__}")
        self.front_end, self.covid, self.sound = FrontEnd(), covid, sound

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_mel, energy_db = self.front_end(waveform)
        covid, window_covid = self.covid.clip_and_window_logits(log_mel)
        sound, window_sound = self.sound.clip_and_window_logits(log_mel)
        return covid, sound, window_covid, window_sound, energy_db

    def for_export(self) -> Screener:
        """The same screener with an ensemble gate's networks side by side (SideBySide), as export converts it."""
        if not isinstance(self.sound, GateEnsemble):
            return self
        return Screener(self.covid, SideBySide(self.sound)).eval()


STUDENTS: dict[str, type[_TwoHeads]] = {"cnn": LogMelCNN, "wav2vec": TinyWav2Vec}
INPUTS = {"cnn": "log_mel", "wav2vec": "waveform"}


def student_config(family: str, **overrides) -> dict:
    """Every constructor argument of a family's student, defaults filled in: what a checkpoint records, so that
    from_checkpoint rebuilds this network whatever the defaults later become."""
    if family not in STUDENTS:
        raise ValueError(f"unknown student family {family!r}; choose from {sorted(STUDENTS)}")
    parameters = inspect.signature(STUDENTS[family]).parameters
    return {name: overrides.get(name, p.default) for name, p in parameters.items()}


def build_student(family: str, **config) -> _TwoHeads:
    if family not in STUDENTS:
        raise ValueError(f"unknown student family {family!r}; choose from {sorted(STUDENTS)}")
    return STUDENTS[family](**config)


def from_checkpoint(checkpoint: dict) -> _TwoHeads:
    """The student a ``training.distill`` checkpoint holds, in eval mode."""
    model = build_student(checkpoint["family"], **checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def screener(student: dict, gate: dict) -> Screener:
    """What is exported, from a ``training.distill`` and a ``training.gate`` checkpoint, in eval mode."""
    return Screener(from_checkpoint(student), gate_from_checkpoint(gate)).eval()

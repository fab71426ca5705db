"""Compact students distilled from a large teacher.

Two families, compared side by side:
- ``LogMelCNN``: a small depthwise-separable CNN on the project's log-mel front end (coughkd.features).
- ``TinyWav2Vec``: a wav2vec2-style raw-waveform model, a strided conv feature encoder followed by a couple of
  small transformer layers, as in wav2vec2 but a thousand times smaller.

Both return ``(covid_logit, cough_logit)`` from ``forward`` (the exported contract), plus the shared embedding
when asked, for embedding-matching distillation. Each stays under 100k parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from coughkd.features import N_MELS


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class _TwoHeads(nn.Module):
    """COVID-19 and cough/not-cough heads on one shared embedding."""

    embed_dim: int

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def heads(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.covid_head(embedding).squeeze(-1), self.cough_head(embedding).squeeze(-1)

    def forward(self, x: torch.Tensor, with_embedding: bool = False) -> tuple[torch.Tensor, ...]:
        """``(covid_logit, cough_logit)``, the exported contract; training also asks for the embedding."""
        embedding = self.embed(x)
        covid_logit, cough_logit = self.heads(embedding)
        return (covid_logit, cough_logit, embedding) if with_embedding else (covid_logit, cough_logit)


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
    """Input: log-mel (B, n_mels, frames) from coughkd.features.log_mel; any number of frames."""

    def __init__(self, n_mels: int = N_MELS, channels: tuple[int, ...] = (24, 48, 96, 128, 160), dropout: float = 0.2):
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

    def embed(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(self.input_norm(log_mel).unsqueeze(1)))
        x = x.mean(dim=2)  # over frequency: (B, C, T)
        return self.dropout(torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=-1))


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


STUDENTS: dict[str, type[_TwoHeads]] = {"cnn": LogMelCNN, "wav2vec": TinyWav2Vec}
INPUTS = {"cnn": "log_mel", "wav2vec": "waveform"}


def build_student(family: str, **config) -> _TwoHeads:
    if family not in STUDENTS:
        raise ValueError(f"unknown student family {family!r}; choose from {sorted(STUDENTS)}")
    return STUDENTS[family](**config)


def from_checkpoint(checkpoint: dict) -> _TwoHeads:
    """The student a ``training.distill`` checkpoint holds, in eval mode."""
    model = build_student(checkpoint["family"], **checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()

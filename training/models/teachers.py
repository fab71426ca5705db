"""Teachers: large pretrained audio models that the small student learns from.

Every teacher takes what the student sees, 16 kHz mono band-limited waveforms (B, samples) float32 (in practice
whole recordings, one at a time; fixed-length crops when fine-tuning), and returns a ``TeacherOutput``: an
embedding, a COVID-19 logit from a small head that ``fine_tune`` trains, and, where the model has them, AudioSet
tag logits (used for the cough/not-cough target) and time-pooled hidden layers (which a student can learn to
predict, DistilHuBERT-style; see losses.Distiller).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from coughkd.audio import SAMPLE_RATE
from training.models.efficientat import EfficientATMel, load_mn04

# AudioSet indices (../shared/models/audioset_class_labels_indices.csv) used by cough_score.
COUGH_LIKE = {"Cough": 47, "Throat clearing": 48, "Sneeze": 49}
COMPETING = {"Speech": 0, "Music": 137}


@dataclass
class TeacherOutput:
    embedding: torch.Tensor  # (B, embed_dim)
    covid_logit: torch.Tensor  # (B,)
    tags: torch.Tensor | None = None  # (B, 527) AudioSet logits, or None for teachers without them
    hidden: torch.Tensor | None = None  # (B, layers + 1, hidden) time-mean of each hidden state, or None


class Teacher(nn.Module):
    """Common interface: 16 kHz waveforms (B, samples) float32 in, TeacherOutput out."""

    sample_rate: int = SAMPLE_RATE
    embed_dim: int

    def forward(self, waveforms: torch.Tensor) -> TeacherOutput:
        raise NotImplementedError


class Upsample2x(nn.Module):
    """Fixed 16 -> 32 kHz resampler: zero stuffing + Kaiser-windowed sinc low-pass, as one strided transposed conv.

    The cut-off (0.95 of the 8 kHz input Nyquist) and 193 taps keep images above 8 kHz small, so mn04 sees what a
    good offline resampler (soxr) would give it. Each polyphase branch is normalised to unit DC gain.
    """

    def __init__(self, half_taps: int = 96, cutoff: float = 0.95, beta: float = 8.0):
        super().__init__()
        n = torch.arange(-half_taps, half_taps + 1, dtype=torch.float64)
        fc = cutoff / 4  # cycles per output sample: the input Nyquist is a quarter of the output rate
        taps = torch.sinc(2 * fc * n) * torch.kaiser_window(2 * half_taps + 1, periodic=False, beta=beta,
                                                            dtype=torch.float64)
        even, odd = n.remainder(2) == 0, n.remainder(2) == 1
        taps[even] /= taps[even].sum()
        taps[odd] /= taps[odd].sum()
        self.register_buffer("taps", taps.float().view(1, 1, -1), persistent=False)
        self.half_taps = half_taps

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose1d(waveforms.unsqueeze(1), self.taps, stride=2, padding=self.half_taps, output_padding=1)
        return y.squeeze(1)


class EfficientATTeacher(Teacher):
    """EfficientAT mn04 (AudioSet tagger, 384-d embedding) with a fine-tunable COVID-19 head.

    The AudioSet classifier is frozen: ``tags`` stay the published tagger's head on top of the (possibly fine-tuned)
    backbone, and no parameter sits unused by the COVID loss (which DistributedDataParallel would reject).
    """

    embed_dim = 384

    def __init__(self, weights: Path | None = None):
        super().__init__()
        self.upsample = Upsample2x()
        self.mel = EfficientATMel()
        self.mn04 = load_mn04(weights)
        self.mn04.classifier.requires_grad_(False)
        self.covid_head = nn.Linear(self.embed_dim, 1)

    def forward(self, waveforms: torch.Tensor) -> TeacherOutput:
        tags, embedding = self.mn04(self.mel(self.upsample(waveforms)))
        return TeacherOutput(embedding, self.covid_head(embedding).squeeze(-1), tags)


def cough_score(tags: torch.Tensor) -> torch.Tensor:
    """Cough-likeness probability (B,) from AudioSet logits (B, 527).

    Rule: c = the highest sigmoid among Cough, Throat clearing and Sneeze (the tagger often confuses them on the same
    sound, and phone coughs often come out as Throat clearing); o = the highest sigmoid among Speech and Music (what
    phone audio and non-cough clips are taken for). score = c * (1 - o): the chance of a cough-like sound with neither
    speech nor music, reading the independent sigmoid outputs as probabilities. Silence and noise score ~0.
    The tagger was trained on 10 s clips and is less sure on a few seconds of phone audio, so expect modest scores
    on true coughs.
    """
    probs = torch.sigmoid(tags)
    c = probs[:, list(COUGH_LIKE.values())].amax(dim=1)
    o = probs[:, list(COMPETING.values())].amax(dim=1)
    return c * (1 - o)


class HFTeacher(Teacher):
    """A wav2vec2-family encoder (Wav2Vec2, HuBERT, WavLM, data2vec-audio) loaded with ``AutoModel``.

    mode "full": everything is fine-tuned; embedding = mean over time of the last hidden state.
    mode "frozen": the encoder is fixed (eval mode, no gradients); a learnt softmax-weighted sum of all hidden
    states (the SUPERB recipe, since lower layers carry more acoustic detail than the last one) is mean-pooled.
    Either way a Linear(hidden, 1) gives the COVID logit, and ``hidden`` holds every hidden state (the input
    embeddings, then each transformer layer's output) averaged over time.
    """

    def __init__(self, name_or_path: str = "facebook/wav2vec2-base", mode: str = "full", normalize: bool | None = None):
        super().__init__()
        from transformers import (  # heavy; only HF teachers need it
            AutoModel,
            Wav2Vec2FeatureExtractor,
        )

        if mode not in ("full", "frozen"):
            raise ValueError(f"mode must be 'full' or 'frozen', not {mode!r}")
        self.mode = mode
        self.encoder = AutoModel.from_pretrained(name_or_path, dtype=torch.float32)
        if normalize is None:
            try:
                normalize = Wav2Vec2FeatureExtractor.from_pretrained(name_or_path).do_normalize
            except OSError:  # no preprocessor_config.json: use the feature extractor's default
                normalize = Wav2Vec2FeatureExtractor().do_normalize
        self.normalize = bool(normalize)
        self.embed_dim = self.encoder.config.hidden_size
        if mode == "frozen":
            self.encoder.requires_grad_(False)
            self.encoder.eval()
            self.layer_weights = nn.Parameter(torch.zeros(self.encoder.config.num_hidden_layers + 1))
        self.covid_head = nn.Linear(self.embed_dim, 1)

    def train(self, mode: bool = True) -> HFTeacher:
        super().train(mode)
        if self.mode == "frozen":
            self.encoder.eval()  # no dropout, layer drop or SpecAugment in a fixed feature extractor
        return self

    def _normalise(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Zero mean, unit variance per clip, as Wav2Vec2FeatureExtractor(do_normalize=True) does."""
        mean = waveforms.mean(dim=1, keepdim=True)
        var = waveforms.var(dim=1, keepdim=True, unbiased=False)
        return (waveforms - mean) / torch.sqrt(var + 1e-7)

    def forward(self, waveforms: torch.Tensor) -> TeacherOutput:
        x = self._normalise(waveforms) if self.normalize else waveforms
        with torch.set_grad_enabled(self.mode == "full" and torch.is_grad_enabled()):
            out = self.encoder(x, output_hidden_states=True)
        hidden = torch.stack([h.mean(dim=1) for h in out.hidden_states], dim=1)  # (B, L+1, H)
        if self.mode == "full":
            embedding = out.last_hidden_state.mean(dim=1)  # not hidden[:, -1]: stable-layer-norm models differ
        else:  # the mean over time of the weighted sum is the weighted sum of the means
            embedding = (torch.softmax(self.layer_weights, dim=0)[:, None] * hidden).sum(dim=1)
        return TeacherOutput(embedding, self.covid_head(embedding).squeeze(-1), None, hidden.detach())


def build_teacher(name: str, **kw) -> Teacher:
    """The teacher called ``name``: "efficientat", else a hub name or local dir of a wav2vec2-family model."""
    if name == "efficientat":
        return EfficientATTeacher(**kw)
    return HFTeacher(name, **kw)





"""Teachers: large pretrained audio models that the small student learns from.

Every teacher takes what the student sees, 16 kHz mono band-limited waveforms (B, samples) float32 (in practice
whole recordings, one at a time; fixed-length crops when fine-tuning), and returns a ``TeacherOutput``: an
embedding, a COVID-19 logit from a small head that ``fine_tune`` trains, and, where the model has them, AudioSet
tag logits (used for the cough/not-cough target) and time-pooled hidden layers (which a student can learn to
predict, DistilHuBERT-style; see losses.Distiller).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from training.models.efficientat import EfficientATMel, load_mn04

SAMPLE_RATE = 16000

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


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else math.nan


def fine_tune(teacher: Teacher, train_windows, train_labels, val_windows, val_labels, epochs: int = 3,
              lr: float = 1e-4, batch_size: int = 32, accelerator: Accelerator | None = None,
              progress: bool = True, train_weights=None,
              val_score: Callable[[np.ndarray], float] | None = None) -> dict:
    """Train the teacher's COVID logit with BCE on equal-length waveforms (N, samples) and labels (N,) in {0, 1}.

    ``train_weights`` (N,) weight each window's loss (e.g. to balance labels within each source, so the recording
    channel carries no label information). ``val_score`` maps the validation logits (in order) to the number to
    maximise, by default the window ROC-AUC; the teacher is left at its best epoch, since a large model fine-tuned
    on a few hundred recordings starts to overfit within a few epochs.
    Runs as is on one device or under ``accelerate launch`` on many. Returns the history:
    {"loss": mean training loss per epoch, "val_auc": validation ROC-AUC per epoch (nan if one class),
    "val_score": the selection score per epoch, "best_epoch": 0-based}.
    """
    if accelerator is None:
        # Layer drop and frozen tag heads leave parameters unused in some steps; DDP must be told.
        accelerator = Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if train_weights is None:
        train_weights = np.ones(len(train_labels), dtype=np.float32)

    def tensor(values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values), dtype=torch.float32)

    train_loader = DataLoader(TensorDataset(tensor(train_windows), tensor(train_labels), tensor(train_weights)),
                              batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(tensor(val_windows), tensor(val_labels)), batch_size=batch_size)
    optimizer = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=lr)
    model, optimizer, train_loader, val_loader = accelerator.prepare(teacher, optimizer, train_loader, val_loader)
    history: dict = {"loss": [], "val_auc": [], "val_score": []}
    best_state, best_score = None, -math.inf
    show = progress and accelerator.is_local_main_process
    for epoch in range(epochs):
        model.train()
        losses = []
        for x, y, w in tqdm(train_loader, desc=f"teacher epoch {epoch + 1}/{epochs}", disable=not show, leave=False):
            loss = (F.binary_cross_entropy_with_logits(model(x).covid_logit, y, reduction="none") * w).mean()
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            losses.append(accelerator.gather(loss.detach()).mean().item())
        model.eval()
        scores, labels = [], []
        with torch.no_grad():
            for x, y in val_loader:
                logit, y = accelerator.gather_for_metrics((model(x).covid_logit, y))
                scores.append(logit.float().cpu().numpy())
                labels.append(y.cpu().numpy())
        scores_, labels_ = np.concatenate(scores), np.concatenate(labels)
        history["loss"].append(float(np.mean(losses)))
        history["val_auc"].append(_auc(labels_, scores_))
        history["val_score"].append(val_score(scores_) if val_score is not None else history["val_auc"][-1])
        if history["val_score"][-1] > best_score:
            best_score, history["best_epoch"] = history["val_score"][-1], epoch
            best_state = {k: v.detach().clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        if show:
            loss, auc, score = history["loss"][-1], history["val_auc"][-1], history["val_score"][-1]
            tqdm.write(f"teacher epoch {epoch + 1}: loss {loss:.4f} val AUC {auc:.3f} val score {score:.3f}")
    if best_state is not None:
        accelerator.unwrap_model(model).load_state_dict(best_state)
    return history

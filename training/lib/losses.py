"""Distillation losses: hard labels, temperature-softened teacher targets, and optional embedding and hidden-layer
matching.

The two heads are binary (sigmoid) outputs, so "soft targets with temperature" means matching the teacher's
tempered Bernoulli distribution: BCE(sigmoid(s / T), sigmoid(t / T)) * T^2, the binary analogue of Hinton et al.
Windows without a COVID-19 label (generated non-cough audio) get weight 0 in that head's loss; labelled windows
are weighted so that, within each source, positives and negatives count equally (see source_balanced_weights).
A student whose COVID-19 head has several members (students.LogMelCNN) gets these losses on each member; one
fitted outright before SGD (its ``fit_readout``) is fitted to the same ``covid_loss``.

Hidden-layer matching (DistilHuBERT, Chang et al. ICASSP 2022) gives the student one small prediction head per
chosen teacher layer; each regresses that layer's time-pooled hidden state from the student's clip embedding
with DistilHuBERT's loss, L1 plus -log sigmoid(cosine similarity). It needs a teacher with hidden layers (the
wav2vec2 family; EfficientAT mn04 has none cached) and is off unless its weight is above 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class DistillWeights:
    hard: float = 0.5
    soft: float = 0.5
    temperature: float = 2.0
    cough: float = 0.5
    embedding: float = 0.0
    layers: float = 0.0


def soft_bce(student_logit: torch.Tensor, teacher_logit: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-item BCE between tempered sigmoids, scaled by T^2 so gradients keep their size as T changes."""
    target = torch.sigmoid(teacher_logit / temperature)
    return F.binary_cross_entropy_with_logits(student_logit / temperature, target, reduction="none") * temperature**2


def layer_matching_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DistilHuBERT's loss over (B, layers, hidden) predictions and targets: per layer and clip the mean absolute
    error plus -log sigmoid(cosine similarity), averaged over both."""
    l1 = (predicted - target).abs().mean(dim=-1)
    cosine = -F.logsigmoid(F.cosine_similarity(predicted, target, dim=-1))
    return (l1 + cosine).mean()


def source_balanced_weights(sources: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row weights under which every (source, label) cell carries the same total weight (mean weight 1).

    Positives are 71% of call-centre but about 18% of Telegram recordings here: unweighted, "which channel is
    this?" predicts the label. Balanced, the channel tells a model nothing about the label, so it has to learn
    from the cough. Rows labelled -1 (no COVID-19 label) get weight 0.
    """
    sources, labels = np.asarray(sources), np.asarray(labels)
    weights = np.zeros(len(labels), dtype=np.float32)
    labelled = labels >= 0
    cells = {(s, y) for s, y in zip(sources[labelled], labels[labelled])}
    for source, label in cells:
        rows = labelled & (sources == source) & (labels == label)
        weights[rows] = labelled.sum() / (len(cells) * rows.sum())
    return weights


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1e-8)


class Distiller(nn.Module):
    """The student plus what only training needs (the embedding projection, the layer prediction heads), so one
    wrapper can be handed to accelerate/DDP and the exported student stays lean. ``teacher_layers``: how many
    teacher layers are matched and their width, (0, 0) for none."""

    def __init__(self, student: nn.Module, weights: DistillWeights, teacher_dim: int,
                 teacher_layers: tuple[int, int] = (0, 0)):
        super().__init__()
        self.student = student
        self.weights = weights
        self.projection = nn.Linear(student.embed_dim, teacher_dim) if weights.embedding > 0 else None
        n_layers, width = teacher_layers
        if weights.layers > 0 and n_layers == 0:
            raise ValueError("layer matching has a weight but no teacher layers to match")
        self.layer_heads = (nn.ModuleList(nn.Linear(student.embed_dim, width) for _ in range(n_layers))
                            if weights.layers > 0 else None)

    def covid_losses(self, covid_logit: torch.Tensor,
                     batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(hard, soft) COVID-19 losses of one member's logits, weighted as described above."""
        weight = batch["covid_weight"]
        label = batch["covid_label"].clamp(min=0).float()
        hard = _weighted_mean(F.binary_cross_entropy_with_logits(covid_logit, label, reduction="none"), weight)
        soft = _weighted_mean(soft_bce(covid_logit, batch["teacher_covid_logit"], self.weights.temperature), weight)
        return hard, soft

    def covid_loss(self, covid_logit: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of one member's hard and soft losses: what each member of the COVID-19 head minimises."""
        hard, soft = self.covid_losses(covid_logit, batch)
        return self.weights.hard * hard + self.weights.soft * soft

    def forward(self, x: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss parts for one batch. ``batch``: covid_label (-1 = none), covid_weight (0 where no label),
        teacher_covid_logit, cough_target (soft, 0..1), teacher_embedding, and with layer matching teacher_layers
        (B, layers, hidden)."""
        covid_logits, cough_logit, student_embedding = self.student.members(x)
        w = self.weights
        hard = soft = torch.zeros((), device=x.device)
        for covid_logit in covid_logits.unbind(dim=-1):  # each member learns as if alone
            member_hard, member_soft = self.covid_losses(covid_logit, batch)
            hard, soft = hard + member_hard, soft + member_soft
        cough = F.binary_cross_entropy_with_logits(cough_logit, batch["cough_target"])
        parts = {"hard": hard, "soft": soft, "cough": cough}
        total = w.hard * hard + w.soft * soft + w.cough * cough
        if self.projection is not None:
            target = F.normalize(batch["teacher_embedding"], dim=-1)
            embedding = 1 - F.cosine_similarity(self.projection(student_embedding), target, dim=-1).mean()
            parts["embedding"] = embedding
            total = total + w.embedding * embedding
        if self.layer_heads is not None:
            predicted = torch.stack([head(student_embedding) for head in self.layer_heads], dim=1)
            parts["layers"] = layer_matching_loss(predicted, batch["teacher_layers"])
            total = total + w.layers * parts["layers"]
        parts["total"] = total
        return parts

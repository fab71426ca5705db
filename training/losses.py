"""Distillation losses: hard labels, temperature-softened teacher targets, and optional embedding matching.

The two heads are binary (sigmoid) outputs, so "soft targets with temperature" means matching the teacher's
tempered Bernoulli distribution: BCE(sigmoid(s / T), sigmoid(t / T)) * T^2, the binary analogue of Hinton et al.
Windows without a COVID-19 label (generated non-cough audio) are masked out of that head's loss.
"""
from __future__ import annotations

from dataclasses import dataclass

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


def soft_bce(student_logit: torch.Tensor, teacher_logit: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-item BCE between tempered sigmoids, scaled by T^2 so gradients keep their size as T changes."""
    target = torch.sigmoid(teacher_logit / temperature)
    return F.binary_cross_entropy_with_logits(student_logit / temperature, target, reduction="none") * temperature**2


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


class Distiller(nn.Module):
    """The student plus what only training needs (the embedding projection), so one wrapper can be handed to
    accelerate/DDP and the exported student stays lean."""

    def __init__(self, student: nn.Module, weights: DistillWeights, teacher_dim: int):
        super().__init__()
        self.student = student
        self.weights = weights
        self.projection = nn.Linear(student.embed_dim, teacher_dim) if weights.embedding > 0 else None

    def forward(self, x: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss parts for one batch. ``batch``: covid_label (-1 = none), teacher_covid_logit, cough_target (soft,
        0..1), teacher_embedding."""
        covid_logit, cough_logit, student_embedding = self.student(x, with_embedding=True)
        w = self.weights
        labelled = (batch["covid_label"] >= 0).float()
        hard = _masked_mean(
            F.binary_cross_entropy_with_logits(covid_logit, batch["covid_label"].clamp(min=0).float(), reduction="none"),
            labelled,
        )
        soft = _masked_mean(soft_bce(covid_logit, batch["teacher_covid_logit"], w.temperature), labelled)
        cough = F.binary_cross_entropy_with_logits(cough_logit, batch["cough_target"])
        parts = {"hard": hard, "soft": soft, "cough": cough}
        total = w.hard * hard + w.soft * soft + w.cough * cough
        if self.projection is not None:
            target = F.normalize(batch["teacher_embedding"], dim=-1)
            embedding = 1 - F.cosine_similarity(self.projection(student_embedding), target, dim=-1).mean()
            parts["embedding"] = embedding
            total = total + w.embedding * embedding
        parts["total"] = total
        return parts

"""DistilHuBERT-style hidden-layer matching: the student's heads regress a wav2vec2-family teacher's cached layers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from coughkd.features import N_MELS
from tests.test_teacher_step import TINY, toy_clips
from training import distill
from training.lib.clips import ClipSet, features
from training.lib.configurator import config_keys
from training.lib.distillation import train_student
from training.lib.losses import Distiller, DistillWeights, layer_matching_loss
from training.lib.teaching import teacher_outputs
from training.models.students import LogMelCNN
from training.models.teachers import build_teacher


def student_config(**overrides) -> dict:
    """distill's own defaults, a CNN student, and the overrides."""
    return {**{k: getattr(distill, k) for k in config_keys(vars(distill))}, "family": "cnn", **overrides}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[ClipSet, list, dict[str, np.ndarray]]:
    """Toy clips, their features, and the teacher cache of a tiny random wav2vec2 (two layers, width 32)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-w2v")
    Wav2Vec2Model(Wav2Vec2Config(**TINY)).save_pretrained(path)
    clips = toy_clips(48, 0)
    feats = features(clips, progress=False)
    outputs = teacher_outputs(build_teacher(str(path)), feats)
    cache = {"covid_logit": np.where(clips.covid_label == 1, 2.0, -2.0).astype(np.float32),
             "embedding": outputs["embedding"], "cough_target": clips.is_cough.astype(np.float32),
             "hidden_states": outputs["hidden_states"]}
    return clips, feats, cache


def test_layer_matching_is_off_by_default() -> None:
    assert distill.layer_weight == 0.0
    distiller = Distiller(LogMelCNN(), DistillWeights(), teacher_dim=16, teacher_layers=(3, 32))
    assert distiller.layer_heads is None
    x = torch.randn(4, N_MELS, 101)
    batch = {"covid_label": torch.tensor([1, 0, 1, -1]), "covid_weight": torch.tensor([1.0, 1.0, 1.0, 0.0]),
             "teacher_covid_logit": torch.zeros(4), "cough_target": torch.ones(4),
             "teacher_embedding": torch.randn(4, 16)}
    assert "layers" not in distiller(x, batch)


def test_layer_matching_loss_is_smallest_on_the_target() -> None:
    target = torch.randn(8, 3, 32)
    assert layer_matching_loss(target, target) < layer_matching_loss(target + 0.5 * torch.randn(8, 3, 32), target)
    assert layer_matching_loss(target, target) < layer_matching_loss(-target, target)


def test_layer_matching_lowers_the_matching_loss_on_a_tiny_random_teacher(tiny_run) -> None:
    clips, feats, cache = tiny_run
    assert cache["hidden_states"].shape == (len(clips), 3, 32)
    checkpoint = train_student(clips, cache, student_config(epochs=6, layer_weight=1.0, layers="1,2"), feats)
    losses = [epoch["layers"] for epoch in checkpoint["history"]]
    assert losses[-1] < 0.95 * losses[0], losses  # 1.53 -> 1.38 over 18 steps when written
    assert not any(k.startswith("layer_heads") for k in checkpoint["state_dict"]), "the heads are not shipped"
    assert checkpoint["distill"]["layer_weight"] == 1.0 and checkpoint["distill"]["layers"] == "1,2"


def test_layer_matching_needs_hidden_layers_and_valid_indices(tiny_run, tmp_path: Path) -> None:
    clips, feats, cache = tiny_run
    mn04_like = {k: v for k, v in cache.items() if k != "hidden_states"}
    with pytest.raises(SystemExit, match="hidden layers"):
        train_student(clips, mn04_like, student_config(epochs=1, layer_weight=1.0), feats)
    with pytest.raises(SystemExit, match="0..2"):
        train_student(clips, cache, student_config(epochs=1, layer_weight=1.0, layers="4,8,12"), feats)

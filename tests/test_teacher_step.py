"""The teacher step (probes, cross-fitting, cache) and the student's crop batching, on small made-up clip sets."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from transformers import Wav2Vec2Config, Wav2Vec2Model

from training import compare_probes, teacher
from training.lib.clips import NO_LABEL, ClipSet
from training.lib.distillation import RandomCrops, SimilarLengths
from training.lib.probe import cross_fitted_logits, probe_logits

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
        "conv_dim": (32, 32), "conv_stride": (10, 8), "conv_kernel": (10, 8), "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2}


def labelled_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    sources = np.where(np.arange(n) % 4 < 2, "a", "b")
    return rng.standard_normal((n, 20)), labels, sources


def test_probe_finds_signal_in_each_source() -> None:
    x, labels, sources = labelled_rows(200, 0)
    x[:, 0] += np.where(sources == "a", 2.0, -2.0) * labels  # opposite directions: only per-source probes see both
    train = np.arange(200) < 150
    logits = probe_logits(x, labels, sources, train, ~train)
    for source in ("a", "b"):
        held = sources[~train] == source
        assert roc_auc_score(labels[~train][held], logits[held]) > 0.9


def test_cross_fitting_does_not_hand_the_student_memorised_labels() -> None:
    x, labels, sources = labelled_rows(160, 1)  # pure noise: nothing to learn
    x = np.c_[x, np.random.default_rng(2).standard_normal((160, 200))]
    train = np.ones(160, dtype=bool)
    in_sample = probe_logits(x, labels, sources, train, train)
    crossed = cross_fitted_logits(x, labels, sources, train, np.zeros(160, dtype=bool))
    assert roc_auc_score(labels, in_sample) > 0.8  # a probe scoring its own training rows looks clairvoyant
    assert abs(roc_auc_score(labels, crossed) - 0.5) < 0.15  # cross-fitted scores show there is no signal


def test_a_source_too_small_to_fit_gets_no_opinion() -> None:
    x, labels, sources = labelled_rows(40, 3)
    sources[:] = "a"
    sources[[0, 1]] = "b"  # one positive and one negative: no probe can be fitted
    logits = probe_logits(x, labels, sources, np.arange(40) >= 2, np.arange(40) < 2)
    assert logits.tolist() == [0.0, 0.0]


def toy_clips(n: int, seed: int) -> ClipSet:
    """Tone-in-noise (label 1) vs noise (label 0) clips of different lengths, two sources, plus generated audio."""
    rng = np.random.default_rng(seed)
    waveforms, labels = [], np.arange(n) % 2
    for label in labels:
        t = np.arange(int(rng.uniform(0.6, 2.5) * 16000)) / 16000
        waveforms.append((0.2 * rng.standard_normal(t.size) + label * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    split = np.array(["train"] * 4 + ["val"] * 2 + ["test"] * 2)[np.arange(n) % 8]
    waveforms += [(0.3 * rng.standard_normal(16000)).astype(np.float32) for _ in range(4)]
    return ClipSet.build(waveforms, recording=np.r_[np.arange(n), [-1] * 4], split=np.r_[split, ["train"] * 4],
                         covid_label=np.r_[labels, [NO_LABEL] * 4],
                         source=np.r_[np.where(np.arange(n) // 8 % 2 == 0, "a", "b"), ["generated:noise"] * 4],
                         is_cough=np.r_[np.ones(n), np.zeros(4)].astype(np.int8))


@pytest.mark.slow
def test_teacher_step_caches_every_clip_with_a_tiny_hf_teacher(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model_dir = tmp_path / "tiny"
    Wav2Vec2Model(Wav2Vec2Config(**TINY)).save_pretrained(model_dir)
    run = tmp_path / "run"
    run.mkdir()
    clips = toy_clips(64, 0)
    clips.save(run / "clips.npz")
    rows = [{"sha256": f"{i:064x}"} for i in range(64)]
    (run / "recordings.json").write_text(json.dumps(rows))

    summary = teacher.main([f"--run_dir={run}", f"--teacher={model_dir}", "--finetune_epochs=1", "--mode=frozen",
                            "--batch_size=8"])
    with np.load(run / "teacher_cache.npz") as cache:
        assert cache["covid_logit"].shape == (68,) and cache["embedding"].shape == (68, 32)
        assert cache["hidden_states"].shape == (68, 2 + 1, 32)  # every hidden state, for layer matching
        np.testing.assert_array_equal(cache["cough_target"], clips.is_cough)  # no AudioSet tags: the known labels
        assert np.all(cache["covid_logit"][-4:] == 0.0)  # generated audio carries no COVID-19 label
    assert len(summary["history"]["loss"]) == 1
    assert summary["description"].startswith(f"{model_dir} (wav2vec2, 2 transformer layers of width 32")
    assert "fine-tuned" in summary["description"] and "encoder frozen" in summary["description"]
    assert summary["val_within_source_auc"] > 0.5  # a 440 Hz tone is easy, even for random features + MFCCs
    test_scores = json.loads((run / "teacher_test_scores.json").read_text())
    assert len(test_scores) == 16 and all(0.0 <= p <= 1.0 for p in test_scores.values())

    table = compare_probes.main([f"--run_dir={run}", "--folds=2", "--repeats=1"])
    members = ("embedding", "mfcc", "mean of both")
    assert set(table) == {f"{m}, {f} probe" for m in members for f in ("pooled", "per-source")}
    assert table["mfcc, pooled probe"]["a"] > 0.9  # MFCCs see a 440 Hz tone at once


def test_similar_lengths_batches_cover_every_clip_once_per_epoch() -> None:
    lengths = np.random.default_rng(0).uniform(0.5, 10.0, 101)
    sampler = SimilarLengths(lengths, 8, seed=0)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(sampler) == 13
    assert sorted(i for b in first for i in b) == list(range(101))
    assert first != second  # a new order every epoch
    spread = [lengths[b].max() / lengths[b].min() for b in first if len(b) > 1]
    assert np.median(spread) < 1.25  # neighbours in length, so cropping to the shortest loses little


def test_random_crops_cut_a_batch_to_its_shortest_clip() -> None:
    inputs = [np.arange(n, dtype=np.float32)[None].repeat(2, 0) for n in (50, 80, 65)]
    collate = RandomCrops(inputs, {"label": np.array([1, 0, 1])}, seed=0)
    x, targets = collate([0, 1, 2])
    assert x.shape == (3, 2, 50) and targets["label"].tolist() == [1, 0, 1]
    assert torch.equal(x[0, 0], torch.arange(50, dtype=torch.float32))  # the shortest clip is taken whole
    assert torch.all(torch.diff(x[1, 0]) == 1)  # a contiguous stretch of the longer ones

"""The distillation ablation of training.crossval (--ablation=True) on a made-up run directory: each fold's extra
students get the recipe with one loss switched off, their rows and paired differences are added, and the shipped
recipe's own figures do not move."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training import crossval, distill
from training.lib.card import CROSSVAL_END, CROSSVAL_START, section
from training.lib.clips import NO_LABEL, ClipSet
from training.lib.configurator import config_keys
from training.models.students import SoundTypeCNN, build_student

HARD_ONLY, TEACHER_ONLY = crossval.ABLATIONS


def coughs(label: int, rng: np.random.Generator) -> np.ndarray:
    """1.5 s of quiet noise with two loud bursts (events for coughkd.events); positives' bursts carry a 440 Hz
    tone."""
    waveform = 0.003 * rng.standard_normal(24000)
    t = np.arange(4800) / 16000
    for start in (3200, 14400):
        waveform[start:start + 4800] += 0.3 * rng.standard_normal(4800) + label * 0.5 * np.sin(2 * np.pi * 440 * t)
    return waveform.astype(np.float32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """What crossval reads from a run: clips, teacher cache, the student's distillation config, the gate."""
    rng = np.random.default_rng(0)
    run = tmp_path_factory.mktemp("run")
    n = 36
    labels = np.arange(n) % 2
    split = np.where(np.arange(n) < 32, np.where(np.arange(n) % 4 == 0, "val", "train"), "test")
    clips = ClipSet.build([coughs(int(y), rng) for y in labels] + [0.1 * rng.standard_normal(16000) for _ in range(4)],
                          recording=np.r_[np.arange(n), [-1] * 4], split=np.r_[split, ["train"] * 4],
                          covid_label=np.r_[labels, [NO_LABEL] * 4],
                          source=np.r_[np.where(np.arange(n) // 2 % 2 == 0, "a", "b"), ["generated:noise"] * 4],
                          is_cough=np.r_[np.ones(n), np.zeros(4)].astype(np.int8))
    clips.save(run / "clips.npz")
    embedding = rng.standard_normal((n + 4, 16)).astype(np.float32)
    embedding[:n, 0] += 2 * labels
    np.savez(run / "teacher_cache.npz", covid_logit=np.zeros(n + 4, np.float32), embedding=embedding,
             cough_target=clips.is_cough.astype(np.float32))
    recipe = {k: getattr(distill, k) for k in config_keys(vars(distill)) if k not in ("run_dir", "family")}
    torch.save({"distill": recipe}, run / "student_cnn.pt")
    (run / "teacher_summary.json").write_text(json.dumps({"mfcc_probe": False}))
    torch.manual_seed(0)
    torch.save({"members": [SoundTypeCNN().state_dict()], "threshold": 0.0}, run / "sound_cnn.pt")
    return run


def untrained_students(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """train_student replaced by an untrained CNN, seeded by the loss weights so that each variant scores
    differently; returns the configs it is called with."""
    calls = []

    def train_student(clips: ClipSet, teacher: dict, config: dict, feats: list | None = None) -> dict:
        calls.append(dict(config))
        torch.manual_seed(int(100 * config["hard_weight"] + 10 * config["soft_weight"]))
        return {"family": config["family"], "config": {}, "state_dict": build_student(config["family"]).state_dict()}

    monkeypatch.setattr(crossval, "train_student", train_student)
    return calls


def crossval_twice(run_dir: Path, tmp_path: Path) -> tuple[dict, dict, Path]:
    """(the plain report, the ablation's report, the card the ablation wrote its section to)."""
    card = tmp_path / "CARD.md"
    card.write_text(f"# card\n{CROSSVAL_START}\nnot yet\n{CROSSVAL_END}\n")
    common = [f"--run_dir={run_dir}", "--folds=2", "--epochs=1", "--n_boot=20"]
    plain = crossval.main([*common, "--card=", f"--report_dir={tmp_path / 'plain'}"])
    ablated = crossval.main([*common, "--ablation=True", f"--card={card}", f"--report_dir={tmp_path / 'ablated'}"])
    return plain, ablated, card


def test_ablation_students_switch_off_one_loss_each(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    calls = untrained_students(monkeypatch)
    plain, ablated, card = crossval_twice(run_dir, tmp_path)
    recipe = plain["student_config"]
    hard_only, teacher_only = {**recipe, "soft_weight": 0.0}, {**recipe, "hard_weight": 0.0}
    assert calls == [recipe] * 2 + [recipe] * 2 + [hard_only, teacher_only] * 2, \
        "one student per fold; with the ablation, then two more per fold"
    check_reports(plain, ablated, card, tmp_path)


@pytest.mark.slow
def test_ablation_with_real_distillation(run_dir: Path, tmp_path: Path) -> None:
    check_reports(*crossval_twice(run_dir, tmp_path), tmp_path)


def check_reports(plain: dict, ablated: dict, card: Path, tmp_path: Path) -> None:
    """The ablation's rows and paired differences are there, in the json and the card; the plain run has none, and
    every figure the two runs share is the same."""
    assert "ablation" not in plain and set(crossval.ABLATIONS).isdisjoint(plain["per_source_auc"])
    assert "What distillation adds" not in section(plain["results"], plain)
    assert set(ablated["per_source_auc"]) == set(plain["per_source_auc"]) | set(crossval.ABLATIONS)
    for name, aucs in plain["per_source_auc"].items():
        assert ablated["per_source_auc"][name] == pytest.approx(aucs), f"{name} moved with the ablation on"

    oof = ablated["out_of_fold"]
    for name in crossval.ABLATIONS:
        assert not np.allclose(oof[name], oof[crossval.STUDENT]), f"{name} is the shipped student again"
    assert not np.allclose(oof[HARD_ONLY], oof[TEACHER_ONLY])

    assert set(ablated["ablation"]) == set(crossval.ABLATIONS)
    auc = ablated["per_source_auc"]
    for source in ("a", "b"):
        with_minus_without = ablated["ablation"][HARD_ONLY]["per_source"][source]["difference"]
        assert with_minus_without == pytest.approx(auc[crossval.STUDENT][source] - auc[HARD_ONLY][source])
    saved = json.loads((tmp_path / "ablated" / "crossval.json").read_text())
    assert saved["ablation"][HARD_ONLY]["per_source"]["a"]["difference"] == pytest.approx(
        ablated["ablation"][HARD_ONLY]["per_source"]["a"]["difference"])
    text = card.read_text()
    assert "What distillation adds" in text and f"| {HARD_ONLY} | " in text and "not yet" not in text
    assert f"{ablated['ablation'][HARD_ONLY]['pooled']['difference']:+.3f} [" in text

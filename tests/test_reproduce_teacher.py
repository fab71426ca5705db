"""`python -m training.reproduce --teacher=DIR`: the whole pipeline from a wav2vec2-family teacher (a tiny random
one here), and what the model folder, manifest and card then say of it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

import coughkd
from tests.test_teacher_step import TINY


@pytest.mark.slow
def test_reproduce_names_the_teacher_it_was_given(cough_data: Path, shared_models: Path, tmp_path: Path) -> None:
    from training import reproduce

    torch.manual_seed(0)
    teacher_dir = tmp_path / "tiny-w2v"
    Wav2Vec2Model(Wav2Vec2Config(**TINY)).save_pretrained(teacher_dir)
    run, out, card, reports = tmp_path / "run", tmp_path / "model", tmp_path / "CARD.md", tmp_path / "reports"
    reproduce.main([f"--run_dir={run}", f"--out_dir={out}", f"--card={card}", f"--report_dir={reports}",
                    f"--teacher={teacher_dir}", "--finetune_epochs=1", "--mode=frozen", "--layer_weight=1.0",
                    "--layers=1,2", "--limit=40", "--non_cough_clips=20", "--student_epochs=1", "--gate_epochs=1",
                    "--n_boot=50", "--calibration_windows=30"])

    summary = json.loads((run / "teacher_summary.json").read_text())
    description = summary["description"]
    assert description.startswith(f"{teacher_dir} (wav2vec2, 2 transformer layers of width 32")
    assert "fine-tuned on 2 s crops" in description and "encoder frozen" in description
    with np.load(run / "teacher_cache.npz") as cache:
        assert cache["embedding"].shape[1] == 32 and cache["hidden_states"].shape[1:] == (3, 32)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_id"].startswith("coughkd-cnn-tiny-w2v-") and manifest["model_id"].endswith("-s0")
    assert coughkd.load(out).model_id == manifest["model_id"], "the model folder names its teacher"
    teacher = manifest["teacher"]
    assert teacher["model"] == str(teacher_dir) and teacher["name"].startswith(description)
    assert "sound types (the gate): EfficientAT mn04's AudioSet tags" in teacher["name"]
    assert teacher["val_within_source_auc"] == summary["val_within_source_auc"], "the run's own teacher figure"
    shipped = torch.load(run / "student_cnn.pt", map_location="cpu", weights_only=False)
    assert shipped["distill"]["layer_weight"] == 1.0 and shipped["distill"]["layers"] == "1,2"

    text = card.read_text()
    assert f"- Teacher: {description}, run once over each whole" in text
    assert "the sound-type gate's teacher is EfficientAT mn04" in text
    assert f"Teacher within-source AUC: validation {summary['val_within_source_auc']:.3f}" in text
    assert "predicting the teacher's hidden layers 1,2 (weight 1.0)" in text
    assert "learns from\n  the known labels alone (this teacher has no AudioSet tags)" in text
    assert "mn04's AudioSet Cough" not in text, "the students' cough head had no AudioSet tags to learn from"

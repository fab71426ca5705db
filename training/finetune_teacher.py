"""Step 2: fine-tune the teacher on the training windows, then cache its outputs for every window.

    python -m training.finetune_teacher --run_dir=runs/latest                      # EfficientAT mn04 (shipped)
    python -m training.finetune_teacher --teacher=facebook/wav2vec2-base --mode=frozen
    accelerate launch -m training.finetune_teacher --teacher=facebook/wav2vec2-base

The cache (``teacher_cache.npz``: covid_logit, embedding, cough_target per window) is what makes student runs
cheap: the teacher is run once, with a progress bar, and never again.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from tqdm import tqdm

from training.configurator import parse_overrides
from training.evaluate import within_source_auc
from training.losses import source_balanced_weights
from training.teachers import Teacher, build_teacher, cough_score, fine_tune
from training.windows import WindowSet, clip_scores

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
teacher = "efficientat"  # or a wav2vec2-family hub name / local directory
mode = "full"  # HF teachers: "full" fine-tuning, or "frozen" encoder with a learnt weighted sum of hidden layers
frozen_blocks = 11  # EfficientAT: keep features.0..10 fixed (low-level filters; saves most of the backward pass)
epochs = 5  # the best validation epoch is kept
learning_rate = 1e-4
batch_size = 32
tag_weight = 0.5  # cough target = (1 - w) * known label (dataset cough / generated non-cough) + w * teacher's tags
seed = 0
# --------------------------------------------------------------------------------------------------------------------


def build(config: dict) -> Teacher:
    if config["teacher"] == "efficientat":
        model = build_teacher("efficientat")
        model.mn04.features[: config["frozen_blocks"]].requires_grad_(False)
        return model
    return build_teacher(config["teacher"], mode=config["mode"])


@torch.no_grad()
def teacher_outputs(model: Teacher, waveforms: np.ndarray, batch: int = 128) -> dict[str, np.ndarray]:
    model.eval()
    device = next(model.parameters()).device  # fine_tune leaves the teacher where accelerate put it
    out: dict[str, list[np.ndarray]] = {"covid_logit": [], "embedding": [], "cough_score": []}
    for i in tqdm(range(0, len(waveforms), batch), desc="caching teacher outputs", unit="batch"):
        result = model(torch.from_numpy(waveforms[i:i + batch]).to(device))
        out["covid_logit"].append(result.covid_logit.cpu().numpy())
        out["embedding"].append(result.embedding.cpu().numpy())
        if result.tags is not None:
            out["cough_score"].append(cough_score(result.tags).cpu().numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items() if v}


def cough_target(windows: WindowSet, outputs: dict[str, np.ndarray], tag_weight: float) -> np.ndarray:
    """Soft cough/not-cough target: what we know (every dataset clip is a cough, generated audio is not), blended
    with the AudioSet tagger's opinion where the teacher has tags."""
    known = windows.is_cough.astype(np.float32)
    if "cough_score" not in outputs:
        return known
    return (1 - tag_weight) * known + tag_weight * outputs["cough_score"]


def main(argv: list[str]) -> dict:
    config = parse_overrides({k: globals()[k] for k in _CONFIG_KEYS}, argv)
    torch.manual_seed(config["seed"])
    run = Path(config["run_dir"])
    windows = WindowSet.load(run / "windows.npz")
    model = build(config)
    coughs = windows.is_cough == 1
    train, val = coughs & (windows.split == "train"), coughs & (windows.split == "val")
    val_windows = windows.subset(val)

    def val_score(logits: np.ndarray) -> float:
        """Recording-level AUC within each source, the figure that matters, not the channel-confounded pool."""
        clips = clip_scores(val_windows, logits)
        return within_source_auc(clips.label, clips.probability, clips.source)

    history = fine_tune(model, windows.waveforms[train], windows.covid_label[train], windows.waveforms[val],
                        windows.covid_label[val], epochs=config["epochs"], lr=config["learning_rate"],
                        batch_size=config["batch_size"], val_score=val_score,
                        train_weights=source_balanced_weights(windows.source[train], windows.covid_label[train]))
    if not PartialState().is_main_process:  # under `accelerate launch`, one process caches and writes
        return {"teacher": config["teacher"], "history": history}
    outputs = teacher_outputs(model, windows.waveforms)
    np.savez(run / "teacher_cache.npz", covid_logit=outputs["covid_logit"], embedding=outputs["embedding"],
             cough_target=cough_target(windows, outputs, config["tag_weight"]))
    torch.save({"teacher": config["teacher"], "mode": config["mode"], "state_dict": model.state_dict()},
               run / "teacher.pt")

    recordings = json.loads((run / "recordings.json").read_text())
    summary = {"teacher": config["teacher"], "history": history}
    for name in ("val", "test"):
        part = windows.split == name
        clips = clip_scores(windows.subset(part), outputs["covid_logit"][part])
        summary[f"{name}_within_source_auc"] = within_source_auc(clips.label, clips.probability, clips.source)
        print(f"teacher {name}: within-source clip AUC {summary[f'{name}_within_source_auc']:.3f}")
        scores = {recordings[i]["sha256"]: float(p) for i, p in zip(clips.recording, clips.probability)}
        (run / f"teacher_{name}_scores.json").write_text(json.dumps(scores, indent=1))
    (run / "teacher_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


_CONFIG_KEYS = ("run_dir", "teacher", "mode", "frozen_blocks", "epochs", "learning_rate", "batch_size", "tag_weight",
                "seed")

if __name__ == "__main__":
    main(sys.argv[1:])

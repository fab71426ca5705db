"""Step 2: the teacher's view of every clip, computed once and cached: embedding, cough target, COVID-19 logit.

    python -m training.teacher --run_dir=runs/latest                                   # EfficientAT mn04 (shipped)
    python -m training.teacher --teacher=facebook/wav2vec2-base --finetune_epochs=3 --mode=frozen
    accelerate launch -m training.teacher --teacher=facebook/wav2vec2-base --finetune_epochs=3

The pretrained model embeds each whole clip (as the student sees it: band-limited, one pass over the recording)
and tags it with AudioSet classes where it can. Its COVID-19 logit is the mean of two linear probes
(training.lib.probe): one on the model's embedding, one on MFCC statistics of the same clip (the classic cough
features); the pair beat either alone in cross-validation (docs/experiments.md). Training clips get cross-fitted
logits.
Optionally the model is first fine-tuned (training.lib.teaching.fine_tune) on 2 s crops around each clip's first cough.

The cache (``teacher_cache.npz``: covid_logit, embedding, cough_target per clip, and for wav2vec2-family teachers
hidden_states, each hidden layer's time-mean, which distillation can match) is what makes student runs cheap: the
teacher is run once, with a progress bar, and never again. Under ``accelerate launch`` every process fine-tunes;
the main process alone embeds the clips and writes the cache.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from training.lib.clips import ClipFeatures, ClipSet, clip_scores, features
from training.lib.configurator import configure
from training.lib.losses import source_balanced_weights
from training.lib.metrics import within_source_auc
from training.lib.probe import covid_logits
from training.lib.teaching import cough_target, crop, fine_tune, teacher_outputs
from training.models.teachers import HFTeacher, Teacher, build_teacher

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
teacher = "efficientat"  # or a wav2vec2-family hub name / local directory
mode = "full"  # HF teachers when fine-tuned: "full", or "frozen" encoder with a learnt weighted sum of hidden layers
finetune_epochs = 0  # > 0: fine-tune on 2 s crops first (the best validation epoch is kept); 0: pretrained as is
frozen_blocks = 11  # EfficientAT fine-tuning: keep features.0..10 fixed (low-level filters; most of the backward pass)
learning_rate = 1e-4
batch_size = 32
mfcc_probe = True  # ensemble the embedding probe with an MFCC-statistics probe
tag_weight = 0.5  # cough target = (1 - w) * known label (dataset cough / generated non-cough) + w * teacher's tags
seed = 0
# --------------------------------------------------------------------------------------------------------------------

MN04 = "EfficientAT mn04 (MobileNetV3, AudioSet-pretrained, mAP 0.432, MIT licence, Schmid et al. ICASSP 2023)"


def build(config: dict) -> Teacher:
    if config["teacher"] == "efficientat":
        model = build_teacher("efficientat")
        model.mn04.features[: config["frozen_blocks"]].requires_grad_(False)
        return model
    return build_teacher(config["teacher"], mode=config["mode"])


def describe(model: Teacher, config: dict, history: dict | None) -> str:
    """The teacher in words, for the model card and the manifest: which model, how large, which embedding the
    probes read, and whether and how it was fine-tuned."""
    what, how, frozen = MN04, f"blocks from features.{config['frozen_blocks']} up", "frozen"
    if isinstance(model, HFTeacher):
        c = model.encoder.config
        parameters = sum(p.numel() for p in model.encoder.parameters())
        pooled = "its last layer" if model.mode == "full" else "a weighted sum of its hidden layers"
        what = (f"{config['teacher']} ({c.model_type}, {c.num_hidden_layers} transformer layers of width "
                f"{c.hidden_size}, {parameters:,} parameters; embedding: the time-mean of {pooled})")
        how = "every layer" if model.mode == "full" else "encoder frozen, layer weights and head learnt"
        frozen += " (equal layer weights)" if model.mode == "frozen" else ""
    if history is None:
        return f"{what}, {frozen}"
    epochs = len(history["loss"])
    kept = f", epoch {history['best_epoch'] + 1} kept by validation AUC" if "best_epoch" in history else ""
    return (f"{what}, fine-tuned on 2 s crops of the training recordings ({how}; {epochs} epoch"
            f"{'s' if epochs > 1 else ''}{kept})")














def fine_tune_on_crops(model: Teacher, clips: ClipSet, feats: list[ClipFeatures], config: dict) -> dict:
    """Fine-tune the upper layers through the teacher's own COVID-19 head, so the embedding the probes read carries
    more of the task; the best epoch by within-source validation AUC is kept."""
    labelled = clips.recording >= 0
    train, val = labelled & (clips.split == "train"), labelled & (clips.split == "val")
    crops = np.stack([crop(f) for f in feats])
    val_clips = clips.subset(val)

    def val_score(logits: np.ndarray) -> float:
        scores = clip_scores(val_clips, logits)
        return within_source_auc(scores.label, scores.probability, scores.source)

    return fine_tune(model, crops[train], clips.covid_label[train], crops[val], clips.covid_label[val],
                     epochs=config["finetune_epochs"], lr=config["learning_rate"], batch_size=config["batch_size"],
                     val_score=val_score,
                     train_weights=source_balanced_weights(clips.source[train], clips.covid_label[train]))


def run(*, run_dir: str = run_dir, teacher: str = teacher, mode: str = mode, finetune_epochs: int = finetune_epochs,
        frozen_blocks: int = frozen_blocks, learning_rate: float = learning_rate, batch_size: int = batch_size,
        mfcc_probe: bool = mfcc_probe, tag_weight: float = tag_weight, seed: int = seed,
        feats: list[ClipFeatures] | None = None) -> dict:
    """``feats``: the clips' features when the caller already has them (reproduce computes them once)."""
    config = {k: v for k, v in locals().items() if k != "feats"}
    torch.manual_seed(config["seed"])
    run = Path(config["run_dir"])
    clips = ClipSet.load(run / "clips.npz")
    feats = features(clips) if feats is None else feats
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # `launch --cpu`, as Accelerator reads it
    with state.main_process_first():  # under `accelerate launch`, a hub model is downloaded once
        model = build(config)
    history = fine_tune_on_crops(model, clips, feats, config) if config["finetune_epochs"] > 0 else None
    if not state.is_main_process:  # under `accelerate launch`, one process caches and writes
        return {"teacher": config["teacher"], "history": history}
    outputs = teacher_outputs(model.to(state.device), feats)
    covid = covid_logits(clips, feats, outputs["embedding"], config)
    hidden = {"hidden_states": outputs["hidden_states"]} if "hidden_states" in outputs else {}
    np.savez(run / "teacher_cache.npz", covid_logit=covid, embedding=outputs["embedding"],
             cough_target=cough_target(clips, outputs, config["tag_weight"]), **hidden)
    torch.save({"teacher": config["teacher"], "mode": config["mode"], "state_dict": model.state_dict()},
               run / "teacher.pt")

    recordings = json.loads((run / "recordings.json").read_text())
    summary = {"teacher": config["teacher"], "description": describe(model, config, history), "history": history,
               "mfcc_probe": config["mfcc_probe"]}
    for name in ("train", "val", "test"):
        part = clips.subset(clips.split == name)
        scores = clip_scores(part, covid[clips.split == name])
        summary[f"{name}_within_source_auc"] = within_source_auc(scores.label, scores.probability, scores.source)
        print(f"teacher {name}{' (cross-fitted)' if name == 'train' else ''}: within-source AUC "
              f"{summary[f'{name}_within_source_auc']:.3f}")
        if name != "train":
            probabilities = {recordings[i]["sha256"]: float(p) for i, p in zip(scores.recording, scores.probability)}
            (run / f"teacher_{name}_scores.json").write_text(json.dumps(probabilities, indent=1))
    (run / "teacher_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str]) -> dict:
    return run(**configure(globals(), argv))


if __name__ == "__main__":
    main(sys.argv[1:])

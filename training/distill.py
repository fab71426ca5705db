"""Step 3: distil the cached teacher into a compact student.

    python -m training.distill --run_dir=runs/latest --family=cnn
    accelerate launch -m training.distill --run_dir=runs/latest --family=wav2vec

Reads the windows from ``prepare`` and the teacher outputs cached by ``finetune_teacher``, trains one student family
with hard labels + tempered teacher targets + embedding matching (weights below), keeps the epoch with the best
mean within-source validation AUC, and writes the checkpoint ``student_<family>.pt``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from coughkd.features import log_mel
from training.configurator import parse_overrides
from training.evaluate import within_source_auc
from training.losses import Distiller, DistillWeights, source_balanced_weights
from training.models.students import INPUTS, build_student, count_parameters
from training.windows import WindowSet, clip_scores, load_run

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
family = "cnn"  # "cnn" (log-mel CNN) or "wav2vec" (raw-waveform transformer)
epochs = 40
batch_size = 64
learning_rate = 3e-3
weight_decay = 1e-2
hard_weight = 0.5
soft_weight = 0.5
temperature = 2.0
cough_weight = 0.5
embedding_weight = 0.5  # cosine matching of a projection of the student embedding to the teacher's
spec_augment = True
seed = 0
# --------------------------------------------------------------------------------------------------------------------


def student_inputs(windows: WindowSet, family: str) -> np.ndarray:
    """What the student family eats: the shared log-mel front end, or the raw waveform."""
    return log_mel(windows.waveforms) if INPUTS[family] == "log_mel" else windows.waveforms


def augment(x: torch.Tensor, generator: torch.Generator, spec_augment: bool) -> torch.Tensor:
    """Random circular time shift (a cough's position inside its window carries no information) and, for log-mel
    input, SpecAugment-style masks: one band of up to 8 mel bins and one span of up to 10 frames per example,
    set to the example's mean, so a few hundred recordings are harder to memorise."""
    shift = int(torch.randint(-x.shape[-1] // 8, x.shape[-1] // 8 + 1, (1,), generator=generator))
    x = torch.roll(x, shift, dims=-1)
    if not spec_augment or x.dim() != 3:
        return x
    batch, bins, frames = x.shape
    mean = x.mean(dim=(1, 2), keepdim=True)
    f0 = torch.randint(0, bins, (batch, 1, 1), generator=generator)
    fw = torch.randint(0, 9, (batch, 1, 1), generator=generator)
    t0 = torch.randint(0, frames, (batch, 1, 1), generator=generator)
    tw = torch.randint(0, 11, (batch, 1, 1), generator=generator)
    f = torch.arange(bins).view(1, -1, 1)
    t = torch.arange(frames).view(1, 1, -1)
    mask = ((f >= f0) & (f < f0 + fw)) | ((t >= t0) & (t < t0 + tw))
    return torch.where(mask.to(x.device), mean, x)


@torch.no_grad()
def window_logits(model: torch.nn.Module, inputs: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    device = next(model.parameters()).device
    covid, cough = [], []
    for i in range(0, len(inputs), batch):
        c, k = model(torch.from_numpy(inputs[i:i + batch]).to(device))
        covid.append(c.cpu().numpy())
        cough.append(k.cpu().numpy())
    return np.concatenate(covid), np.concatenate(cough)


def train_student(windows: WindowSet, teacher: dict[str, np.ndarray], config: dict) -> dict:
    """Train one student; returns the checkpoint dict (best validation epoch) with its history."""
    torch.manual_seed(config["seed"])
    accelerator = Accelerator()
    inputs = student_inputs(windows, config["family"])
    train = windows.split == "train"
    tensors = TensorDataset(
        torch.from_numpy(inputs[train]),
        torch.from_numpy(windows.covid_label[train].astype(np.int64)),
        torch.from_numpy(source_balanced_weights(windows.source[train], windows.covid_label[train])),
        torch.from_numpy(teacher["covid_logit"][train]),
        torch.from_numpy(teacher["cough_target"][train]),
        torch.from_numpy(teacher["embedding"][train]),
    )
    loader = DataLoader(tensors, batch_size=config["batch_size"], shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(config["seed"]))
    model = build_student(config["family"])
    weights = DistillWeights(config["hard_weight"], config["soft_weight"], config["temperature"],
                             config["cough_weight"], config["embedding_weight"])
    distiller = Distiller(model, weights, teacher["embedding"].shape[1])
    optimizer = torch.optim.AdamW(distiller.parameters(), lr=config["learning_rate"],
                                  weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config["learning_rate"],
                                                    total_steps=config["epochs"] * len(loader))
    distiller, optimizer, loader, scheduler = accelerator.prepare(distiller, optimizer, loader, scheduler)
    generator = torch.Generator().manual_seed(config["seed"])

    val_windows = windows.subset(windows.split == "val")
    val_inputs = inputs[windows.split == "val"]
    best: dict = {"val_auc": -1.0}
    history = []
    progress = tqdm(range(config["epochs"]), desc=f"distil {config['family']}", disable=not accelerator.is_main_process)
    for epoch in progress:
        distiller.train()
        totals: dict[str, float] = {}
        for x, covid_label, covid_weight, t_covid, cough_target, t_embedding in loader:
            parts = distiller(augment(x, generator, config["spec_augment"]), {
                "covid_label": covid_label, "covid_weight": covid_weight, "teacher_covid_logit": t_covid,
                "cough_target": cough_target, "teacher_embedding": t_embedding})
            optimizer.zero_grad()
            accelerator.backward(parts["total"])
            optimizer.step()
            scheduler.step()
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / len(loader)
        covid, _ = window_logits(model, val_inputs)
        clips = clip_scores(val_windows, covid)
        val_auc = within_source_auc(clips.label, clips.probability, clips.source)
        history.append({"epoch": epoch, **totals, "val_auc": val_auc})
        progress.set_postfix(loss=f"{totals['total']:.3f}", val_auc=f"{val_auc:.3f}")
        if val_auc > best["val_auc"]:
            best = {"val_auc": val_auc, "epoch": epoch,
                    "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    model.load_state_dict(best["state_dict"])
    return {"family": config["family"], "config": {}, "state_dict": best["state_dict"],
            "parameters": count_parameters(model), "val_auc": best["val_auc"], "best_epoch": best["epoch"],
            "history": history, "distill": {k: config[k] for k in _CONFIG_KEYS if k not in ("run_dir", "family")}}


def main(argv: list[str]) -> dict:
    config = parse_overrides({k: globals()[k] for k in _CONFIG_KEYS}, argv)
    run = Path(config["run_dir"])
    windows, teacher = load_run(run)
    checkpoint = train_student(windows, teacher, config)
    if not PartialState().is_main_process:  # under `accelerate launch`, one process writes the checkpoint
        return checkpoint
    out = run / f"student_{config['family']}.pt"
    torch.save(checkpoint, out)
    print(f"{config['family']}: {checkpoint['parameters']:,} parameters, best val within-source AUC "
          f"{checkpoint['val_auc']:.3f} at epoch {checkpoint['best_epoch']} -> {out}")
    return checkpoint


_CONFIG_KEYS = ("run_dir", "family", "epochs", "batch_size", "learning_rate", "weight_decay", "hard_weight",
                "soft_weight", "temperature", "cough_weight", "embedding_weight", "spec_augment", "seed")

if __name__ == "__main__":
    main(sys.argv[1:])

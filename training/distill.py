"""Step 3: distil the cached teacher into a compact student.

    python -m training.distill --run_dir=runs/latest --family=cnn
    accelerate launch -m training.distill --run_dir=runs/latest --family=wav2vec

Reads the clips from ``prepare`` and the teacher outputs cached by ``teacher``, trains one student family with
hard labels + tempered teacher targets (+ optional embedding matching, and for a wav2vec2-family teacher optional
DistilHuBERT-style matching of its hidden layers, ``--layer_weight=1 --layers=4,8,12``; weights below) on whole
clips (the CNN's MFCC read-out is fitted to the same loss outright first, see students.LogMelCNN.fit_readout),
keeps the last epoch of the one-cycle schedule, and writes the checkpoint ``student_<family>.pt``. Validation AUC
is logged every epoch but picks nothing: with 8 Telegram positives in the validation split, an epoch chosen by it
is chosen on noise (docs/experiments.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from accelerate import PartialState

from training.lib.clips import ClipFeatures, load_run
from training.lib.configurator import configure
from training.lib.distillation import train_student

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
family = "cnn"  # "cnn" (log-mel CNN) or "wav2vec" (raw-waveform transformer)
epochs = 30
batch_size = 16
length_jitter = 0.03  # batches hold clips within a few percent of one length (see SimilarLengths)
learning_rate = 3e-3
weight_decay = 1e-2
hard_weight = 0.5
soft_weight = 0.5
temperature = 2.0
cough_weight = 0.5
embedding_weight = 0.0  # > 0: cosine matching of the student embedding to the teacher's (off: docs/experiments.md)
layer_weight = 0.0  # > 0: prediction heads regress the teacher's hidden layers below (wav2vec2-family teachers only)
layers = "4,8,12"  # indices into the teacher's hidden states: 0 = input embeddings, k = after transformer layer k
spec_augment = True
seed = 0
# --------------------------------------------------------------------------------------------------------------------
























def run(*, run_dir: str = run_dir, family: str = family, epochs: int = epochs, batch_size: int = batch_size,
        length_jitter: float = length_jitter, learning_rate: float = learning_rate,
        weight_decay: float = weight_decay, hard_weight: float = hard_weight, soft_weight: float = soft_weight,
        temperature: float = temperature, cough_weight: float = cough_weight,
        embedding_weight: float = embedding_weight, layer_weight: float = layer_weight, layers: str = layers,
        spec_augment: bool = spec_augment, seed: int = seed, feats: list[ClipFeatures] | None = None) -> dict:
    """``feats``: the clips' features when the caller already has them (reproduce computes them once)."""
    config = {k: v for k, v in locals().items() if k != "feats"}
    run = Path(config["run_dir"])
    clips, teacher = load_run(run)
    checkpoint = train_student(clips, teacher, config, feats)
    if not PartialState().is_main_process:  # under `accelerate launch`, one process writes the checkpoint
        return checkpoint
    out = run / f"student_{config['family']}.pt"
    torch.save(checkpoint, out)
    print(f"{config['family']}: {checkpoint['parameters']:,} parameters, val within-source AUC "
          f"{checkpoint['val_auc']:.3f} after {len(checkpoint['history'])} epochs -> {out}")
    return checkpoint


def main(argv: list[str]) -> dict:
    return run(**configure(globals(), argv))


if __name__ == "__main__":
    main(sys.argv[1:])

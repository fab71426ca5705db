"""Export a trained student and its sound-type gate to the shipped model folder (coughkd.model checks the contract).

    python -m training.export --checkpoint=runs/latest/student_cnn.pt --gate=runs/latest/sound_cnn.pt \\
        --run_dir=runs/latest --out=assets/model

The FP32 IR is the reference the runtime can fall back to and is checked against torch; the INT8 IR (NNCF
post-training quantization) is what the lean runtime ships by default; the manifest carries sha256s and the
front-end spec so that coughkd can refuse a damaged or mismatched model instead of scoring garbage.
``python -m training.reproduce`` exports the same way (training.lib.export.export_screener) with its INT8 model
accuracy-controlled on validation AUC; this step redoes the export of a run's checkpoints with plain PTQ.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from coughkd.features import front_end_spec
from training.lib.configurator import configure
from training.lib.export import export_screener, write_manifest
from training.models.students import screener

# ---- config: plain values, override with --name=value -------------------------------------------------------------
checkpoint = "runs/latest/student_cnn.pt"  # the COVID-19 student (training.distill)
gate = "runs/latest/sound_cnn.pt"  # the sound-type gate (training.gate)
run_dir = "runs/latest"  # holds metrics.json and calibration.npy (written by training.reproduce)
out = "assets/model"
model_id = ""  # "": coughkd-<family>-<run name>
# --------------------------------------------------------------------------------------------------------------------


def run(*, checkpoint: str = checkpoint, gate: str = gate, run_dir: str = run_dir, out: str = out,
        model_id: str = model_id, command: str = "") -> Path:
    """Export, then write the manifest (``command``: the command line it cites); returns the manifest's path."""
    student = torch.load(checkpoint, map_location="cpu", weights_only=True)
    sound = torch.load(gate, map_location="cpu", weights_only=True)
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    calibration = np.load(Path(run_dir) / "calibration.npy")
    export = export_screener(screener(student, sound), calibration, Path(out))
    manifest = write_manifest(
        Path(out),
        model_id=model_id or f"coughkd-{student['family']}-{Path(run_dir).resolve().name}",
        command=command,
        threshold=metrics["threshold"],
        operating_point=metrics["operating_point"],
        metrics={**metrics["metrics"], "export": export},
        teacher=metrics["teacher"],
        data=metrics["data"],
        student={"family": student["family"], "parameters": student["parameters"],
                 "gate_parameters": sound["parameters"]},
        front_end=front_end_spec(),
    )
    print(f"manifest: {manifest}")
    return manifest


def main(argv: list[str]) -> Path:
    return run(**configure(globals(), argv), command=shlex.join(["python", "-m", "training.export", *argv]))


if __name__ == "__main__":
    main(sys.argv[1:])

"""A small, valid model folder built without torch, so the runtime, app and CLI can be tested before training.

The network is a random linear read-out of the time-averaged log-mel; it has the shipped model's interface exactly
(input `log_mel` (-1, 64, -1), outputs `covid_logit` (-1,) and `sound_logits` (-1, 4)) and a manifest per the
contract.
Run `python -m tests.model_fixture DIR` to write one for the app (`python app.py --model DIR`).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from coughkd.features import N_MELS
from coughkd.model import SOUND_TYPES, input_spec

VARIANTS = {"fp32": "student_fp32.xml", "int8": "student_int8.xml"}


OFFSET = 4.0


def fixture_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N_MELS, 1 + len(SOUND_TYPES)) weights and bias; column 0 is the covid head, the others the sound types."""
    rng = np.random.default_rng(seed)
    width = 1 + len(SOUND_TYPES)
    weights = (rng.standard_normal((N_MELS, width)) * 0.1).astype(np.float32)
    return weights, (rng.standard_normal(width) * 0.5).astype(np.float32)


def reference_logits(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What the fixture network computes, in numpy, so tests can check the runtime's plumbing."""
    weights, bias = fixture_weights(seed)
    logits = (features.mean(axis=2) + OFFSET) @ weights + bias
    return logits[:, 0], logits[:, 1:]


def build_network(seed: int = 0):
    """log_mel (-1, N_MELS, -1) -> mean over time -> affine -> covid_logit (column 0), sound_logits (the rest)."""
    import openvino as ov
    import openvino.opset13 as ops

    weights, bias = fixture_weights(seed)
    log_mel = ops.parameter(ov.PartialShape([-1, N_MELS, -1]), ov.Type.f32, name="log_mel")
    log_mel.output(0).get_tensor().set_names({"log_mel"})
    pooled = ops.reduce_mean(log_mel, ops.constant(np.array([2], dtype=np.int64)), keep_dims=False)
    centred = ops.add(pooled, ops.constant(np.full(N_MELS, OFFSET, dtype=np.float32)))
    logits = ops.add(ops.matmul(centred, ops.constant(weights), False, False), ops.constant(bias))
    axis = ops.constant(np.array(1, dtype=np.int64))
    covid = ops.gather(logits, ops.constant(np.array(0, dtype=np.int64)), axis)
    sound = ops.gather(logits, ops.constant(np.arange(1, 1 + len(SOUND_TYPES), dtype=np.int64)), axis)
    for head, name in ((covid, "covid_logit"), (sound, "sound_logits")):
        head.output(0).get_tensor().set_names({name})
    return ov.Model([covid.output(0), sound.output(0)], [log_mel], f"fixture-seed{seed}")


def make_model_dir(path: Path, seed: int = 0, cough_threshold: float = 0.5) -> Path:
    """Write student_fp32/int8 IR (the same graph) and manifest.json into `path`; returns `path`.

    `cough_threshold` 0 opens the sound-type gate to everything, so tests can reach the COVID-19 path."""
    import openvino as ov

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    network = build_network(seed)
    for xml in VARIANTS.values():
        ov.save_model(network, path / xml, compress_to_fp16=False)
    files = {}
    for xml in VARIANTS.values():
        for name in (xml, xml.replace(".xml", ".bin")):
            files[name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    manifest = {
        "model_id": f"fixture-seed{seed}",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "tests/model_fixture.py make_model_dir",
        "files": files,
        "variants": VARIANTS,
        "input": input_spec(),
        "outputs": ["covid_logit", "sound_logits"],
        "sound_types": list(SOUND_TYPES),
        "threshold": {"covid": 0.5, "cough": cough_threshold},
        "operating_point": {"sensitivity": 0.0, "specificity": 0.0, "source": "validation"},
        "metrics": {},
        "teacher": {},
        "data": {},
        "student": {"family": "fixture-linear", "parameters": N_MELS * (1 + len(SOUND_TYPES)) + 1 + len(SOUND_TYPES)},
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.model_fixture OUT_DIR")
    print(make_model_dir(Path(sys.argv[1])))

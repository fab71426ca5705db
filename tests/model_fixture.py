"""A small, valid model folder built without training, so the runtime, app and CLI can be tested before any model is.

The network is the real front end (training.models.frontend) followed by a random linear read-out of the
time-averaged log-mel, of the clip and of every window position; it has the shipped model's interface exactly
(input `waveform` (-1, -1), the outputs of coughkd.model.OUTPUTS) and a manifest per the contract.
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
from coughkd.model import FORMAT, INPUT, OUTPUTS, SOUND_TYPES, input_spec

VARIANTS = {"fp32": "student_fp32.xml", "int8": "student_int8.xml"}


OFFSET = 4.0


def fixture_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N_MELS, 1 + len(SOUND_TYPES)) weights and bias; column 0 is the covid head, the others the sound types."""
    rng = np.random.default_rng(seed)
    width = 1 + len(SOUND_TYPES)
    weights = (rng.standard_normal((N_MELS, width)) * 0.1).astype(np.float32)
    return weights, (rng.standard_normal(width) * 0.5).astype(np.float32)


def build_network(seed: int = 0):
    """waveform (B, samples) -> the front end -> mean log-mel of the clip and of each window -> affine -> OUTPUTS."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from training.models.frontend import FrontEnd
    from training.models.students import FEATURE_HOP, WINDOW_WIDTH

    class Fixture(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.front_end = FrontEnd()
            weights, bias = fixture_weights(seed)
            self.register_buffer("weights", torch.from_numpy(weights))
            self.register_buffer("bias", torch.from_numpy(bias))

        def _logits(self, pooled: torch.Tensor) -> torch.Tensor:
            return torch.einsum("bmp,mo->bop", pooled + OFFSET, self.weights) + self.bias.view(1, -1, 1)

        def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
            log_mel, energy_db = self.front_end(waveform)
            clip = self._logits(log_mel.mean(dim=-1, keepdim=True))[..., 0]
            width = WINDOW_WIDTH * FEATURE_HOP
            padded = F.pad(log_mel, (0, width - 1), mode="replicate")
            windows = self._logits(F.avg_pool1d(padded, width, FEATURE_HOP))
            return clip[:, 0], clip[:, 1:], windows[:, 0], windows[:, 1:], energy_db

    return Fixture().eval()


def reference(seed: int = 0):
    """What the fixture network computes, in torch: (1, samples) waveform -> OUTPUTS by name."""
    import torch

    network = build_network(seed)

    @torch.no_grad()
    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {name: t.numpy() for name, t in zip(OUTPUTS, network(torch.from_numpy(np.asarray(x, np.float32))))}

    return run


def make_model_dir(path: Path, seed: int = 0, cough_threshold: float = 0.5) -> Path:
    """Write student_fp32/int8 IR (the same graph) and manifest.json into `path`; returns `path`.

    `cough_threshold` 0 opens the sound-type gate to everything, so tests can reach the COVID-19 path."""
    import openvino as ov
    import torch

    from training.models.students import WINDOW_HOP_SAMPLES, WINDOW_SAMPLES

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        network = ov.convert_model(build_network(seed), example_input=torch.randn(1, 32000) * 0.1,
                                   input=[(ov.PartialShape([-1, -1]), ov.Type.f32)])
    network.input(0).get_tensor().set_names({INPUT})
    for output, name in zip(network.outputs, OUTPUTS):
        output.get_tensor().set_names({name})
    for xml in VARIANTS.values():
        ov.save_model(network, path / xml, compress_to_fp16=False)
    files = {}
    for xml in VARIANTS.values():
        for name in (xml, xml.replace(".xml", ".bin")):
            files[name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    manifest = {
        "format": FORMAT,
        "model_id": f"fixture-seed{seed}",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "tests/model_fixture.py make_model_dir",
        "files": files,
        "variants": VARIANTS,
        "input": input_spec(WINDOW_SAMPLES, WINDOW_HOP_SAMPLES),
        "outputs": list(OUTPUTS),
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

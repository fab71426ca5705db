"""Load the exported model with OpenVINO, refusing any model folder that is damaged or was built for other features.

The IR is one graph from waveform to scores: 16 kHz audio (batch, samples) in; the clip's COVID-19 logit and
sound-type logits, the same for every window position (what each event sounds like), and the frame energies the
events are found on out, in one inference call. The manifest is the model's contract: its format, every file's
sha256, the variants, the front end the graph computes and the geometry of its windows. A model that passes these
checks is compiled once and shared by all threads; each call borrows an infer request from a pool, because a
compiled model is thread-safe but a single infer request is not.
"""
from __future__ import annotations

import hashlib
import json
import math
import queue
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE
from .events import WINDOW_SECONDS
from .features import front_end_spec

# A checkout's assets/model; `pip install .` puts the same files inside the package (pyproject.toml).
MODEL_DIR = next((d for d in (Path(__file__).resolve().parent / "shipped_model",
                              Path(__file__).resolve().parents[1] / "assets" / "model") if d.is_dir()),
                 Path(__file__).resolve().parents[1] / "assets" / "model")
MANIFEST = "manifest.json"
# 2: the IR takes the waveform and computes its own features (1: it took a log-mel computed in Python).
FORMAT = 2
INPUT = "waveform"
# covid_logit (batch,), sound_logits (batch, 4), window_covid_logits (batch, positions), window_sound_logits
# (batch, 4, positions), energy_db (batch, samples // 160): see training.models.students.Screener.
OUTPUTS = ("covid_logit", "sound_logits", "window_covid_logits", "window_sound_logits", "energy_db")
# The sound-type gate's classes, in the order of `sound_logits`; the manifest must list the same.
SOUND_TYPES = ("cough", "speech", "breathing", "other")
THRESHOLDS = ("covid", "cough")  # the decision thresholds predict reads
# The thresholds were chosen on f32 scores; the CPU's default bf16 would move scores that sit near them, and it would
# hide export bugs behind rounding noise. Every OpenVINO compile here and in training, bench and tests uses it.
F32 = {"INFERENCE_PRECISION_HINT": "f32"}
DEFAULT_CONFIG = F32
# What the COVID-19 head was trained on: the log-mel of the whole recording (the cough head reads event windows).
COVID_INPUT = "whole clip"


class ModelError(RuntimeError):
    """The model folder is missing, damaged or incompatible with this runtime; the message says which."""


def sha256_file(path: Path) -> str:
    """The content hash the manifest records (training and tests use this same function)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest after checking its shape, every file's sha256 and the front end it was trained on."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelError(f"no model at {model_dir}: {MANIFEST} is missing (train and export one, or pass --model)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{path} is not valid JSON: {error}") from error
    if isinstance(manifest, dict) and manifest.get("format") != FORMAT:
        raise ModelError(f"{path}: this model folder has manifest format {manifest.get('format', 1)}, built for an "
                         f"older runtime that computed the features in Python; this runtime needs format {FORMAT}, "
                         "a graph from waveform to scores (rebuild it with `python -m training.reproduce`)")
    _check_shape(manifest, path)
    for name, expected in manifest["files"].items():
        file = model_dir / name
        if not file.is_file():
            raise ModelError(f"model file {name} is missing from {model_dir}")
        if sha256_file(file) != expected:
            raise ModelError(f"model file {name} is damaged: its sha256 does not match {MANIFEST}")
    _check_input(manifest["input"], path)
    return manifest


def _check_shape(manifest: Any, path: Path) -> None:
    """Each entry the runtime reads has the type it is read as, so a hand-edited manifest is a ModelError, not a
    traceback."""
    if not isinstance(manifest, dict):
        raise ModelError(f"{path} must hold a JSON object, not a {type(manifest).__name__}")
    for key in ("model_id", "files", "variants", "input", "threshold"):
        if key not in manifest:
            raise ModelError(f"{path} has no '{key}' entry")
    if not isinstance(manifest["model_id"], str):
        raise ModelError(f"{path}: 'model_id' must be a string")
    for key in ("files", "variants", "input", "threshold"):
        if not isinstance(manifest[key], dict):
            raise ModelError(f"{path}: '{key}' must be an object, not {json.dumps(manifest[key])[:80]}")
    for name, digest in manifest["files"].items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ModelError(f"{path}: model file {name} is not inside the model folder")
        if not isinstance(digest, str):
            raise ModelError(f"{path}: the sha256 of {name} must be a string")
    for variant, xml in manifest["variants"].items():
        if not isinstance(xml, str):
            raise ModelError(f"{path}: variant '{variant}' must name its .xml file")
    if not isinstance(manifest["input"].get("front_end", {}), dict):
        raise ModelError(f"{path}: 'input.front_end' must be an object")
    window = manifest["input"].get("window")
    if not isinstance(window, dict) or not all(isinstance(window.get(k), int) and window[k] > 0
                                               for k in ("samples", "hop_samples")):
        raise ModelError(f"{path}: 'input.window' must give the positive integers 'samples' and 'hop_samples'")
    thresholds = manifest["threshold"]
    for key in THRESHOLDS:
        if key not in thresholds:
            raise ModelError(f"{path}: 'threshold' has no '{key}' entry")
    for key, value in thresholds.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ModelError(f"{path}: threshold '{key}' must be a number, not {json.dumps(value)}")


def _check_input(spec: dict[str, Any], path: Path) -> None:
    """Features must be computed exactly as in training, or the scores mean nothing."""
    expected = front_end_spec()
    actual = spec.get("front_end", {})
    if actual != expected:
        keys = sorted(k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k))
        details = ", ".join(f"{k}: model {actual.get(k)!r} vs runtime {expected.get(k)!r}" for k in keys)
        raise ModelError(f"{path}: the model was trained on a different front end ({details})")
    if spec.get("sample_rate") != SAMPLE_RATE or spec.get("window_seconds") != WINDOW_SECONDS:
        raise ModelError(f"{path}: the model expects {spec.get('sample_rate')} Hz windows of "
                         f"{spec.get('window_seconds')} s; this runtime makes {SAMPLE_RATE} Hz, {WINDOW_SECONDS} s")
    if spec.get("covid_input") != COVID_INPUT:
        raise ModelError(f"{path}: the model's COVID-19 head was trained on {spec.get('covid_input') or '1 s windows'}"
                         f"; this runtime gives it the {COVID_INPUT} (rebuild the model with this version)")


def input_spec(window_samples: int, window_hop_samples: int) -> dict[str, Any]:
    """The manifest's "input" section for a model this runtime can score correctly, whose window outputs cover
    `window_samples` of audio every `window_hop_samples` (the network's geometry)."""
    return {"input": INPUT, "sample_rate": SAMPLE_RATE, "window_seconds": WINDOW_SECONDS, "covid_input": COVID_INPUT,
            "window": {"samples": window_samples, "hop_samples": window_hop_samples}, "front_end": front_end_spec()}


class StudentRuntime:
    """A verified, compiled student; `run` may be called from any number of threads at once."""

    def __init__(self, model_dir: str | Path | None = None, variant: str = "int8",
                 config: dict[str, str] | None = None, device: str = "CPU") -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
        self.manifest = read_manifest(self.model_dir)
        variants = self.manifest["variants"]
        if variant not in variants:
            raise ModelError(f"variant '{variant}' is not in this model; it has {', '.join(sorted(variants))}")
        xml = variants[variant]
        for name in (xml, str(Path(xml).with_suffix(".bin"))):
            if name not in self.manifest["files"]:
                raise ModelError(f"{name} is not listed with a sha256 in {MANIFEST}, so it cannot be verified")
        self.variant = variant
        self.model_id: str = self.manifest["model_id"]
        self.thresholds: dict[str, float] = {k: float(v) for k, v in self.manifest["threshold"].items()}
        if tuple(self.manifest.get("sound_types", ())) != SOUND_TYPES:
            raise ModelError(f"the model's sound types {self.manifest.get('sound_types')} are not this runtime's "
                             f"{list(SOUND_TYPES)} (rebuild the model with this version)")
        self._compiled = _compile(self.model_dir / xml, {**DEFAULT_CONFIG, **(config or {})}, device)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()

    @property
    def window(self) -> tuple[int, int]:
        """(samples, hop_samples): window position p covers samples [p * hop, p * hop + samples) of its input."""
        window = self.manifest["input"]["window"]
        return window["samples"], window["hop_samples"]

    def run(self, waveforms: np.ndarray) -> dict[str, np.ndarray]:
        """(n, samples) 16 kHz audio -> every output of OUTPUTS by name, float32, in one inference call."""
        waveforms = np.ascontiguousarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2 or waveforms.shape[0] == 0:
            raise ValueError(f"expected waveforms shaped (n >= 1, samples), got {waveforms.shape}")
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            request.infer({INPUT: waveforms}, share_inputs=True)  # a synchronous call: no copy of the input needed
            outputs = {name: np.array(request.get_tensor(name).data, dtype=np.float32) for name in OUTPUTS}
        finally:
            self._requests.put(request)
        return outputs


def _compile(xml: Path, config: dict[str, str], device: str) -> Any:
    import openvino as ov

    core = ov.Core()
    try:
        model = core.read_model(xml)
    except RuntimeError as error:
        raise ModelError(f"{xml.name} is not a readable OpenVINO model: {error}") from error
    inputs = {name for port in model.inputs for name in port.get_names()}
    outputs = {name for port in model.outputs for name in port.get_names()}
    if INPUT not in inputs or not set(OUTPUTS) <= outputs:
        raise ModelError(f"{xml.name} must take '{INPUT}' and give {', '.join(OUTPUTS)}; "
                         f"it takes {sorted(inputs)} and gives {sorted(outputs)}")
    return core.compile_model(model, device, config)

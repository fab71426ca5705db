"""Export a trained student and its sound-type gate to the shipped model folder (coughkd.model checks the contract).

The FP32 IR is the reference the runtime can fall back to and is checked against torch; the INT8 IR (NNCF
post-training quantization) is what the lean runtime ships by default; the manifest carries sha256s and the
front-end spec so that coughkd can refuse a damaged or mismatched model instead of scoring garbage.

    python -m training.export --checkpoint runs/latest/student_cnn.pt --gate runs/latest/sound_cnn.pt \\
        --run-dir runs/latest --out assets/model
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import nncf
import numpy as np
import openvino as ov
import torch
from torch import nn

from coughkd.features import N_MELS, WINDOW_FRAMES, ClipFeatures
from coughkd.model import F32, OUTPUTS, SOUND_TYPES, input_spec, sha256_file
from training.lib.clips import ClipSet, clip_scores
from training.lib.metrics import within_source_auc
from training.lib.sounds import SoundClips
from training.models.students import screener

INPUT_NAME = "log_mel"
OUTPUT_RANKS = dict(zip(OUTPUTS, (1, 2)))  # covid_logit (batch,), sound_logits (batch, len(SOUND_TYPES))
VARIANTS = {"fp32": "student_fp32.xml", "int8": "student_int8.xml"}
PARITY_TOLERANCE = 1e-4
# 0.5 s, 1 s, 3 s, 10 s and 30 s of audio at 100 frames/s (frames = 1 + samples // 160).
PARITY_FRAMES = (51, 101, 301, 1001, 3001)


def compile_f32(model: ov.Model | Path) -> ov.CompiledModel:
    """Compile on CPU at true FP32 precision, the setting under which parity and metrics are comparable."""
    return ov.Core().compile_model(model, "CPU", F32)


def export_fp32(model: nn.Module, out_dir: Path, n_mels: int = 64) -> Path:
    """Convert a screener (students.Screener) to `student_fp32.xml/.bin`: input `log_mel` (-1, n_mels, -1), the
    runtime's two named outputs."""
    model.eval()
    with torch.no_grad():
        ov_model = ov.convert_model(
            model,
            example_input=torch.randn(2, n_mels, 101),
            input=[(ov.PartialShape([-1, n_mels, -1]), ov.Type.f32)],
        )
    if len(ov_model.outputs) != len(OUTPUTS):
        raise ValueError(f"the model must return {OUTPUTS}, got {len(ov_model.outputs)} outputs")
    ov_model.input(0).get_tensor().set_names({INPUT_NAME})
    for output, name in zip(ov_model.outputs, OUTPUTS):
        if output.get_partial_shape().rank.get_length() != OUTPUT_RANKS[name]:
            raise ValueError(f"{name} must have rank {OUTPUT_RANKS[name]}, got {output.get_partial_shape()}")
        output.get_tensor().set_names({name})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / VARIANTS["fp32"]
    ov.save_model(ov_model, xml, compress_to_fp16=False)
    return xml


def parity(model: nn.Module, xml_path: Path, inputs: np.ndarray, frames: tuple[int, ...] = PARITY_FRAMES) -> float:
    """Max abs difference between the IR and torch over both outputs, with `inputs` (B, n_mels, T) cut to each
    length in `frames` that fits (and T itself), so a time axis frozen during tracing cannot slip through."""
    compiled = compile_f32(Path(xml_path))
    model.eval()
    lengths = sorted({n for n in frames if n <= inputs.shape[-1]} | {inputs.shape[-1]})
    worst = 0.0
    for n in lengths:
        x = np.ascontiguousarray(inputs[..., :n], dtype=np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in model(torch.from_numpy(x))]
        got = compiled(x)
        for name, ref in zip(OUTPUTS, expected):
            worst = max(worst, float(np.abs(got[name] - ref).max()))
    return worst


def quantize_int8(
    fp32_xml: Path,
    calibration: np.ndarray,
    out_dir: Path,
    validate: Callable[[ov.CompiledModel], float] | None = None,
    max_drop: float = 0.01,
    *,
    preset: nncf.QuantizationPreset = nncf.QuantizationPreset.MIXED,
    subset_size: int = 300,
) -> tuple[Path, dict]:
    """Post-training INT8 quantization of the FP32 IR into `student_int8.xml/.bin`.

    `calibration` holds log-mel windows (N, n_mels, T) from training recordings. `validate` scores a model
    compiled at FP32 precision (higher is better, e.g. validation AUC); when plain quantization loses more than
    `max_drop`, NNCF's accuracy-control flow keeps the most harmful layers in float. The mixed preset (asymmetric
    activations) suits log-mel inputs, which are mostly negative.
    """
    windows = np.asarray(calibration, dtype=np.float32)
    dataset = nncf.Dataset(list(windows), lambda window: window[None])
    subset = min(subset_size, len(windows))
    core = ov.Core()
    int8 = nncf.quantize(core.read_model(fp32_xml), dataset, preset=preset, subset_size=subset)
    info: dict = {"method": "ptq", "preset": preset.value, "calibration_windows": subset}
    if validate is not None:
        fp32_metric = validate(compile_f32(Path(fp32_xml)))
        ptq_metric = validate(compile_f32(int8))
        info.update(fp32_metric=fp32_metric, ptq_metric=ptq_metric, int8_metric=ptq_metric)
        if fp32_metric - ptq_metric > max_drop:
            # One validation "item" standing for the whole validation set: NNCF then ranks layers by the real metric.
            int8 = nncf.quantize_with_accuracy_control(
                core.read_model(fp32_xml),
                dataset,
                nncf.Dataset([None]),
                lambda compiled, _items: (validate(compiled), None),
                max_drop=max_drop,
                preset=preset,
                subset_size=subset,
            )
            info.update(method="accuracy_control", max_drop=max_drop, int8_metric=validate(compile_f32(int8)))
    # Accuracy control may revert layers, all of them if it must: the count shows how much is really INT8.
    info["quantizers"] = sum(op.get_type_name() == "FakeQuantize" for op in int8.get_ops())
    xml = Path(out_dir) / VARIANTS["int8"]
    ov.save_model(int8, xml, compress_to_fp16=False)
    return xml, info


def _require(value: dict, keys: tuple[str, ...], field: str) -> None:
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"manifest field {field!r} lacks {missing}")


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_manifest(
    out_dir: Path,
    *,
    model_id: str,
    command: str,
    threshold: dict,
    operating_point: dict,
    metrics: dict,
    teacher: dict,
    data: dict,
    student: dict,
    front_end: dict,
) -> Path:
    """Write `manifest.json` with the sha256 of every IR file in `out_dir` (the runtime refuses any mismatch)."""
    out_dir = Path(out_dir)
    _require(threshold, ("covid", "cough"), "threshold")
    _require(operating_point, ("sensitivity", "specificity", "source"), "operating_point")
    _require(student, ("family", "parameters"), "student")
    files = {p.name: sha256_file(p) for p in sorted(out_dir.iterdir()) if p.suffix in (".xml", ".bin")}
    missing = [name for xml in VARIANTS.values() for name in (xml, xml[:-4] + ".bin") if name not in files]
    if missing:
        raise FileNotFoundError(f"{out_dir} lacks {missing}; export both variants before writing the manifest")
    manifest = {
        "model_id": model_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "files": files,
        "variants": dict(VARIANTS),
        "input": {**input_spec(), "front_end": front_end},
        "outputs": list(OUTPUTS),
        "sound_types": list(SOUND_TYPES),
        "threshold": threshold,
        "operating_point": operating_point,
        "metrics": metrics,
        "teacher": teacher,
        "data": data,
        "student": student,
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
    return path


def long_inputs(windows: np.ndarray, frames: int = PARITY_FRAMES[-1], batch: int = 2) -> np.ndarray:
    """Parity inputs up to 30 s with real log-mel statistics: calibration windows laid end to end."""
    n, n_mels, t = windows.shape
    reps = -(-frames // t)
    picked = windows[np.arange(batch * reps) % n].reshape(batch, reps, n_mels, t)
    return picked.transpose(0, 2, 1, 3).reshape(batch, n_mels, reps * t)[..., :frames]


def calibration_inputs(clips: ClipSet, feats: list[ClipFeatures], sounds: SoundClips,
                       sound_feats: list[ClipFeatures], n: int, seed: int) -> np.ndarray:
    """INT8 calibration inputs: event windows of training coughs and, as many again, of every sound type the gate
    is trained on, so both networks' activations are calibrated on what they see."""
    rng = np.random.default_rng(seed)
    picked = []
    for rows, fs in ((np.flatnonzero((clips.split == "train") & (clips.is_cough == 1)), feats),
                     (np.flatnonzero(sounds.split == "train"), sound_feats)):
        windows = np.concatenate([fs[i].windows for i in rows if fs[i].log_mel.shape[-1] >= WINDOW_FRAMES])
        picked.append(windows[np.sort(rng.choice(len(windows), min(n, len(windows)), replace=False))])
    return np.concatenate(picked)


def export_student(checkpoint: dict, gate_checkpoint: dict, clips: ClipSet, calibration: np.ndarray,
                   feats: list[ClipFeatures], out: Path, run_dir: Path) -> dict:
    """export_screener of the student and its gate, INT8 accuracy-controlled against validation AUC."""
    model = screener(checkpoint, gate_checkpoint)
    np.save(Path(run_dir) / "calibration.npy", calibration)  # lets `python -m training.export` redo this

    val = (clips.split == "val") & (clips.recording >= 0)
    val_clips, val_inputs = clips.subset(val), [feats[i].log_mel[None] for i in np.flatnonzero(val)]

    def val_auc(compiled) -> float:
        """NNCF hands over the candidate model compiled at f32; validation clips are scored as in evaluation."""
        covid = np.array([float(np.asarray(compiled(x)["covid_logit"])[0]) for x in val_inputs])
        scores = clip_scores(val_clips, covid)
        return within_source_auc(scores.label, scores.probability, scores.source)

    return export_screener(model, calibration, out, validate=val_auc, subset_size=len(calibration))


def export_screener(model: nn.Module, calibration: np.ndarray, out: Path,
                    validate: Callable[[ov.CompiledModel], float] | None = None, subset_size: int = 300) -> dict:
    """FP32 IR, its parity with torch (SystemExit past PARITY_TOLERANCE), then the INT8 IR: the export every
    entry point runs; returns what the manifest's metrics record of it."""
    fp32_xml = export_fp32(model, out, N_MELS)
    diff = parity(model, fp32_xml, long_inputs(calibration))
    print(f"FP32 IR vs torch: max abs diff {diff:.2e} over {PARITY_FRAMES} frames (tolerance {PARITY_TOLERANCE:.0e})")
    if diff > PARITY_TOLERANCE:
        raise SystemExit(f"FP32 IR parity failed: max abs diff {diff:.2e} > {PARITY_TOLERANCE:.0e}")
    int8_xml, info = quantize_int8(fp32_xml, calibration, out, validate=validate, subset_size=subset_size)
    print(f"INT8 IR: {int8_xml} ({info})")
    return {"fp32_parity_max_abs_diff": diff, "int8": info}

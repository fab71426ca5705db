"""Export a trained student and its sound-type gate to the shipped model folder (coughkd.model checks the contract).

What is exported is one graph from waveform to scores (students.Screener: the front end, the student and the gate).
The FP32 IR is the reference the runtime can fall back to and is checked against torch; the INT8 IR (NNCF
post-training quantization of the COVID-19 CNN, the front end and the gate in float) is what the lean runtime ships
by default; the manifest carries its format, sha256s, the front-end spec and the windows' geometry so that coughkd
can refuse a damaged or mismatched model instead of scoring garbage.
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

from coughkd.audio import SAMPLE_RATE
from coughkd.model import F32, FORMAT, INPUT, OUTPUTS, SOUND_TYPES, input_spec, sha256_file
from training.lib.clips import ClipFeatures, ClipSet, PackedClips, centred_slices, clip_scores
from training.lib.metrics import within_source_auc
from training.lib.sounds import SoundClips
from training.models.students import WINDOW_HOP_SAMPLES, WINDOW_SAMPLES, Screener, screener

# covid_logit (batch,), sound_logits (batch, types), window_covid_logits (batch, positions), window_sound_logits
# (batch, types, positions), energy_db (batch, frames)
OUTPUT_RANKS = dict(zip(OUTPUTS, (1, 2, 2, 3, 2)))
VARIANTS = {"fp32": "student_fp32.xml", "int8": "student_int8.xml"}
PARITY_TOLERANCE = 1e-4  # on the logits; the frame energies (dB) are held to PARITY_TOLERANCE_DB
PARITY_TOLERANCE_DB = 1e-2
# 0.3 s (the shortest input the runtime takes), 0.5 s, 1 s, 3 s, 10 s and 30 s of audio.
PARITY_SECONDS = (0.3, 0.5, 1.0, 3.0, 10.0, 30.0)
# Only the COVID-19 CNN's own layers are quantized: the front end (the DFT and the low-pass need the waveform's
# dynamic range), the MFCC statistics and their read-out, and the pooling and heads of the clip and window scores
# (the graph's top-level ops) stay in float; quantizing them too moved the COVID-19 logit by up to 2.4 on real audio.
FLOAT_PATTERNS = [".*front_end.*", ".*mfcc.*", ".*readout.*", "^aten::.*"]
# So does the sound-type gate, from its input norm to its two outputs: in INT8 it treated 17 of the validation clips
# wrongly through the runtime, against 9 in float (its logits moved by up to 0.54), for about a tenth of a
# millisecond it saved on a 5 s clip. A subgraph, not a name pattern: conversion renames the convolutions it fuses
# with their batch norms.
GATE_PREFIX = "__module.sound."  # the Screener's gate
GATE_OUTPUTS = ("sound_logits", "window_sound_logits")


def float_scope(model: ov.Model) -> nncf.IgnoredScope:
    """What INT8 export leaves in float in this graph: FLOAT_PATTERNS, and the gate from its entries to the producers
    of its outputs. Entries: the gate's named operations that read something named outside it (the log-mel, or a
    convolution that conversion renamed when it fused it with its batch norm), so every member of an ensemble is in."""
    def in_gate(op: ov.Node) -> bool:
        return op.get_friendly_name().startswith(GATE_PREFIX)

    entries = [op.get_friendly_name() for op in model.get_ordered_ops()
               if in_gate(op) and op.get_type_name() != "Constant"
               and any(not in_gate(v.get_node()) and v.get_node().get_type_name() != "Constant"
                       for v in op.input_values())]
    producers = [o.get_node().input_value(0).get_node().get_friendly_name() for o in model.outputs
                 if o.get_any_name() in GATE_OUTPUTS]
    return nncf.IgnoredScope(patterns=FLOAT_PATTERNS, subgraphs=[nncf.Subgraph(inputs=entries, outputs=producers)],
                             validate=False)


def compile_f32(model: ov.Model | Path) -> ov.CompiledModel:
    """Compile on CPU at true FP32 precision, the setting under which parity and metrics are comparable."""
    return ov.Core().compile_model(model, "CPU", F32)


def export_fp32(model: Screener, out_dir: Path) -> Path:
    """Convert a screener to `student_fp32.xml/.bin`: input `waveform` (-1, -1) at 16 kHz, the runtime's named
    outputs; an ensemble gate goes in with its networks side by side (Screener.for_export)."""
    model = model.eval().for_export()
    with torch.no_grad():
        ov_model = ov.convert_model(
            model,
            example_input=torch.randn(2, 2 * SAMPLE_RATE) * 0.1,
            input=[(ov.PartialShape([-1, -1]), ov.Type.f32)],
        )
    if len(ov_model.outputs) != len(OUTPUTS):
        raise ValueError(f"the model must return {OUTPUTS}, got {len(ov_model.outputs)} outputs")
    ov_model.input(0).get_tensor().set_names({INPUT})
    for output, name in zip(ov_model.outputs, OUTPUTS):
        if output.get_partial_shape().rank.get_length() != OUTPUT_RANKS[name]:
            raise ValueError(f"{name} must have rank {OUTPUT_RANKS[name]}, got {output.get_partial_shape()}")
        output.get_tensor().set_names({name})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / VARIANTS["fp32"]
    ov.save_model(ov_model, xml, compress_to_fp16=False)
    return xml


def output_differences(reference: Callable[[np.ndarray], dict[str, np.ndarray]], xml_path: Path,
                       inputs: np.ndarray, seconds: tuple[float, ...] = PARITY_SECONDS) -> dict[str, float]:
    """Max abs difference of each output between the IR (compiled at f32) and `reference`, with `inputs`
    (B, samples) cut to each length in `seconds` that fits (and their whole length), so a time axis frozen during
    tracing cannot slip through."""
    compiled = compile_f32(Path(xml_path))
    lengths = sorted({int(s * SAMPLE_RATE) for s in seconds if s * SAMPLE_RATE <= inputs.shape[-1]}
                     | {inputs.shape[-1]})
    worst = dict.fromkeys(OUTPUTS, 0.0)
    for n in lengths:
        x = np.ascontiguousarray(inputs[..., :n], dtype=np.float32)
        expected, got = reference(x), compiled(x)
        for name in OUTPUTS:
            worst[name] = max(worst[name], float(np.abs(got[name] - expected[name]).max()))
    return worst


def torch_outputs(model: nn.Module) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """The screener in torch as a function of a waveform batch, outputs by name."""
    model.eval()

    @torch.no_grad()
    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {name: t.numpy() for name, t in zip(OUTPUTS, model(torch.from_numpy(x)))}

    return run


def parity(model: nn.Module, xml_path: Path, inputs: np.ndarray,
           seconds: tuple[float, ...] = PARITY_SECONDS) -> dict[str, float]:
    """Max abs difference of each output between the IR and torch (see output_differences)."""
    return output_differences(torch_outputs(model), xml_path, inputs, seconds)


def parity_failures(diffs: dict[str, float]) -> list[str]:
    """The outputs whose difference is past its tolerance, worded."""
    limit = {name: PARITY_TOLERANCE_DB if name == "energy_db" else PARITY_TOLERANCE for name in OUTPUTS}
    return [f"{name} {diffs[name]:.2e} > {limit[name]:.0e}" for name in OUTPUTS if diffs[name] > limit[name]]


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

    `calibration` holds 1 s waveforms (N, samples) from training recordings. `validate` scores a model
    compiled at FP32 precision (higher is better, e.g. validation AUC); when plain quantization loses more than
    `max_drop`, NNCF's accuracy-control flow keeps the most harmful layers in float. Only the COVID-19 CNN's layers
    are quantized (float_scope). The mixed preset (asymmetric activations) suits log-mel inputs, which are mostly
    negative.
    """
    windows = np.asarray(calibration, dtype=np.float32)
    dataset = nncf.Dataset(list(windows), lambda window: window[None])
    subset = min(subset_size, len(windows))
    core = ov.Core()
    fp32 = core.read_model(fp32_xml)
    scope = float_scope(fp32)
    int8 = nncf.quantize(fp32, dataset, preset=preset, subset_size=subset, ignored_scope=scope)
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
                ignored_scope=scope,
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
        "format": FORMAT,
        "model_id": model_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "files": files,
        "variants": dict(VARIANTS),
        "input": {**input_spec(WINDOW_SAMPLES, WINDOW_HOP_SAMPLES), "front_end": front_end},
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


def long_inputs(windows: np.ndarray, seconds: float = PARITY_SECONDS[-1], batch: int = 2) -> np.ndarray:
    """Parity inputs up to 30 s of real audio: calibration windows laid end to end."""
    n, width = windows.shape
    samples = int(seconds * SAMPLE_RATE)
    reps = -(-samples // width)
    return windows[np.arange(batch * reps) % n].reshape(batch, reps * width)[:, :samples]


def calibration_inputs(clips: ClipSet, feats: list[ClipFeatures], sounds: SoundClips,
                       sound_feats: list[ClipFeatures], n: int, seed: int) -> np.ndarray:
    """INT8 calibration inputs, (N, 1 s of samples) of the graph's own input: the audio around events of training
    coughs and, as many again, of every sound type the gate is trained on, so both networks' activations are
    calibrated on what they see."""
    rng = np.random.default_rng(seed)
    picked = []
    parts: tuple[tuple[PackedClips, np.ndarray, list[ClipFeatures]], ...] = (
        (clips, np.flatnonzero((clips.split == "train") & (clips.is_cough == 1)), feats),
        (sounds, np.flatnonzero(sounds.split == "train"), sound_feats))
    for packed, rows, fs in parts:
        windows = np.concatenate([centred_slices(packed.waveform(i), fs[i].centres, SAMPLE_RATE) for i in rows
                                  if len(packed.waveform(i)) >= SAMPLE_RATE])
        picked.append(windows[np.sort(rng.choice(len(windows), min(n, len(windows)), replace=False))])
    return np.concatenate(picked)


def export_student(checkpoint: dict, gate_checkpoint: dict, clips: ClipSet, calibration: np.ndarray,
                   out: Path, run_dir: Path) -> dict:
    """export_screener of the student and its gate, INT8 accuracy-controlled against validation AUC."""
    model = screener(checkpoint, gate_checkpoint)
    np.save(Path(run_dir) / "calibration.npy", calibration)  # lets `python -m training.export` redo this

    val = (clips.split == "val") & (clips.recording >= 0)
    val_clips, val_inputs = clips.subset(val), [clips.waveform(i)[None] for i in np.flatnonzero(val)]

    def val_auc(compiled) -> float:
        """NNCF hands over the candidate model compiled at f32; validation clips are scored whole, as in evaluation
        (each is at most 30 s, one piece)."""
        covid = np.array([float(np.asarray(compiled(x)["covid_logit"])[0]) for x in val_inputs])
        scores = clip_scores(val_clips, covid)
        return within_source_auc(scores.label, scores.probability, scores.source)

    return export_screener(model, calibration, out, validate=val_auc, subset_size=len(calibration))


def export_screener(model: nn.Module, calibration: np.ndarray, out: Path,
                    validate: Callable[[ov.CompiledModel], float] | None = None, subset_size: int = 300) -> dict:
    """FP32 IR, its parity with torch (SystemExit past the tolerances), then the INT8 IR and its difference from
    the FP32 IR: the export every entry point runs; returns what the manifest's metrics record of it."""
    fp32_xml = export_fp32(model, out)
    inputs = long_inputs(calibration)
    diffs = parity(model, fp32_xml, inputs)
    print(f"FP32 IR vs torch, max abs diff over {PARITY_SECONDS} s: {diffs}")
    failures = parity_failures(diffs)
    if failures:
        raise SystemExit(f"FP32 IR parity failed: {', '.join(failures)}")
    int8_xml, info = quantize_int8(fp32_xml, calibration, out, validate=validate, subset_size=subset_size)
    int8_diffs = output_differences(compile_f32(fp32_xml), int8_xml, inputs)
    print(f"INT8 IR: {int8_xml} ({info}); vs FP32, max abs diff: {int8_diffs}")
    return {"fp32_parity_max_abs_diff": max(diffs[name] for name in OUTPUTS if name != "energy_db"),
            "fp32_parity": diffs, "int8_vs_fp32_max_abs_diff": int8_diffs, "int8": info}

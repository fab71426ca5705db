"""training/lib/export.py and the export step: the FP32 IR matches torch at every clip length, the INT8 IR tracks
the FP32 one, and the manifest lets the runtime verify what it loads (coughkd.model checks it)."""
from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch
from torch import nn

from coughkd.audio import SAMPLE_RATE
from coughkd.features import front_end_spec
from coughkd.model import FORMAT, INPUT, OUTPUTS, SOUND_TYPES, sha256_file
from training.lib.export import (
    GATE_PREFIX,
    PARITY_SECONDS,
    VARIANTS,
    compile_f32,
    export_fp32,
    parity,
    parity_failures,
    quantize_int8,
    write_manifest,
)
from training.models.students import (
    WINDOW_HOP_SAMPLES,
    WINDOW_SAMPLES,
    GateEnsemble,
    LogMelCNN,
    Screener,
    SoundTypeCNN,
)


def sounds(n: int, seed: int, seconds: float = 1.0) -> np.ndarray:
    """(n, samples) noise floors with one to three bursts of noise or tone at random times, bands and loudness:
    realistic input statistics without the dataset."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    clips = []
    for _ in range(n):
        clip = rng.normal(0.0, 10 ** rng.uniform(-4, -2), t.size)
        for _ in range(rng.integers(1, 4)):
            envelope = np.exp(-(((t - rng.uniform(0, seconds)) / rng.uniform(0.03, 0.2)) ** 2))
            source = rng.normal(size=t.size) if rng.random() < 0.5 else np.sin(2 * np.pi * rng.uniform(100, 3500) * t)
            clip += 10 ** rng.uniform(-2, 0) * envelope * source
        clips.append(clip)
    return np.asarray(clips, dtype=np.float32)


def fitted(model: Screener) -> Screener:
    """Batch-norm statistics fitted to sound-like inputs, as training leaves them; untrained statistics make the
    outputs almost constant, which would make any comparison vacuous."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(sounds(64, seed=5)))
    return model.eval()


def tiny_student() -> nn.Module:
    """The exported contract (students.Screener: front end, student, gate) with narrow CNNs, for speed; its gate
    pools by max alone, the real one's by mean and max, so export is tested with both."""
    torch.manual_seed(0)
    return fitted(Screener(LogMelCNN(channels=(8, 8, 16, 16, 16)),
                           SoundTypeCNN(channels=(8, 8, 16, 16, 16), pooling="max")))


def tiny_active_student() -> nn.Module:
    """The tiny contract with a gate of two networks that pool over the active span alone (students.active_span):
    the mask is computed inside the graph, from the log-mel, and must survive conversion as the pooling does."""
    torch.manual_seed(0)
    narrow = (8, 8, 16, 16, 16)
    return fitted(Screener(LogMelCNN(channels=narrow), GateEnsemble([SoundTypeCNN(channels=narrow, pooling="active"),
                                                                     SoundTypeCNN(channels=narrow, pooling="active")])))


def real_student() -> nn.Module:
    """What is shipped: the log-mel CNN and the sound-type gate (a mean of two networks) behind the front end, at
    their real widths."""
    torch.manual_seed(0)
    return fitted(Screener(LogMelCNN(), GateEnsemble([SoundTypeCNN(), SoundTypeCNN()])))


def convolutions(model: ov.Model) -> int:
    return sum(op.get_type_name() in ("Convolution", "GroupConvolution") for op in model.get_ops())


@pytest.mark.slow
@pytest.mark.parametrize("make_student", [tiny_student, tiny_active_student, real_student],
                         ids=["tiny", "tiny-active", "cnn"])
def test_fp32_ir_matches_torch_at_every_length(make_student, tmp_path: Path) -> None:
    model = make_student()
    xml = export_fp32(model, tmp_path)

    ir = ov.Core().read_model(xml)
    assert [i.get_names() for i in ir.inputs] == [{INPUT}]
    assert str(ir.input(0).get_partial_shape()) == "[?,?]"
    assert [o.get_names() for o in ir.outputs] == [{name} for name in OUTPUTS]
    shapes = [o.get_partial_shape() for o in ir.outputs]
    assert [s.rank.get_length() for s in shapes] == [1, 2, 2, 3, 2]
    assert shapes[1][1] == shapes[3][1] == len(SOUND_TYPES) and all(s[0].is_dynamic for s in shapes)
    constants = [op for op in ir.get_ops() if op.get_type_name() == "Constant"]
    assert not [c for c in constants if c.get_output_element_type(0) == ov.Type.f16], "weights were compressed to fp16"
    # The window heads and the MFCC transform are matmuls: an einsum compiles to transposes, reshapes and a shape
    # subgraph of its own, which a graph of dynamic length runs on every call.
    assert not [op for op in ir.get_ops() if op.get_type_name() == "Einsum"]
    if isinstance(model.sound, GateEnsemble):  # its networks go in side by side, as one network's convolutions
        alone = ov.Core().read_model(export_fp32(Screener(model.covid, model.sound.members[0]), tmp_path / "alone"))
        assert convolutions(ir) == convolutions(alone) < len(ir.get_ops())

    inputs = sounds(2, seed=0, seconds=30.0)
    inputs[:, :SAMPLE_RATE // 5] = 0.0  # digital silence first, and after 20 s: the active span is not everything
    inputs[:, 20 * SAMPLE_RATE:] = 0.0
    diffs = parity(model, xml, inputs)
    print(f"{make_student.__name__}: FP32 IR vs torch max abs diff over {PARITY_SECONDS} s: {diffs}")
    assert parity_failures(diffs) == []

    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.covid.covid_head.bias.add_(0.01)
    assert parity_failures(parity(changed, xml, inputs[..., :SAMPLE_RATE])), "parity cannot see a changed model"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The real-width networks exported to a complete model folder, as training/export.py's CLI lays it out (the
    tiny ones' gate is too narrow to survive INT8 on random weights)."""
    out = tmp_path_factory.mktemp("model")
    model = real_student()
    fp32_xml = export_fp32(model, out)
    _, info = quantize_int8(fp32_xml, sounds(64, seed=1), out)
    write_manifest(
        out,
        model_id="coughkd-test",
        command="pytest tests/test_export.py",
        threshold={"covid": 0.5, "cough": 0.5},
        operating_point={"sensitivity": 0.8, "specificity": 0.9, "source": "validation"},
        metrics={"auc": np.float32(0.75)},
        teacher={"name": "none"},
        data={"recordings": 0},
        student={"family": "cnn", "parameters": sum(p.numel() for p in model.parameters())},
        front_end=front_end_spec(),
    )
    return out, info


@pytest.mark.slow
def test_int8_ir_tracks_fp32(shipped: tuple[Path, dict]) -> None:
    out, info = shipped
    assert info["method"] == "ptq"
    int8 = ov.Core().read_model(out / VARIANTS["int8"])
    assert sum(op.get_type_name() == "FakeQuantize" for op in int8.get_ops()) == info["quantizers"] > 0
    assert [o.get_names() for o in int8.outputs] == [{name} for name in OUTPUTS]

    x = sounds(64, seed=2)
    fp32_out = compile_f32(out / VARIANTS["fp32"])(x)
    int8_out = compile_f32(int8)(x)
    for name in OUTPUTS:
        r = np.corrcoef(fp32_out[name].ravel(), int8_out[name].ravel())[0, 1]
        diff = np.abs(fp32_out[name] - int8_out[name]).max()
        print(f"{name}: INT8 vs FP32 correlation {r:.5f}, max abs diff {diff:.3f}")
        if name in ("sound_logits", "window_sound_logits"):
            assert diff < 1e-3, f"{name}: the gate stays in float (float_scope), yet INT8 moved it by {diff:.4f}"
        else:
            assert r > 0.99, f"{name}: INT8 vs FP32 correlation {r:.4f}"
    gate_fed = [op for op in int8.get_ops() if op.get_friendly_name().startswith(GATE_PREFIX)
                and any(v.get_node().get_type_name() == "FakeQuantize" for v in op.input_values())]
    assert not gate_fed, f"the gate's layers must take float inputs: {[op.get_friendly_name() for op in gate_fed]}"


@pytest.mark.slow
def test_manifest_lets_the_runtime_verify_the_folder(shipped: tuple[Path, dict]) -> None:
    out, _ = shipped
    manifest = json.loads((out / "manifest.json").read_text())
    expected = {name for xml in VARIANTS.values() for name in (xml, xml.replace(".xml", ".bin"))}
    assert set(manifest["files"]) == expected
    for name, digest in manifest["files"].items():
        assert sha256_file(out / name) == digest
    assert manifest["variants"] == {"fp32": "student_fp32.xml", "int8": "student_int8.xml"}
    assert manifest["format"] == FORMAT
    assert manifest["input"] == {"input": "waveform", "sample_rate": 16000, "window_seconds": 1.0,
                                 "covid_input": "whole clip", "front_end": front_end_spec(),
                                 "window": {"samples": WINDOW_SAMPLES, "hop_samples": WINDOW_HOP_SAMPLES}}
    assert manifest["outputs"] == list(OUTPUTS)
    assert manifest["sound_types"] == list(SOUND_TYPES)
    assert set(manifest["threshold"]) == {"covid", "cough"}
    assert manifest["operating_point"]["source"] == "validation"
    assert manifest["metrics"]["auc"] == pytest.approx(0.75)
    assert datetime.fromisoformat(manifest["created"]).utcoffset().total_seconds() == 0
    for field in ("model_id", "command", "teacher", "data", "student"):
        assert manifest[field], field


@pytest.mark.slow
def test_runtime_loads_the_exported_folder(shipped: tuple[Path, dict]) -> None:
    import coughkd

    t = np.arange(16000) / 16000
    burst = np.sin(2 * np.pi * 400 * t) * np.exp(-((t - 0.5) ** 2) / 0.005)
    waveform = (burst + 0.01 * np.random.default_rng(3).normal(size=t.size)).astype(np.float32)
    prediction = coughkd.load(shipped[0]).predict(waveform, sample_rate=16000)
    assert prediction.sound_type in SOUND_TYPES and 0.0 <= prediction.cough_probability <= 1.0
    assert (prediction.covid_probability is None) == (prediction.cough_probability < 0.5)
    assert prediction.model == "coughkd-test"


@pytest.mark.slow
def test_accuracy_control_reverts_layers_until_within_max_drop(tmp_path: Path) -> None:
    model = tiny_student()
    fp32_xml = export_fp32(model, tmp_path)
    x = sounds(32, seed=4)
    with torch.no_grad():
        reference = model(torch.from_numpy(x))[0].numpy()

    def closeness(compiled: ov.CompiledModel) -> float:
        return -float(np.abs(compiled(x)["covid_logit"] - reference).mean())

    calibration = sounds(64, seed=1)
    _, ptq = quantize_int8(fp32_xml, calibration, tmp_path)
    xml, info = quantize_int8(fp32_xml, calibration, tmp_path, closeness, max_drop=0.02)
    print(info)
    assert info["method"] == "accuracy_control", f"plain quantization already within max_drop: {info}"
    assert info["fp32_metric"] - info["int8_metric"] <= 0.02 < info["fp32_metric"] - info["ptq_metric"]
    assert 0 < info["quantizers"] < ptq["quantizers"], "accuracy control should keep some layers, not all, in INT8"
    int8 = ov.Core().read_model(xml)
    assert sum(op.get_type_name() == "FakeQuantize" for op in int8.get_ops()) == info["quantizers"]


@pytest.mark.slow
def test_cli_exports_a_checkpoint_into_a_complete_model_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from training.export import main

    model = real_student()
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    parameters, gate_parameters = (sum(p.numel() for p in part.parameters()) for part in (model.covid, model.sound))
    torch.save({"family": "cnn", "config": {}, "state_dict": model.covid.state_dict(), "parameters": parameters},
               run / "student.pt")
    torch.save({"members": [m.state_dict() for m in model.sound.members], "parameters": gate_parameters,
                "threshold": 0.5}, run / "sound_cnn.pt")
    np.save(run / "calibration.npy", sounds(32, seed=6))
    (run / "metrics.json").write_text(json.dumps({
        "threshold": {"covid": 0.4, "cough": 0.5},
        "operating_point": {"sensitivity": 0.7, "specificity": 0.9, "source": "validation"},
        "metrics": {"test_auc": 0.7},
        "teacher": {"name": "efficientat_mn04"},
        "data": {"train": 10},
    }))
    out = tmp_path / "model"
    main([f"--checkpoint={run / 'student.pt'}", f"--gate={run / 'sound_cnn.pt'}", f"--run_dir={run}", f"--out={out}"])
    print(capsys.readouterr().out)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_id"] == "coughkd-cnn-demo"
    assert manifest["student"] == {"family": "cnn", "parameters": parameters, "gate_parameters": gate_parameters}
    assert manifest["sound_types"] == list(SOUND_TYPES)
    assert manifest["threshold"] == {"covid": 0.4, "cough": 0.5}
    assert parity_failures(manifest["metrics"]["export"]["fp32_parity"]) == []
    assert manifest["metrics"]["export"]["int8"]["quantizers"] > 0
    assert manifest["command"].startswith("python -m training.export --checkpoint=")
    assert {name: sha256_file(out / name) for name in manifest["files"]} == manifest["files"]

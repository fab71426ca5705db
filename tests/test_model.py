"""StudentRuntime: verification of the model folder, correct outputs, and sharing across threads."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from coughkd.audio import load_audio
from coughkd.model import F32, OUTPUTS, ModelError, StudentRuntime, read_manifest
from coughkd.predict import sigmoid, softmax
from tests.conftest import SHIPPED
from tests.model_fixture import make_model_dir, reference


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture
def copy_dir(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


@pytest.fixture(scope="module")
def runtime(model_dir: Path) -> StudentRuntime:
    return StudentRuntime(model_dir, config=F32)


def waveforms(n: int = 6, seed: int = 0, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.geomspace(0.01, 1.0, n, dtype=np.float32)[:, None]
    return rng.standard_normal((n, int(seconds * 16000))).astype(np.float32) * scale


def edit_manifest(model_dir: Path, edit: Callable[[dict], None]) -> None:
    path = model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def rehash(model_dir: Path) -> None:
    def update(manifest: dict) -> None:
        for name in manifest["files"]:
            manifest["files"][name] = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
    edit_manifest(model_dir, update)


@pytest.mark.parametrize("variant", ["int8", "fp32"])
def test_outputs_match_the_network(model_dir: Path, variant: str) -> None:
    runtime = StudentRuntime(model_dir, variant=variant, config=F32)
    batch = waveforms()
    got, expected = runtime.run(batch), reference()(batch)
    assert got["covid_logit"].shape == (6,) and got["sound_logits"].shape == (6, 4)
    assert got["window_sound_logits"].shape[:2] == (6, 4) and got["energy_db"].shape == (6, 100)
    for name in OUTPUTS:
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-3, err_msg=name)
    assert runtime.variant == variant and runtime.model_id == "fixture-seed0"
    assert runtime.thresholds == {"covid": 0.5, "cough": 0.5}
    assert runtime.window == (15360, 2560)  # 6 feature frames of 160 ms, every 160 ms


def test_any_length_in_one_call(runtime: StudentRuntime) -> None:
    for seconds in (0.3, 1.0, 3.01, 30.0):
        batch = waveforms(2, seconds=seconds)
        got = runtime.run(batch)
        assert got["energy_db"].shape == (2, batch.shape[-1] // 160)
        np.testing.assert_allclose(got["covid_logit"], reference()(batch)["covid_logit"], rtol=1e-4, atol=1e-4)


def test_wrong_input_shape(runtime: StudentRuntime) -> None:
    with pytest.raises(ValueError, match=r"\(n >= 1, samples\)"):
        runtime.run(np.zeros((2, 64, 101), np.float32))
    with pytest.raises(ValueError, match=r"\(n >= 1, samples\)"):
        runtime.run(np.zeros((0, 16000), np.float32))


def test_concurrent_calls_match_sequential(runtime: StudentRuntime) -> None:
    batches = [waveforms(1 + i % 4, seed=i) for i in range(32)]
    sequential = [runtime.run(b) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(runtime.run, batches))
    for a, b in zip(sequential, concurrent):
        for name in OUTPUTS:
            np.testing.assert_array_equal(a[name], b[name])


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="manifest.json is missing"):
        StudentRuntime(tmp_path)


def test_invalid_manifest(copy_dir: Path) -> None:
    (copy_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_manifest(copy_dir)
    (copy_dir / "manifest.json").write_text('{"format": 2}')
    with pytest.raises(ModelError, match="no 'model_id' entry"):
        read_manifest(copy_dir)


@pytest.mark.parametrize("edit", [lambda m: m.pop("format"), lambda m: m.update(format=1)])
def test_model_folder_of_an_older_format_is_refused(copy_dir: Path, edit: Callable[[dict], None]) -> None:
    """A folder whose IR takes a log-mel computed in Python (format 1, before the graph took the waveform)."""
    edit_manifest(copy_dir, edit)
    with pytest.raises(ModelError, match="manifest format 1, built for an older runtime .* needs format 2"):
        StudentRuntime(copy_dir)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.update(files="oops"), '\'files\' must be an object, not "oops"'),
    (lambda m: m.update(variants=["int8"]), "'variants' must be an object"),
    (lambda m: m.update(input=None), "'input' must be an object"),
    (lambda m: m["input"].update(front_end=[]), "'input.front_end' must be an object"),
    (lambda m: m.update(threshold=0.5), "'threshold' must be an object"),
    (lambda m: m.update(threshold={"covid": 0.5}), "'threshold' has no 'cough' entry"),
    (lambda m: m["threshold"].update(covid="high"), 'threshold \'covid\' must be a number, not "high"'),
    (lambda m: m["threshold"].update(cough=float("nan")), "threshold 'cough' must be a number, not NaN"),
    (lambda m: m["threshold"].update(cough=True), "threshold 'cough' must be a number, not true"),
    (lambda m: m.update(model_id=7), "'model_id' must be a string"),
    (lambda m: m["files"].update({"student_int8.bin": 5}), "the sha256 of student_int8.bin must be a string"),
    (lambda m: m["files"].update({"../../etc/passwd": "0" * 64}), "../../etc/passwd is not inside the model folder"),
    (lambda m: m["variants"].update(int8={"xml": "student_int8.xml"}), "variant 'int8' must name its .xml file"),
    (lambda m: m["input"].pop("window"), "'input.window' must give the positive integers"),
    (lambda m: m["input"]["window"].update(hop_samples=0), "'input.window' must give the positive integers"),
])
def test_malformed_manifest(copy_dir: Path, edit: Callable[[dict], None], message: str) -> None:
    edit_manifest(copy_dir, edit)
    with pytest.raises(ModelError, match=re.escape(message)):
        StudentRuntime(copy_dir)


def test_manifest_that_is_not_an_object(copy_dir: Path) -> None:
    (copy_dir / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="must hold a JSON object, not a list"):
        read_manifest(copy_dir)


def test_missing_file(copy_dir: Path) -> None:
    (copy_dir / "student_int8.bin").unlink()
    with pytest.raises(ModelError, match="student_int8.bin is missing"):
        StudentRuntime(copy_dir)


def test_damaged_file(copy_dir: Path) -> None:
    data = bytearray((copy_dir / "student_fp32.bin").read_bytes())
    data[10] ^= 0xFF
    (copy_dir / "student_fp32.bin").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="student_fp32.bin is damaged"):
        StudentRuntime(copy_dir, variant="int8")


def test_front_end_mismatch(copy_dir: Path) -> None:
    edit_manifest(copy_dir, lambda m: m["input"]["front_end"].update(n_mels=128, fmax=8000.0))
    expected = r"different front end \(fmax: model 8000.0 vs runtime 4000.0, n_mels: model 128 vs runtime 48\)"
    with pytest.raises(ModelError, match=expected):
        StudentRuntime(copy_dir)


def test_window_mismatch(copy_dir: Path) -> None:
    edit_manifest(copy_dir, lambda m: m["input"].update(window_seconds=2.0))
    with pytest.raises(ModelError, match="2.0 s"):
        StudentRuntime(copy_dir)


def test_model_built_for_window_scores_is_refused(copy_dir: Path) -> None:
    edit_manifest(copy_dir, lambda m: m["input"].pop("covid_input"))
    with pytest.raises(ModelError, match="trained on 1 s windows; this runtime gives it the whole clip"):
        StudentRuntime(copy_dir)


def test_unknown_variant(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="variant 'fp16' is not in this model; it has fp32, int8"):
        StudentRuntime(model_dir, variant="fp16")


def test_unlisted_file_is_refused(copy_dir: Path) -> None:
    edit_manifest(copy_dir, lambda m: m["files"].pop("student_int8.bin"))
    with pytest.raises(ModelError, match="student_int8.bin is not listed"):
        StudentRuntime(copy_dir)


def test_wrong_output_names(copy_dir: Path) -> None:
    xml = copy_dir / "student_int8.xml"
    xml.write_text(xml.read_text().replace("sound_logits", "other_logits"))
    rehash(copy_dir)
    with pytest.raises(ModelError, match="must take 'waveform' and give covid_logit, sound_logits"):
        StudentRuntime(copy_dir)


def test_other_sound_types_are_refused(copy_dir: Path) -> None:
    """A model whose gate has other classes, or them in another order, would be read wrongly: refuse it."""
    edit_manifest(copy_dir, lambda m: m.update(sound_types=["speech", "cough", "breathing", "other"]))
    with pytest.raises(ModelError, match="sound types"):
        StudentRuntime(copy_dir)


def test_unreadable_ir(copy_dir: Path) -> None:
    (copy_dir / "student_int8.xml").write_text("<net>")
    rehash(copy_dir)
    with pytest.raises(ModelError, match="not a readable OpenVINO model"):
        StudentRuntime(copy_dir)


@SHIPPED
def test_shipped_model_verifies_and_variants_agree(cough_data: Path) -> None:
    fp32 = StudentRuntime(variant="fp32", config=F32)
    int8 = StudentRuntime(variant="int8", config=F32)
    assert fp32.manifest["outputs"] == list(OUTPUTS)
    assert 0.0 < fp32.thresholds["covid"] < 1.0 and 0.0 < fp32.thresholds["cough"] < 1.0
    names = sorted(p.name for p in (cough_data / "raw").glob("*.mp3") if p.stat().st_size > 1000)[:8]
    for name in names:
        x = load_audio(cough_data / "raw" / name).waveform[None]
        a, b = fp32.run(x), int8.run(x)
        assert np.isfinite(a["covid_logit"]).all() and np.isfinite(a["window_sound_logits"]).all()
        assert np.abs(sigmoid(a["covid_logit"]) - sigmoid(b["covid_logit"])).max() < 0.15
        assert np.abs(softmax(a["sound_logits"]) - softmax(b["sound_logits"])).max() < 0.15

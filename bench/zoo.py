"""The models benchmarked side by side, each built once (heavy imports happen only here), and the clips they score."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coughkd.audio import SAMPLE_RATE, load_audio
from coughkd.events import detect_events, event_centres, frame_energy_db
from coughkd.model import F32

REPO = Path(__file__).resolve().parents[1]


EXAMPLES = REPO / "assets" / "examples"


MODELS = ("wav2vec2_base_torch", "wav2vec2_base_ov_fp32", "teacher_torch", "mfcc_baseline", "student_torch",
          "student_ov_fp32", "student_ov_int8", "student_ir_fp32", "student_ir_int8")


BARE_IR = {"student_ir_fp32": "fp32", "student_ir_int8": "int8"}


LABELS = {
    "wav2vec2_base_torch": ("wav2vec2-base", "PyTorch FP32"),
    "wav2vec2_base_ov_fp32": ("wav2vec2-base", "OpenVINO FP32"),
    "teacher_torch": ("EfficientAT mn04 teacher", "PyTorch FP32"),
    "mfcc_baseline": ("MFCC baseline", "PyTorch statistics + scikit-learn"),
    "student_torch": ("student", "PyTorch FP32"),
    "student_ov_fp32": ("student (coughkd)", "OpenVINO FP32"),
    "student_ov_int8": ("student (coughkd)", "OpenVINO INT8"),
    "student_ir_fp32": ("student, bare IR call", "OpenVINO FP32"),
    "student_ir_int8": ("student, bare IR call", "OpenVINO INT8"),
}


TINY_WAV2VEC2 = {"hidden_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 96,
                 "conv_dim": (32,) * 7}


@dataclass(frozen=True)
class BenchConfig:
    """How much to measure. The default fits in ~10 minutes on 2 cores; wav2vec2 on 30 s is the slowest cell."""

    clips_s: tuple[float, ...] = (1.0, 5.0, 30.0)
    rounds: tuple[int, ...] = (10, 7, 3)  # timed rounds per clip, after one warm-up call per model
    round_budget_s: float = 0.25  # cheap models repeat within a round up to about this long ...
    max_calls_per_round: int = 20  # ... and at most this many times
    app_clients: tuple[int, ...] = (1, 4, 16)
    app_requests: int = 48  # per concurrency level, at least 2 per client
    profile_calls: int = 200  # calls of the INT8 IR with per-node counters on, per thread setting (bench.profile)
    wav2vec2: dict = field(default_factory=dict)  # Wav2Vec2Config overrides; empty = wav2vec2-base


QUICK = BenchConfig(clips_s=(1.0, 5.0), rounds=(2, 2), round_budget_s=0.05, max_calls_per_round=3,
                    app_clients=(1, 4), app_requests=8, profile_calls=3, wav2vec2=TINY_WAV2VEC2)


@dataclass(frozen=True)
class Paths:
    model_dir: Path
    run_dir: Path
    eval_report: Path
    out: Path


def make_clips(durations: Sequence[float], examples: Path = EXAMPLES) -> dict[float, np.ndarray]:
    """The bundled cough examples laid end to end (repeated as needed) and cut to each duration.

    A 1 s clip is the window around the first detected cough, so it holds a cough, not the start of silence.
    """
    coughs = [load_audio(p).waveform for p in sorted(examples.glob("cough_*.mp3"))]
    if not coughs:
        raise FileNotFoundError(f"no cough_*.mp3 examples in {examples}")
    track = np.concatenate(coughs)
    need = int(round(max(durations) * SAMPLE_RATE))
    track = np.tile(track, -(-need // len(track)))[:max(need, len(track))]
    clips = {}
    for seconds in durations:
        n = int(round(seconds * SAMPLE_RATE))
        if seconds <= 1.0:
            energy = frame_energy_db(track)
            centre = int(event_centres(energy, detect_events(energy, len(track) / SAMPLE_RATE)[:1])[0])
            start = min(max(centre - n // 2, 0), len(track) - n)
            clips[seconds] = np.ascontiguousarray(track[start:start + n], dtype=np.float32)
        else:
            clips[seconds] = np.ascontiguousarray(track[:n], dtype=np.float32)
    return clips


def features_of(waveform: np.ndarray):
    """The model's features of a clip (training.lib.clips), after the same loading step predict applies (peak
    normalisation)."""
    from training.lib.clips import clip_features

    return clip_features(load_audio(waveform, SAMPLE_RATE).waveform)


def ov_config(threads: int) -> dict[str, str]:
    """True FP32 (this CPU would run bf16 otherwise), a fixed thread count, one stream for the lowest latency."""
    return {**F32, "INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}


class TorchStudent:
    """The student and gate checkpoints in PyTorch behind the runtime interface `coughkd.predict.predict` calls, so
    the PyTorch row pays for exactly the same pipeline as the OpenVINO rows."""

    def __init__(self, checkpoint: dict, gate: dict, manifest: dict) -> None:
        import torch

        from training.models.students import WINDOW_HOP_SAMPLES, WINDOW_SAMPLES, screener

        self.torch = torch
        self.model = screener(checkpoint, gate)
        self.thresholds = {k: float(v) for k, v in manifest["threshold"].items()}
        self.model_id = manifest["model_id"] + "-torch"
        self.window = (WINDOW_SAMPLES, WINDOW_HOP_SAMPLES)

    def run(self, waveforms: np.ndarray) -> dict[str, np.ndarray]:
        from coughkd.model import OUTPUTS

        with self.torch.inference_mode():
            outputs = self.model(self.torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32)))
        return {name: t.numpy() for name, t in zip(OUTPUTS, outputs)}


class Zoo:
    """Builds each model once (and compiles OpenVINO ones per thread setting); heavy imports happen only here."""

    def __init__(self, paths: Paths, wav2vec2: dict, work_dir: Path, wav2vec2_ir: Path | None = None) -> None:
        self.paths = paths
        self.wav2vec2_overrides = wav2vec2
        self.work_dir = work_dir
        self._wav2vec2_ir = wav2vec2_ir
        self._cache: dict[str, Any] = {}
        self.conversion_s: float | None = None

    def _once(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def manifest(self) -> dict:
        from coughkd.model import read_manifest

        return self._once("manifest", lambda: read_manifest(self.paths.model_dir))

    @property
    def family(self) -> str:
        return self.manifest["student"]["family"]

    def student_checkpoint_path(self) -> Path:
        return self.paths.run_dir / f"student_{self.family}.pt"

    def gate_checkpoint_path(self) -> Path:
        return self.paths.run_dir / "sound_cnn.pt"

    def wav2vec2(self):
        def build():
            import torch
            from transformers import Wav2Vec2Config, Wav2Vec2Model

            torch.manual_seed(0)
            return Wav2Vec2Model(Wav2Vec2Config(**self.wav2vec2_overrides)).eval()

        return self._once("wav2vec2", build)

    def wav2vec2_ir(self) -> Path:
        """wav2vec2 converted with openvino.convert_model and saved uncompressed (FP32 weights) in the work dir."""
        if self._wav2vec2_ir is None:
            import openvino as ov
            import torch

            start = time.perf_counter()
            with torch.no_grad():
                model = ov.convert_model(self.wav2vec2(), example_input=torch.zeros(1, SAMPLE_RATE),
                                         input=[(ov.PartialShape([1, -1]), ov.Type.f32)])
            self._wav2vec2_ir = self.work_dir / "wav2vec2_base.xml"
            ov.save_model(model, self._wav2vec2_ir, compress_to_fp16=False)
            self.conversion_s = time.perf_counter() - start
        return self._wav2vec2_ir

    def teacher(self):
        def build():
            import torch

            from training.models.teachers import build_teacher

            checkpoint = torch.load(self.paths.run_dir / "teacher.pt", map_location="cpu", weights_only=True)
            teacher = build_teacher(checkpoint["teacher"])
            teacher.load_state_dict(checkpoint["state_dict"])
            return teacher.eval()

        return self._once("teacher", build)

    def mfcc(self):
        def build():
            from training.lib.probe import MfccBaseline

            rng = np.random.default_rng(0)
            noise = [rng.standard_normal(SAMPLE_RATE).astype(np.float32) * (0.1 + i % 5) for i in range(20)]
            return MfccBaseline().fit(noise, [i % 2 for i in range(20)])

        return self._once("mfcc", build)

    def torch_student(self) -> TorchStudent:
        def build():
            import torch

            checkpoint = torch.load(self.student_checkpoint_path(), map_location="cpu", weights_only=True)
            gate = torch.load(self.gate_checkpoint_path(), map_location="cpu", weights_only=True)
            return TorchStudent(checkpoint, gate, self.manifest)

        return self._once("torch_student", build)

    def prepare(self, name: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        """prepare(clip) -> a call that scores that clip with `name`. Work that is not the model's cost (the bare
        IR's loading step) happens in prepare; OpenVINO models are compiled here for `threads`."""
        if name in BARE_IR:
            return self._bare_ir(BARE_IR[name], threads)
        builders = {"wav2vec2_base_torch": self._wav2vec2_torch, "wav2vec2_base_ov_fp32": self._wav2vec2_ov,
                    "teacher_torch": self._teacher_clip, "mfcc_baseline": self._mfcc_clip,
                    "student_torch": self._student_torch, "student_ov_fp32": self._student_ov,
                    "student_ov_int8": self._student_ov}
        if name not in builders:
            raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
        return builders[name](name, threads)

    def _wav2vec2_torch(self, name: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        import torch

        model = self.wav2vec2()

        def prepare(clip: np.ndarray) -> Callable[[], object]:
            x = torch.from_numpy(clip[None])

            def call():
                with torch.inference_mode():
                    return model(x).last_hidden_state
            return call
        return prepare

    def _wav2vec2_ov(self, name: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        import openvino as ov

        request = ov.Core().compile_model(self.wav2vec2_ir(), "CPU", ov_config(threads)).create_infer_request()
        return lambda clip: (lambda: request.infer({0: clip[None]}))

    def _teacher_clip(self, name: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        import torch

        teacher = self.teacher()

        def prepare(clip: np.ndarray) -> Callable[[], object]:
            def call():
                with torch.inference_mode():
                    waveform = features_of(clip).waveform
                    return teacher(torch.from_numpy(np.ascontiguousarray(waveform[None]))).embedding
            return call
        return prepare

    def _mfcc_clip(self, name: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        baseline = self.mfcc()
        return lambda clip: (lambda: baseline.predict_proba([clip]))

    def _student_torch(self, name: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        from coughkd.predict import predict

        runtime = self.torch_student()
        return lambda clip: (lambda: predict(runtime, clip, SAMPLE_RATE))

    def _student_ov(self, name: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        import coughkd

        model = coughkd.load(self.paths.model_dir, name.rsplit("_", 1)[1], config=ov_config(threads))
        return lambda clip: (lambda: model.predict(clip, SAMPLE_RATE))

    def _bare_ir(self, variant: str, threads: int) -> Callable[[np.ndarray], Callable[[], object]]:
        import coughkd

        model = coughkd.load(self.paths.model_dir, variant, config=ov_config(threads))

        def prepare(clip: np.ndarray) -> Callable[[], object]:
            waveform = np.ascontiguousarray(load_audio(clip, SAMPLE_RATE).waveform[None])
            return lambda: model.runtime.run(waveform)
        return prepare

    def parameters(self, name: str) -> int | None:
        from training.models.students import count_parameters

        if name.startswith("wav2vec2"):
            return count_parameters(self.wav2vec2())
        if name == "teacher_torch":
            return count_parameters(self.teacher())
        if name == "mfcc_baseline":
            pipeline = self.mfcc().model.best_estimator_
            n_features = pipeline[-1].coef_.size
            return 3 * n_features + 1  # scaler mean and scale, weights, bias
        return int(self.manifest["student"]["parameters"] + self.manifest["student"]["gate_parameters"])

    def model_file(self, name: str) -> Path | None:
        """The file a deployment ships: the IR for OpenVINO rows, the checkpoint for PyTorch ones."""
        if name == "wav2vec2_base_ov_fp32":
            return self.wav2vec2_ir()
        if name == "teacher_torch":
            return self.paths.run_dir / "teacher.pt"
        if name == "student_torch":
            return self.student_checkpoint_path()
        if name in ("student_ov_fp32", "student_ov_int8") or name in BARE_IR:
            variant = BARE_IR.get(name) or name.rsplit("_", 1)[1]
            return self.paths.model_dir / self.manifest["variants"][variant]
        return None


def file_bytes(path: Path | None) -> int | None:
    """Size on disk; an IR is its .xml plus its .bin."""
    if path is None:
        return None
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return sum(f.stat().st_size for f in files)

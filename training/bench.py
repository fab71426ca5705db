"""Speed, size, memory and accuracy of the student beside the models it replaces, measured in one run.

    python -m training.bench            # ~10 min on a 2-core laptop; needs `python -m training.reproduce` first
    python -m training.bench --quick    # a tiny configuration (small wav2vec2, short clips) for tests

Writes reports/bench.json (every sample statistic and ratio), reports/bench.md (the tables) and reports/bench.png
(latency vs AUC). Models, on the same clips (1 s, 5 s, 30 s of the bundled cough examples laid end to end) and the
same thread settings (1 thread and all cores):
- wav2vec2-base (the real 95M-parameter configuration with random weights: speed does not depend on the weights),
  PyTorch and OpenVINO FP32, on the whole clip, as a wav2vec2 classifier would take it;
- the EfficientAT teacher (PyTorch mn04 on the whole band-limited clip, as the teacher step runs it; its probes are
  a few dot products and left out) and the student (PyTorch, through the same coughkd pipeline);
- the student through `coughkd` (OpenVINO FP32 and INT8): the whole predict path a user pays for (band limit,
  event detection, log-mel, the IR on the clip and on the event windows), and the bare IR call on the whole clip's
  log-mel, reported separately;
- the MFCC baseline (log-mel MFCC statistics + logistic regression; fitted on noise here, as its cost does not
  depend on its weights).
Decoding the file is left out for every model. Timings are interleaved: each round runs every model in turn
(rotating the order), so background noise hits all of them alike; cheap models repeat within a round.
Peak resident memory comes from a fresh process per model that only loads it and predicts once. App throughput
starts `python app.py` and drives it with N concurrent gradio_client callers, each on its own clip, checking every
answer against coughkd run directly beforehand.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coughkd.audio import SAMPLE_RATE, AudioError, load_audio
from coughkd.events import detect_events, event_centres
from coughkd.predict import centred_slices, clip_features

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "assets" / "examples"
DATASET_RAW = REPO / ".." / "shared" / "data" / "covid19-cough" / "raw"
REFERENCE = "student_ov_int8"
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
# Rows of training.evaluate's report.json; "{family}" is the shipped student family.
ACCURACY_KEYS = {"teacher_torch": "teacher", "mfcc_baseline": "mfcc_baseline",
                 "student_torch": "student_{family}_torch", "student_ov_fp32": "student_fp32",
                 "student_ov_int8": "student_int8"}
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
    wav2vec2: dict = field(default_factory=dict)  # Wav2Vec2Config overrides; empty = wav2vec2-base


QUICK = BenchConfig(clips_s=(1.0, 5.0), rounds=(2, 2), round_budget_s=0.05, max_calls_per_round=3,
                    app_clients=(1, 4), app_requests=8, wav2vec2=TINY_WAV2VEC2)


@dataclass(frozen=True)
class Paths:
    model_dir: Path
    run_dir: Path
    eval_report: Path
    out: Path


# ---- statistics and ratios --------------------------------------------------------------------------------------


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Median and p90 (the tail a user notices) in milliseconds; the minimum shows the noise-free floor."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        raise ValueError("no samples")
    return {"n": int(ms.size), "median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "min_ms": float(ms.min()), "mean_ms": float(ms.mean())}


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is unknown (a model without a file, a failed measurement)."""
    if value is None or reference is None or reference == 0 or not math.isfinite(value) or not math.isfinite(reference):
        return None
    return value / reference


def latency_ratios(latency: list[dict], reference: str = REFERENCE) -> list[dict]:
    """Each latency row with `ratio` = its median / the reference model's median on the same clip and threads."""
    medians = {(r["clip_s"], r["threads"]): r["median_ms"] for r in latency if r["model"] == reference}
    return [{**r, "ratio": ratio(r["median_ms"], medians.get((r["clip_s"], r["threads"])))} for r in latency]


def size_ratios(models: dict[str, dict], reference: str = REFERENCE) -> dict[str, dict[str, float | None]]:
    """Parameters, IR size and peak memory of every model relative to the reference."""
    ref = models[reference]
    return {name: {key: ratio(m.get(key), ref.get(key)) for key in ("parameters", "file_bytes", "peak_rss_bytes")}
            for name, m in models.items()}


def within_source_auc(result: dict) -> float | None:
    """Mean of the per-source AUCs, the headline that the channel confound cannot inflate (see training.evaluate)."""
    aucs = [g["auc"] for g in result.get("per_source", {}).values() if g.get("auc") is not None]
    aucs = [a for a in aucs if math.isfinite(a)]
    return float(np.mean(aucs)) if aucs else None


def accuracy_rows(report: dict, family: str) -> dict[str, dict]:
    """AUCs from training.evaluate's report.json for each benchmarked model that has them."""
    rows = {}
    for name, key in ACCURACY_KEYS.items():
        result = report.get(key.format(family=family))
        if result is None:
            continue
        pooled = result.get("pooled", {})
        rows[name] = {"report_key": key.format(family=family), "within_source_auc": within_source_auc(result),
                      "per_source_auc": {s: g.get("auc") for s, g in result.get("per_source", {}).items()},
                      "pooled_auc": pooled.get("auc"), "pooled_auc_ci": pooled.get("auc_ci"), "n": pooled.get("n")}
    return rows


# ---- interleaved timing -----------------------------------------------------------------------------------------


def interleaved_timing(calls: dict[str, Callable[[], object]], rounds: int, round_budget_s: float,
                       max_calls_per_round: int, pause_s: float = 0.05,
                       clock: Callable[[], float] = time.perf_counter,
                       sleep: Callable[[float], None] = time.sleep) -> dict[str, list]:
    """Per-call wall times (s) of each model: untimed warm-up calls, then `rounds` rounds in which every model
    runs in turn, the order rotating each round. A model repeats within a round so it spends ~`round_budget_s`,
    from its warm-up time, so a 5 ms model gets many samples while a 10 s one gets one per round.

    Before each model's turn the CPU rests `pause_s`: OpenVINO's and PyTorch's worker threads spin for a while
    after a call, and a different runtime started at once would pay for it (10x for a 2-thread torch call right
    after OpenVINO here), a cost no single-model deployment has. Repeats of one model run back to back, as in
    a server that keeps its threads warm.
    """
    names = list(calls)
    repeats = {}
    for name in names:
        sleep(pause_s)
        start = clock()
        calls[name]()
        warm = clock() - start
        if warm < round_budget_s:  # a first call can include one-off work (shape compilation); time a second
            start = clock()
            calls[name]()
            warm = clock() - start
        repeats[name] = int(min(max_calls_per_round, max(1, round_budget_s // max(warm, 1e-9))))
    samples: dict[str, list] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            sleep(pause_s)
            for _ in range(repeats[name]):
                start = clock()
                calls[name]()
                samples[name].append(clock() - start)
    return samples


# ---- clips ------------------------------------------------------------------------------------------------------


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
            window = centred_slices(track, event_centres(track, detect_events(track)[:1]), n)[0]
            clips[seconds] = np.ascontiguousarray(window, dtype=np.float32)
        else:
            clips[seconds] = np.ascontiguousarray(track[:n], dtype=np.float32)
    return clips


def features_of(waveform: np.ndarray):
    """coughkd's features of a clip, after the same loading step predict applies (peak normalisation)."""
    audio = load_audio(waveform, SAMPLE_RATE)
    return clip_features(audio.waveform, audio.sample_rate)


# ---- the models -------------------------------------------------------------------------------------------------


def ov_config(threads: int) -> dict[str, str]:
    """True FP32 (this CPU would run bf16 otherwise), a fixed thread count, one stream for the lowest latency."""
    return {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}


class TorchStudent:
    """The student and gate checkpoints in PyTorch behind the runtime interface `coughkd.predict.predict` calls, so
    the PyTorch row pays for exactly the same pipeline as the OpenVINO rows."""

    def __init__(self, checkpoint: dict, gate: dict, manifest: dict) -> None:
        import torch

        from training.models.students import screener

        self.torch = torch
        self.model = screener(checkpoint, gate)
        self.thresholds = {k: float(v) for k, v in manifest["threshold"].items()}
        self.model_id = manifest["model_id"] + "-torch"

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self.torch.inference_mode():
            covid, sound = self.model(self.torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return covid.numpy(), sound.numpy()


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

            from training.teachers import build_teacher

            checkpoint = torch.load(self.paths.run_dir / "teacher.pt", map_location="cpu", weights_only=True)
            teacher = build_teacher(checkpoint["teacher"])
            teacher.load_state_dict(checkpoint["state_dict"])
            return teacher.eval()

        return self._once("teacher", build)

    def mfcc(self):
        def build():
            from training.evaluate import MfccBaseline

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
        IR's features) happens in prepare; OpenVINO models are compiled here for `threads`."""
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
            features = np.ascontiguousarray(features_of(clip).log_mel[None])
            return lambda: model.runtime.run(features)
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


# ---- peak memory in a fresh process -----------------------------------------------------------------------------


def measure_rss(name: str, paths: Paths, wav2vec2: dict, clip: np.ndarray, wav2vec2_ir: Path | None) -> dict:
    """Load one model, predict once, report this process's peak resident memory (the child side)."""
    with tempfile.TemporaryDirectory() as work:
        zoo = Zoo(paths, wav2vec2, Path(work), wav2vec2_ir)
        zoo.prepare(name, len(os.sched_getaffinity(0)))(clip)()
    return {"model": name, "peak_rss_bytes": peak_rss_bytes(), "imports_torch": "torch" in sys.modules}


def peak_rss_bytes() -> int:
    """This process's peak resident memory. VmHWM belongs to the process's own address space; ru_maxrss (the
    fallback off Linux) also counts the parent's memory at fork time, which would give every child the parent's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_in_subprocess(name: str, paths: Paths, quick: bool, clip_file: Path, wav2vec2_ir: Path | None) -> dict:
    """Peak RSS of `python -m training.bench --measure-rss NAME` (the parent side)."""
    command = [sys.executable, "-m", "training.bench", "--measure-rss", name, "--clip", str(clip_file),
               "--model-dir", str(paths.model_dir), "--run-dir", str(paths.run_dir)]
    if wav2vec2_ir is not None and name == "wav2vec2_base_ov_fp32":
        command += ["--wav2vec2-ir", str(wav2vec2_ir)]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- app throughput ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What coughkd itself answers for one clip, the yardstick for the app's answer."""

    path: str
    covid_probability: float | None  # None where the gate hears no cough
    n_events: int


def check_answer(result: Any, expected: Expected, tolerance: float = 1e-4) -> str | None:
    """None if the app's answer is this clip's answer; otherwise what is wrong with it."""
    if isinstance(result, (list, tuple)):
        result = next((r for r in result if isinstance(r, dict)), None)
    if not isinstance(result, dict):
        return f"{Path(expected.path).name}: no result dict ({type(result).__name__})"
    if "error" in result:
        return f"{Path(expected.path).name}: error {result['error']!r}"
    got, want = result.get("covid_probability"), expected.covid_probability
    if (got is None) != (want is None) or (want is not None and abs(float(got) - want) > tolerance):
        return f"{Path(expected.path).name}: covid_probability {got} != {want}"
    if len(result.get("events", [])) != expected.n_events:
        return f"{Path(expected.path).name}: {len(result.get('events', []))} events != {expected.n_events}"
    return None


def drive(make_caller: Callable[[], Callable[[str], Any]], clips: Sequence[Expected], n_clients: int,
          requests_per_client: int) -> dict:
    """`n_clients` threads, each with its own caller, send requests at once; caller i's request k carries clip
    (i + k) mod len(clips), so no two requests in flight carry the same clip and a mixed-up answer shows."""
    if len(clips) < n_clients:
        raise ValueError(f"{n_clients} clients need {n_clients} different clips, have {len(clips)}")
    callers = [make_caller() for _ in range(n_clients)]
    barrier = threading.Barrier(n_clients)
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        barrier.wait()
        for k in range(requests_per_client):
            expected = clips[(i + k) % len(clips)]
            start = time.perf_counter()
            try:
                problem = check_answer(callers[i](expected.path), expected)
            except Exception as error:  # a failed request is a result to report, not a crash
                problem = f"{Path(expected.path).name}: {type(error).__name__}: {error}"
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if problem:
                    problems.append(problem)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000.0
    return {"clients": n_clients, "requests": len(latencies), "seconds": seconds,
            "requests_per_s": len(latencies) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "correct": len(latencies) - len(problems),
            "all_correct": not problems, "problems": problems[:10]}


def app_clips(model_dir: Path, needed: int, dataset: Path = DATASET_RAW) -> list[Expected]:
    """The bundled examples and enough dataset recordings (spread over the sorted file list) for `needed`
    different clips, each with its expected answer from coughkd run directly."""
    import coughkd

    model = coughkd.load(model_dir, "int8")
    candidates = sorted(EXAMPLES.glob("*.mp3"))
    if dataset.is_dir():
        raw = sorted(dataset.glob("*.mp3"))
        candidates += raw[:: max(1, len(raw) // (2 * needed))]
    clips = []
    for path in candidates:
        try:
            p = model.predict(str(path))
        except AudioError:
            continue
        if p.duration_s <= 60:
            clips.append(Expected(str(path), p.covid_probability, len(p.events)))
        if len(clips) >= needed + 4:
            break
    return clips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


READY = re.compile(r"ready ([0-9.]+) s after imports")


@contextlib.contextmanager
def serve_app(model_dir: Path, log_file: Path, timeout_s: float = 180.0) -> Iterator[tuple[str, float | None]]:
    """`python app.py` on a free local port; once it answers, yields its URL and the start-up time app.py reported
    (from the end of its imports to serving), and stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log_file, "w") as log:
        process = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port),
                                    "--model", str(model_dir), "--variant", "int8", "--no-browser"],
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"app.py exited with {process.returncode}; see {log_file}")
                try:
                    with urllib.request.urlopen(url, timeout=5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"app.py did not answer on {url} within {timeout_s:.0f} s; "
                                           f"see {log_file}") from None
                    time.sleep(0.5)
            ready = READY.search(log_file.read_text())
            while ready is None and time.monotonic() < deadline:  # the app prints it just after the server answers
                time.sleep(0.1)
                ready = READY.search(log_file.read_text())
            yield url, float(ready.group(1)) if ready else None
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def app_throughput(model_dir: Path, config: BenchConfig, log_file: Path) -> dict:
    """Requests/s and latency of the running app at each concurrency, and whether every answer was right."""
    from gradio_client import Client, handle_file

    clips = app_clips(model_dir, max(config.app_clients))
    with serve_app(model_dir, log_file) as (url, ready_s):
        def make_caller() -> Callable[[str], Any]:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
            return lambda path: client.predict(handle_file(path), api_name="/predict")

        warm = make_caller()
        for expected in clips[:2]:
            warm(expected.path)
        levels = [drive(make_caller, clips, n, max(2, -(-config.app_requests // n))) for n in config.app_clients]
    return {"url": url, "ready_after_imports_s": ready_s, "clips": [asdict(c) for c in clips], "levels": levels}


# ---- machine, report, plot --------------------------------------------------------------------------------------


def machine() -> dict:
    """What the figures were measured on, including how busy it was when the run started."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    versions = {}
    for module in ("torch", "openvino", "transformers", "gradio", "numpy"):
        with contextlib.suppress(ImportError):
            versions[module] = __import__(module).__version__
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_bytes": memory,
            "os": platform.platform(), "python": platform.python_version(), "versions": versions,
            "load_average_at_start": list(os.getloadavg())}


def _fmt_load(values: Sequence[float] | None) -> str:
    return "–" if values is None else ", ".join(f"{x:.1f}" for x in values)


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _fmt_x(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2g}x"


def _fmt_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def _fmt_auc(row: dict | None) -> tuple[str, str]:
    if not row:
        return "–", "–"
    within = "–" if row["within_source_auc"] is None else f"{row['within_source_auc']:.3f}"
    ci = row.get("pooled_auc_ci")
    pooled = "–" if row["pooled_auc"] is None else f"{row['pooled_auc']:.3f}" + (
        f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    return within, pooled


def headline(report: dict) -> dict:
    """The figures the issue asks to prove, at every thread setting, with pass/fail against its targets."""
    rows = {(r["model"], r["clip_s"], r["threads"]): r for r in report["latency"]}
    clip = 5.0 if any(r["clip_s"] == 5.0 for r in report["latency"]) else max(r["clip_s"] for r in report["latency"])
    speedups = {str(t): rows[("wav2vec2_base_ov_fp32", clip, t)]["ratio"] for t in report["threads"]
                if ("wav2vec2_base_ov_fp32", clip, t) in rows}
    params = report["ratios"]["wav2vec2_base_ov_fp32"]["parameters"]
    app = report.get("app", {}).get("levels", [])
    top = max(app, key=lambda level: level["clients"]) if app else None
    return {
        "clip_s": clip,
        "wav2vec2_ov_fp32_vs_student_int8": speedups,
        "speedup_at_least_100x": bool(speedups) and all(v is not None and v >= 100 for v in speedups.values()),
        "wav2vec2_parameters_vs_student": params,
        "parameters_at_least_900x_fewer": params is not None and params >= 900,
        "app_max_clients": top["clients"] if top else None,
        "app_all_correct": bool(app) and all(level["all_correct"] for level in app),
    }


def render_markdown(report: dict) -> str:
    """bench.md: the headline, one speed-and-quality table, latency per clip and threads, app throughput."""
    m, h = report["machine"], report["headline"]
    models = report["models"]
    all_cores = max(report["threads"])
    clip = h["clip_s"]
    lines = [
        "# coughkd benchmark",
        "",
        f"`{report['command']}` on {m['cpu']} ({m['cores']} cores, {_fmt_bytes(m['memory_bytes'])} RAM), "
        f"{report['date']}, {report['wall_s'] / 60:.1f} min. Load average (1, 5, 15 min) at start: "
        f"{_fmt_load(m['load_average_at_start'])}; at end: {_fmt_load(m.get('load_average_at_end'))} "
        "(above 0 means other processes shared the CPU).",
        "",
        "## Headline",
        "",
    ]
    if report["config"]["wav2vec2"]:
        lines[-2:-2] = ["**--quick: a tiny wav2vec2 configuration stands in for wav2vec2-base, so these figures are a "
                        "test of the benchmark, not a benchmark.**", ""]
    for threads, speedup in h["wav2vec2_ov_fp32_vs_student_int8"].items():
        lines.append(f"- {clip:g} s clip, {threads} thread{'s' if threads != '1' else ''}: wav2vec2-base on OpenVINO "
                     f"FP32 is **{_fmt_x(speedup)} slower** than the student through coughkd on OpenVINO INT8 "
                     "(whole predict path).")
    lines.append(f"- wav2vec2-base has **{_fmt_x(h['wav2vec2_parameters_vs_student'])} more parameters** "
                 f"({models['wav2vec2_base_ov_fp32']['parameters']:,} vs "
                 f"{models[REFERENCE]['parameters']:,}).")
    if h["app_max_clients"]:
        lines.append(f"- The app answered every request correctly at up to {h['app_max_clients']} concurrent clients: "
                     f"{'yes' if h['app_all_correct'] else '**NO**'}.")
    ready_s = report.get("app", {}).get("ready_after_imports_s")
    if ready_s is not None:
        lines.append(f"- `python app.py` was ready to serve {ready_s:.1f} s after its imports (as it reports itself).")
    lines += ["", f"## Speed and quality ({clip:g} s clip, {all_cores} threads)", "",
              "| model | runtime | parameters | model file | peak RSS | median ms | p90 ms | RTF | vs student INT8 "
              "| within-source AUC | pooled AUC [95% CI] |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = {(r["model"], r["clip_s"], r["threads"]): r for r in report["latency"]}
    for name in report["model_order"]:
        row = rows.get((name, clip, all_cores))
        if row is None:
            continue
        info = models[name]
        label, runtime = LABELS[name]
        within, pooled = _fmt_auc(report["accuracy"].get(name))
        params = "–" if info.get("parameters") is None else f"{info['parameters']:,}"
        lines.append(f"| {label} | {runtime} | {params} | {_fmt_bytes(info.get('file_bytes'))} | "
                     f"{_fmt_bytes(info.get('peak_rss_bytes'))} | {_fmt_ms(row['median_ms'])} | "
                     f"{_fmt_ms(row['p90_ms'])} | {row['rtf']:.2g} | {_fmt_x(row['ratio'])} | {within} | {pooled} |")
    cells = sorted({(r["clip_s"], r["threads"]) for r in report["latency"]})
    lines += ["", "## Latency per clip and thread setting", "",
              "Median ms (p90 ms), and how many times the student INT8's median.", "",
              "| model | runtime | " + " | ".join(f"{c:g} s, {t} thr" for c, t in cells) + " |",
              "|---|---|" + "---|" * len(cells)]
    for name in report["model_order"]:
        label, runtime = LABELS[name]
        parts = []
        for cell in cells:
            row = rows.get((name, *cell))
            parts.append("–" if row is None else
                         f"{_fmt_ms(row['median_ms'])} ({_fmt_ms(row['p90_ms'])}), {_fmt_x(row['ratio'])}")
        lines.append(f"| {label} | {runtime} | " + " | ".join(parts) + " |")
    app = report.get("app")
    if app:
        lines += ["", "## App throughput (`python app.py`, gradio_client callers, each request its own clip)", "",
                  "| clients | requests | requests/s | p50 ms | p99 ms | correct answers |",
                  "|---|---|---|---|---|---|"]
        for level in app["levels"]:
            lines.append(f"| {level['clients']} | {level['requests']} | {level['requests_per_s']:.1f} | "
                         f"{level['p50_ms']:.0f} | {level['p99_ms']:.0f} | {level['correct']}/{level['requests']} |")
        problems = [p for level in app["levels"] for p in level["problems"]]
        if problems:
            lines += ["", "Wrong answers:", *[f"- {p}" for p in problems]]
        lines += ["", f"{len(app['clips'])} distinct clips (bundled examples and covid19-cough recordings); each "
                  "answer was compared with coughkd run directly on the same file (covid_probability within 1e-4, "
                  "same number of events)."]
    lines += ["", "![latency vs AUC](bench.png)", "", "## What is measured", "", *[f"- {n}" for n in report["notes"]],
              ""]
    return "\n".join(lines)


def snippet(report: dict) -> str:
    """A paragraph for the README's performance section and the model card, quoting this report."""
    h, m = report["headline"], report["machine"]
    rows = {(r["model"], r["clip_s"], r["threads"]): r for r in report["latency"]}
    clip = h["clip_s"]
    parts = []
    for threads in report["threads"]:
        int8 = rows.get((REFERENCE, clip, threads))
        bare = rows.get(("student_ir_int8", clip, threads))
        w2v = rows.get(("wav2vec2_base_ov_fp32", clip, threads))
        if not (int8 and bare and w2v):
            continue
        parts.append(f"with {threads} thread{'s' if threads > 1 else ''}, {_fmt_ms(int8['median_ms'])} ms for the "
                     f"whole coughkd predict path ({_fmt_ms(bare['median_ms'])} ms of it the INT8 network) against "
                     f"{_fmt_ms(w2v['median_ms'])} ms for wav2vec2-base on OpenVINO FP32: "
                     f"{_fmt_x(ratio(w2v['median_ms'], int8['median_ms']))} slower end to end, "
                     f"{_fmt_x(ratio(w2v['median_ms'], bare['median_ms']))} network to network")
    level = next((lv for lv in report.get("app", {}).get("levels", []) if lv["clients"] == h["app_max_clients"]), None)
    text = (f"On {m['cpu']} ({m['cores']} cores), medians for a {clip:g} s recording: " + "; ".join(parts) +
            f". wav2vec2-base has {_fmt_x(h['wav2vec2_parameters_vs_student'])} more parameters.")
    if level:
        text += (f" The demo app served {level['clients']} concurrent clients at {level['requests_per_s']:.1f} "
                 f"requests/s (p99 {level['p99_ms']:.0f} ms), "
                 f"{'every answer correct' if level['all_correct'] else 'with WRONG answers'}.")
    ready_s = report.get("app", {}).get("ready_after_imports_s")
    if ready_s is not None:
        text += f" `python app.py` was ready to serve {ready_s:.1f} s after its imports."
    return f"{text}\nMeasured with `{report['command']}` ({report['date']}); full tables in reports/bench.md."


def quote(path: Path, text: str, markers: tuple[str, str] | None = None) -> bool:
    """Put `text` between a pair of markers of a document (README, model card), by default the bench markers;
    False if it has none."""
    from training.reproduce import BENCH_END, BENCH_START

    opening, closing = markers or (BENCH_START, BENCH_END)
    document = path.read_text()
    start, end = document.find(opening), document.find(closing)
    if start < 0 or end < start:
        return False
    path.write_text(document[:start + len(opening)] + "\n" + text + "\n" + document[end:])
    return True


def plot(report: dict, path: Path) -> Path:
    """Latency (log scale) vs within-source AUC, one point per model that has an AUC; wav2vec2-base, untrained
    here, is a vertical line at its latency."""
    from matplotlib.figure import Figure

    clip, threads = report["headline"]["clip_s"], max(report["threads"])
    rows = {r["model"]: r for r in report["latency"] if r["clip_s"] == clip and r["threads"] == threads}
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    markers = iter("osD^vP*X")
    for name in report["model_order"]:
        row, acc = rows.get(name), report["accuracy"].get(name)
        if row is None:
            continue
        label = f"{', '.join(LABELS[name])}: {_fmt_ms(row['median_ms'])} ms"
        if acc and acc["within_source_auc"] is not None:
            ax.scatter(row["median_ms"], acc["within_source_auc"], s=50, marker=next(markers), zorder=3, label=label)
        elif name.startswith("wav2vec2"):
            ax.axvline(row["median_ms"], linestyle="--" if "torch" in name else ":", color="grey",
                       label=f"{label} (no AUC: random weights)")
    ax.set_xscale("log")
    ax.set_xlabel(f"median latency for a {clip:g} s clip, {threads} threads (ms, log scale)")
    ax.set_ylabel("within-source AUC (test split)")
    ax.set_title("Latency vs AUC", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120)
    return path


NOTES = [
    "Clips: the bundled cough examples (assets/examples) laid end to end, cut to 1 s (around the first cough), 5 s "
    "and 30 s; decoded once beforehand, so no row pays for decoding.",
    "Student rows via coughkd pay the whole predict path (band limit, event detection, one numpy log-mel of the "
    "clip, the IR on the clip and on its 1 s event windows); the PyTorch student runs the same path with the torch "
    "model in place of the IR. The bare IR rows time only the OpenVINO call on the whole clip's log-mel.",
    "The teacher row is mn04 on the whole band-limited clip, as the teacher step runs it (its linear probes, a few "
    "dot products, are left out); wav2vec2-base (random weights, Wav2Vec2Config() defaults, no accuracy figure) and "
    "the MFCC baseline also run on the whole clip.",
    "OpenVINO: INFERENCE_PRECISION_HINT=f32, INFERENCE_NUM_THREADS=threads, PERFORMANCE_HINT=LATENCY; PyTorch: "
    "torch.set_num_threads; numpy's BLAS limited to the same count (threadpoolctl).",
    "Each cell: warm-up calls per model, then timed rounds that run every model in turn in a rotating order, with "
    "a 50 ms rest before each model's turn (so no model pays for the previous runtime's spinning worker threads); "
    "models faster than the round budget repeat back to back within a round. RTF = median latency / clip duration.",
    "Peak RSS: VmHWM (peak resident set) of a fresh `python -m training.bench --measure-rss MODEL` that loads the "
    "model and predicts the 5 s clip once (coughkd rows never import torch). Model file: IR .xml + .bin, or the "
    "checkpoint.",
    "AUCs: training.evaluate's report (held-out test split); within-source AUC = mean of the per-source AUCs.",
]


# ---- the run ----------------------------------------------------------------------------------------------------


def time_models(zoo: Zoo, config: BenchConfig, clips: dict[float, np.ndarray], threads: Sequence[int],
                names: Sequence[str]) -> list[dict]:
    """Latency rows for every (clip, threads) cell, all models interleaved within a cell."""
    import torch
    from threadpoolctl import threadpool_limits

    rows = []
    for n in threads:
        torch.set_num_threads(n)
        with threadpool_limits(n):
            prepared = {name: zoo.prepare(name, n) for name in names}
            for seconds, rounds in zip(config.clips_s, config.rounds):
                calls = {name: prepare(clips[seconds]) for name, prepare in prepared.items()}
                started = time.perf_counter()
                samples = interleaved_timing(calls, rounds, config.round_budget_s, config.max_calls_per_round)
                print(f"{seconds:g} s clip, {n} thread(s): {time.perf_counter() - started:.0f} s", flush=True)
                for name, values in samples.items():
                    stats = summarize(values)
                    rows.append({"model": name, "clip_s": seconds, "threads": n, **stats,
                                 "rtf": stats["median_ms"] / 1000.0 / seconds})
            del prepared, calls
    return rows


def run(paths: Paths, config: BenchConfig, quick: bool, command: str) -> dict:
    started = time.perf_counter()
    def require(path: Path) -> Path:
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run `python -m training.reproduce` first")
        return path

    family = json.loads(require(paths.model_dir / "manifest.json").read_text())["student"]["family"]
    for path in (paths.run_dir / "teacher.pt", paths.run_dir / f"student_{family}.pt", paths.eval_report):
        require(path)
    paths.out.mkdir(parents=True, exist_ok=True)
    threads = sorted({1, len(os.sched_getaffinity(0))})
    report: dict[str, Any] = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
                              "config": asdict(config), "threads": threads, "model_order": list(MODELS),
                              "notes": NOTES}
    clips = make_clips(config.clips_s)
    with tempfile.TemporaryDirectory(prefix="coughkd-bench-") as work:
        work = Path(work)
        zoo = Zoo(paths, config.wav2vec2, work)
        zoo.wav2vec2_ir()
        print(f"wav2vec2 converted to OpenVINO IR in {zoo.conversion_s:.0f} s", flush=True)
        models = {name: {"label": LABELS[name][0], "runtime": LABELS[name][1], "parameters": zoo.parameters(name),
                         "file_bytes": file_bytes(zoo.model_file(name))} for name in MODELS}
        report["wav2vec2_conversion_s"] = zoo.conversion_s
        report["latency"] = latency_ratios(time_models(zoo, config, clips, threads, MODELS))
        del zoo
        rss_clip = clips[5.0] if 5.0 in clips else clips[max(clips)]
        np.save(work / "clip.npy", rss_clip)
        for name in MODELS:
            if name in BARE_IR:
                continue
            result = rss_in_subprocess(name, paths, quick, work / "clip.npy", work / "wav2vec2_base.xml")
            models[name].update(peak_rss_bytes=result["peak_rss_bytes"], imports_torch=result["imports_torch"])
            print(f"peak RSS {name}: {_fmt_bytes(result['peak_rss_bytes'])}", flush=True)
    report["models"] = models
    report["ratios"] = size_ratios(models)
    report["accuracy"] = accuracy_rows(json.loads(paths.eval_report.read_text()), family)
    report["app"] = app_throughput(paths.model_dir, config, paths.out / "bench_app.log")
    report["headline"] = headline(report)
    report["wall_s"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    (paths.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (paths.out / "bench.md").write_text(render_markdown(report))
    plot(report, paths.out / "bench.png")
    return report


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("assets/model"))
    parser.add_argument("--run-dir", type=Path, default=Path("runs/reproduce"), help="teacher.pt, student_<family>.pt")
    parser.add_argument("--eval-report", type=Path, default=Path("reports/eval/report.json"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--quick", action="store_true", help="tiny configuration for tests (not a benchmark)")
    parser.add_argument("--quote", type=Path, nargs="*", default=[Path("README.md"), Path("assets/MODEL_CARD.md")],
                        help="documents whose bench section gets the summary (not with --quick)")
    parser.add_argument("--measure-rss", metavar="MODEL", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--wav2vec2-ir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = Paths(args.model_dir.resolve(), args.run_dir.resolve(), args.eval_report.resolve(), args.out.resolve())
    config = QUICK if args.quick else BenchConfig()
    if args.measure_rss:
        print(json.dumps(measure_rss(args.measure_rss, paths, config.wav2vec2, np.load(args.clip), args.wav2vec2_ir)))
        return None
    command = shlex.join(["python", "-m", "training.bench", *(sys.argv[1:] if argv is None else argv)])
    report = run(paths, config, args.quick, command)
    print(render_markdown(report))
    if not args.quick:
        for document in args.quote:
            written = quote(document, snippet(report))
            print(f"{'quoted in' if written else 'no bench markers in'} {document}")
    return report


if __name__ == "__main__":
    main()

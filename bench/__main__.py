"""Speed, size, memory and accuracy of the student beside the models it replaces, measured in one run.

    python -m bench                # ~10 min on a 2-core laptop; needs `python -m training.reproduce` first
    python -m bench --quick=True   # a tiny configuration (small wav2vec2, short clips) for tests

Writes reports/bench.json (every sample statistic and ratio), reports/bench.md (the tables) and reports/bench.png
(latency vs AUC). Models, on the same clips (1 s, 5 s, 30 s of the bundled cough examples laid end to end) and the
same thread settings (1 thread and all cores):
- wav2vec2-base (the real 95M-parameter configuration with random weights: speed does not depend on the weights),
  PyTorch and OpenVINO FP32, on the whole clip, as a wav2vec2 classifier would take it;
- the EfficientAT teacher (PyTorch mn04 on the whole band-limited clip, as the teacher step runs it; its probes are
  a few dot products and left out) and the student (PyTorch, through the same coughkd pipeline);
- the student through `coughkd` (OpenVINO FP32 and INT8): the whole predict path a user pays for (the one IR
  call on the waveform, whose graph band-limits it, takes its log-mel and scores the clip and every window, then
  event detection on the graph's frame energies), and the bare IR call on the waveform, reported separately;
- the MFCC baseline (log-mel MFCC statistics + logistic regression; fitted on noise here, as its cost does not
  depend on its weights).
Decoding the file is left out for every model. Timings are interleaved: each round runs every model in turn
(rotating the order), so background noise hits all of them alike; cheap models repeat within a round.
Peak resident memory comes from a fresh process per model that only loads it and predicts once. App throughput
starts `python app.py` and drives it with N concurrent gradio_client callers, each on its own clip, checking every
answer against coughkd run directly beforehand.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench import memory
from bench.load import app_throughput
from bench.profile import time_parts
from bench.render import NOTES, fmt_bytes, headline, machine, plot, render_markdown
from bench.timing import accuracy_rows, latency_ratios, size_ratios, time_models
from bench.zoo import BARE_IR, LABELS, MODELS, QUICK, BenchConfig, Paths, Zoo, file_bytes, make_clips, ov_config
from coughkd.audio import SAMPLE_RATE, load_audio
from training.lib.configurator import configure

# ---- config: plain values, override with --name=value -------------------------------------------------------------
model_dir = "assets/model"
run_dir = "runs/reproduce"  # teacher.pt, student_<family>.pt
eval_report = "reports/eval/report.json"
out = "reports"
quick = False  # True: a tiny configuration for tests (not a benchmark)
documents = "README.md,assets/MODEL_CARD.md"  # whose bench section gets the summary (not with quick)
speedup_targets = "1:300,2:150"  # threads:target of wav2vec2-base on OpenVINO FP32 / the student, end to end
parameters_target = 900.0  # wav2vec2-base's parameters / the student's and gate's
measure_rss = ""  # a model name: the child process of the memory measurement (bench.memory)
clip = ""  # ... the clip it predicts, saved as .npy
wav2vec2_ir = ""  # ... and wav2vec2's IR, converted once by the parent
# --------------------------------------------------------------------------------------------------------------------


# ---- the run ----------------------------------------------------------------------------------------------------


def parse_targets(text: str) -> dict[int, float]:
    """"1:300,2:150" -> {1: 300.0, 2: 150.0}."""
    try:
        pairs = [item.split(":") for item in text.split(",")]
        targets = {int(threads): float(target) for threads, target in pairs}
    except ValueError:
        raise SystemExit(f"--speedup_targets: expected threads:target pairs like 1:300,2:150, got {text!r}") from None
    if not targets or min(targets) < 1:
        raise SystemExit(f"--speedup_targets: thread counts start at 1, got {text!r}")
    return targets


def run(paths: Paths, config: BenchConfig, quick: bool, command: str, speedup_targets: dict[int, float],
        parameters_target: float) -> dict:
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
        profiled = load_audio(clips[5.0] if 5.0 in clips else clips[max(clips)], SAMPLE_RATE).waveform[None]
        int8 = paths.model_dir / json.loads((paths.model_dir / "manifest.json").read_text())["variants"]["int8"]
        report["profile"] = {str(t): time_parts(int8, profiled, ov_config(t), config.profile_calls)
                             for t in threads}
        rss_clip = clips[5.0] if 5.0 in clips else clips[max(clips)]
        np.save(work / "clip.npy", rss_clip)
        for name in MODELS:
            if name in BARE_IR:
                continue
            result = memory.rss_in_subprocess(name, paths, quick, work / "clip.npy", work / "wav2vec2_base.xml")
            models[name].update(peak_rss_bytes=result["peak_rss_bytes"], imports_torch=result["imports_torch"])
            print(f"peak RSS {name}: {fmt_bytes(result['peak_rss_bytes'])}", flush=True)
    report["models"] = models
    report["ratios"] = size_ratios(models)
    report["accuracy"] = accuracy_rows(json.loads(paths.eval_report.read_text()), family)
    report["app"] = app_throughput(paths.model_dir, config, paths.out / "bench_app.log")
    report["headline"] = headline(report, speedup_targets, parameters_target)
    report["wall_s"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    (paths.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (paths.out / "bench.md").write_text(render_markdown(report))
    plot(report, paths.out / "bench.png")
    return report


def main(argv: list[str]) -> dict | None:
    config = configure(globals(), argv)
    paths = Paths(*(Path(config[k]).resolve() for k in ("model_dir", "run_dir", "eval_report", "out")))
    bench = QUICK if config["quick"] else BenchConfig()
    if config["measure_rss"]:
        clip = np.load(config["clip"])
        print(json.dumps(memory.measure_rss(config["measure_rss"], paths, bench.wav2vec2, clip,
                                            Path(config["wav2vec2_ir"]) if config["wav2vec2_ir"] else None)))
        return None
    command = shlex.join(["python", "-m", "bench", *argv])
    report = run(paths, bench, config["quick"], command, parse_targets(config["speedup_targets"]),
                 config["parameters_target"])
    print(render_markdown(report))
    if not config["quick"]:
        from training.lib.card import quote, snippet  # here: the memory child (measure_rss) must not import torch

        for document in filter(None, config["documents"].split(",")):
            written = quote(Path(document), snippet(report))
            print(f"{'quoted in' if written else 'no bench markers in'} {document}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])

"""The benchmark's report: the machine, the headline against its targets, bench.md's tables and the latency-vs-AUC
plot."""
from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from bench.timing import REFERENCE
from bench.zoo import LABELS


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


def fmt_load(values: Sequence[float] | None) -> str:
    return "–" if values is None else ", ".join(f"{x:.1f}" for x in values)


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def fmt_x(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2g}x"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def fmt_auc(row: dict | None) -> tuple[str, str]:
    if not row:
        return "–", "–"
    within = "–" if row["within_source_auc"] is None else f"{row['within_source_auc']:.3f}"
    ci = row.get("pooled_auc_ci")
    pooled = "–" if row["pooled_auc"] is None else f"{row['pooled_auc']:.3f}" + (
        f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    return within, pooled


def target_for(threads: int, targets: dict[int, float]) -> float:
    """The speed-up target of a thread setting: that of the largest listed thread count up to it (a machine with
    more cores is held to the bar of the most threads the targets name)."""
    listed = [t for t in sorted(targets) if t <= threads]
    return targets[listed[-1] if listed else min(targets)]


def headline(report: dict, speedup_targets: dict[int, float], parameters_target: float) -> dict:
    """The headline figures at every thread setting, with pass/fail against the targets the run was given."""
    rows = {(r["model"], r["clip_s"], r["threads"]): r for r in report["latency"]}
    clip = 5.0 if any(r["clip_s"] == 5.0 for r in report["latency"]) else max(r["clip_s"] for r in report["latency"])
    speedups = {str(t): rows[("wav2vec2_base_ov_fp32", clip, t)]["ratio"] for t in report["threads"]
                if ("wav2vec2_base_ov_fp32", clip, t) in rows}
    targets = {t: target_for(int(t), speedup_targets) for t in speedups}
    params = report["ratios"]["wav2vec2_base_ov_fp32"]["parameters"]
    app = report.get("app", {}).get("levels", [])
    top = max(app, key=lambda level: level["clients"]) if app else None
    return {
        "clip_s": clip,
        "wav2vec2_ov_fp32_vs_student_int8": speedups,
        "speedup_targets": targets,
        "speedup_met": bool(speedups) and all(v is not None and v >= targets[t] for t, v in speedups.items()),
        "wav2vec2_parameters_vs_student": params,
        "parameters_target": parameters_target,
        "parameters_met": params is not None and params >= parameters_target,
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
        f"`{report['command']}` on {m['cpu']} ({m['cores']} cores, {fmt_bytes(m['memory_bytes'])} RAM), "
        f"{report['date']}, {report['wall_s'] / 60:.1f} min. Load average (1, 5, 15 min) at start: "
        f"{fmt_load(m['load_average_at_start'])}; at end: {fmt_load(m.get('load_average_at_end'))} "
        "(above 0 means other processes shared the CPU).",
        "",
        "## Headline",
        "",
    ]
    if report["config"]["wav2vec2"]:
        lines[-2:-2] = ["**--quick: a tiny wav2vec2 configuration stands in for wav2vec2-base, so these figures are a "
                        "test of the benchmark, not a benchmark.**", ""]
    for threads, speedup in h["wav2vec2_ov_fp32_vs_student_int8"].items():
        target = h["speedup_targets"][threads]
        met = speedup is not None and speedup >= target
        lines.append(f"- {clip:g} s clip, {threads} thread{'s' if threads != '1' else ''}: wav2vec2-base on OpenVINO "
                     f"FP32 is **{fmt_x(speedup)} slower** than the student through coughkd on OpenVINO INT8 "
                     f"(whole predict path); target {fmt_x(target)}: {'met' if met else '**not met**'}.")
    lines.append(f"- wav2vec2-base has **{fmt_x(h['wav2vec2_parameters_vs_student'])} more parameters** "
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
        within, pooled = fmt_auc(report["accuracy"].get(name))
        params = "–" if info.get("parameters") is None else f"{info['parameters']:,}"
        lines.append(f"| {label} | {runtime} | {params} | {fmt_bytes(info.get('file_bytes'))} | "
                     f"{fmt_bytes(info.get('peak_rss_bytes'))} | {fmt_ms(row['median_ms'])} | "
                     f"{fmt_ms(row['p90_ms'])} | {row['rtf']:.2g} | {fmt_x(row['ratio'])} | {within} | {pooled} |")
    lines += where_time_goes(report)
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
                         f"{fmt_ms(row['median_ms'])} ({fmt_ms(row['p90_ms'])}), {fmt_x(row['ratio'])}")
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


def where_time_goes(report: dict) -> list[str]:
    """bench.md's profile: each part of the INT8 graph's node time (bench.profile), what the bare call spends outside
    its nodes (its median minus their sum), and the Python around the call (the whole predict path's median minus
    the bare call's, from the latency table)."""
    profile = report.get("profile")
    if not profile:
        return []
    clip = report["headline"]["clip_s"]
    rows = {(r["model"], r["clip_s"], r["threads"]): r for r in report["latency"]}
    threads = [t for t in report["threads"] if str(t) in profile]
    lines = ["", f"## Where the time goes ({clip:g} s clip, student INT8)", "",
             "Each part's node time (OpenVINO's per-node counters, which add a little overhead of their own), then "
             "what the bare IR call spends outside its nodes (its median minus their sum: shape inference and memory "
             "for the input's length, which a graph of dynamic length redoes on every call, and the call itself; "
             "\"–\" where the counters' sum came out above the call), then the Python around the call.", "",
             "| part | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}: ms" for t in threads) + " |",
             "|---|" + "---|" * len(threads)]
    parts = sorted({p for t in threads for p in profile[str(t)]}, key=lambda p: -profile[str(threads[0])].get(p, 0))
    bare = {t: rows[("student_ir_int8", clip, t)]["median_ms"] for t in threads}
    whole = {t: rows[(REFERENCE, clip, t)]["median_ms"] for t in threads}
    for part in parts:
        lines.append(f"| {part} | " + " | ".join(fmt_ms(profile[str(t)].get(part, 0.0)) for t in threads) + " |")
    outside = {t: bare[t] - sum(profile[str(t)].values()) for t in threads}
    lines.append("| outside the nodes | " + " | ".join(fmt_ms(outside[t] if outside[t] >= 0 else None)
                                                     for t in threads) + " |")
    lines.append("| **the IR call** | " + " | ".join(f"**{fmt_ms(bare[t])}**" for t in threads) + " |")
    lines.append("| Python around it (decoded audio in, decision out) | "
                 + " | ".join(f"{fmt_ms(whole[t] - bare[t])} ({(whole[t] - bare[t]) / whole[t]:.0%} of the path)"
                              for t in threads) + " |")
    lines.append("| **the whole predict path** | " + " | ".join(f"**{fmt_ms(whole[t])}**" for t in threads) + " |")
    return lines


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
        label = f"{', '.join(LABELS[name])}: {fmt_ms(row['median_ms'])} ms"
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
    "Student rows via coughkd pay the whole predict path (one IR call on the waveform, whose graph band-limits it, "
    "takes its log-mel and scores the clip and every 1 s window, then event detection on its frame energies); the "
    "PyTorch student runs the same path with the torch model in place of the IR. The bare IR rows time only the "
    "OpenVINO call on the waveform, front end included.",
    "The teacher row is mn04 on the whole band-limited clip, as the teacher step runs it (its linear probes, a few "
    "dot products, are left out); wav2vec2-base (random weights, Wav2Vec2Config() defaults, no accuracy figure) and "
    "the MFCC baseline also run on the whole clip.",
    "OpenVINO: INFERENCE_PRECISION_HINT=f32, INFERENCE_NUM_THREADS=threads, PERFORMANCE_HINT=LATENCY; PyTorch: "
    "torch.set_num_threads; numpy's BLAS limited to the same count (threadpoolctl).",
    "Each cell: warm-up calls per model, then timed rounds that run every model in turn in a rotating order, with "
    "a 50 ms rest before each model's turn (so no model pays for the previous runtime's spinning worker threads); "
    "models faster than the round budget repeat back to back within a round. RTF = median latency / clip duration.",
    "Peak RSS: VmHWM (peak resident set) of a fresh `python -m bench --measure_rss=MODEL` that loads the "
    "model and predicts the 5 s clip once (coughkd rows never import torch). Model file: IR .xml + .bin, or the "
    "checkpoint.",
    "AUCs: training.evaluate's report (held-out test split); within-source AUC = mean of the per-source AUCs.",
]

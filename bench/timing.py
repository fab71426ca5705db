"""Latency, interleaved so machine noise hits every model alike, and the ratios and accuracy rows beside it."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.zoo import BenchConfig, Zoo

REFERENCE = "student_ov_int8"


# Rows of training.evaluate's report.json; "{family}" is the shipped student family.
ACCURACY_KEYS = {"teacher_torch": "teacher", "mfcc_baseline": "mfcc_baseline",
                 "student_torch": "student_{family}_torch", "student_ov_fp32": "student_fp32",
                 "student_ov_int8": "student_int8"}


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

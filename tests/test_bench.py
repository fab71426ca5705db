"""bench (python -m bench): the statistics, ratios, timing schedule, answer checking and report rendering, plus one
run of the whole benchmark in its --quick configuration on artefacts made here."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from bench import __main__ as bench_main
from bench import load, render, timing, zoo
from bench.load import Expected
from training.lib import card


def test_summarize_reports_median_and_p90_in_ms() -> None:
    stats = timing.summarize([i / 1000 for i in range(1, 11)])  # 1 .. 10 ms
    assert stats["n"] == 10
    assert stats["median_ms"] == pytest.approx(5.5)
    assert stats["p90_ms"] == pytest.approx(9.1)
    assert stats["min_ms"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        timing.summarize([])


def test_ratio_is_none_when_either_side_is_unknown() -> None:
    assert timing.ratio(300.0, 1.5) == pytest.approx(200.0)
    assert timing.ratio(None, 1.0) is None
    assert timing.ratio(1.0, None) is None
    assert timing.ratio(1.0, 0.0) is None
    assert timing.ratio(float("nan"), 1.0) is None


def _row(model: str, clip: float, threads: int, median: float) -> dict:
    return {"model": model, "clip_s": clip, "threads": threads, "median_ms": median, "p90_ms": median * 1.2,
            "rtf": median / 1000 / clip, "n": 5}


def test_latency_ratios_divide_by_the_reference_in_the_same_cell() -> None:
    rows = [_row("student_ov_int8", 5.0, 1, 10.0), _row("student_ov_int8", 5.0, 2, 5.0),
            _row("wav2vec2_base_ov_fp32", 5.0, 1, 3000.0), _row("wav2vec2_base_ov_fp32", 5.0, 2, 2000.0),
            _row("teacher_torch", 30.0, 1, 50.0)]
    out = {(r["model"], r["threads"], r["clip_s"]): r["ratio"] for r in timing.latency_ratios(rows)}
    assert out[("wav2vec2_base_ov_fp32", 1, 5.0)] == pytest.approx(300.0)
    assert out[("wav2vec2_base_ov_fp32", 2, 5.0)] == pytest.approx(400.0)
    assert out[("student_ov_int8", 1, 5.0)] == pytest.approx(1.0)
    assert out[("teacher_torch", 1, 30.0)] is None  # no reference timing for that cell


def test_size_ratios_and_missing_files() -> None:
    models = {"student_ov_int8": {"parameters": 40_000, "file_bytes": 100_000, "peak_rss_bytes": 100e6},
              "wav2vec2_base_torch": {"parameters": 94_000_000, "file_bytes": None, "peak_rss_bytes": 900e6}}
    ratios = timing.size_ratios(models)
    assert ratios["wav2vec2_base_torch"]["parameters"] == pytest.approx(2350.0)
    assert ratios["wav2vec2_base_torch"]["file_bytes"] is None
    assert ratios["wav2vec2_base_torch"]["peak_rss_bytes"] == pytest.approx(9.0)


def _eval_result(aucs: dict[str, float], pooled: float) -> dict:
    return {"per_source": {s: {"auc": a, "auc_ci": [a - 0.1, a + 0.1]} for s, a in aucs.items()},
            "pooled": {"auc": pooled, "auc_ci": [pooled - 0.1, pooled + 0.1], "n": 40}}


def test_accuracy_rows_take_the_evaluate_report_and_the_shipped_family() -> None:
    report = {"teacher": _eval_result({"call-center": 0.6, "telegram": 0.8}, 0.9),
              "student_int8": _eval_result({"call-center": 0.7, "telegram": float("nan")}, 0.75),
              "student_cnn_torch": _eval_result({"call-center": 0.5, "telegram": 0.7}, 0.6),
              "student_wav2vec_torch": _eval_result({"call-center": 0.1, "telegram": 0.1}, 0.1)}
    rows = timing.accuracy_rows(report, "cnn")
    assert rows["teacher_torch"]["within_source_auc"] == pytest.approx(0.7)
    assert rows["teacher_torch"]["pooled_auc"] == pytest.approx(0.9)
    assert rows["student_ov_int8"]["within_source_auc"] == pytest.approx(0.7)  # a one-class source has no AUC
    assert rows["student_torch"]["report_key"] == "student_cnn_torch"
    assert "student_ov_fp32" not in rows and "mfcc_baseline" not in rows


class FakeClock:
    """Time advances only when a fake model runs, by that model's cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_interleaved_timing_rotates_models_and_repeats_cheap_ones() -> None:
    clock = FakeClock()
    log: list[str] = []

    def model(name: str, cost: float):
        def call() -> None:
            log.append(name)
            clock.now += cost
        return call

    def sleep(seconds: float) -> None:
        log.append(f"rest {seconds}")

    calls = {"slow": model("slow", 2.0), "fast": model("fast", 0.01), "mid": model("mid", 0.1)}
    samples = timing.interleaved_timing(calls, rounds=3, round_budget_s=0.25, max_calls_per_round=20, pause_s=0.05,
                                       clock=clock, sleep=sleep)
    assert samples["slow"] == pytest.approx([2.0] * 3)  # one call per round
    assert len(samples["mid"]) == 3 * 2  # 0.25 // 0.1
    assert len(samples["fast"]) == 3 * 20  # capped
    assert samples["fast"] == pytest.approx([0.01] * 60)
    turns = " ".join(log).split("rest 0.05")[1:]  # the CPU rests before every model's turn
    assert [t.split() for t in turns[:3]] == [["slow"], ["fast", "fast"], ["mid", "mid"]]  # warm-ups
    assert [t.split()[0] for t in turns[3:]] == ["slow", "fast", "mid", "fast", "mid", "slow", "mid", "slow", "fast"]
    assert [len(t.split()) for t in turns[3:6]] == [1, 20, 2]


def test_make_clips_have_the_asked_durations_and_sound(tmp_path: Path) -> None:
    clips = zoo.make_clips([1.0, 5.0, 30.0])
    assert {k: len(v) for k, v in clips.items()} == {1.0: 16000, 5.0: 80000, 30.0: 480000}
    assert all(v.dtype == np.float32 for v in clips.values())
    assert np.abs(clips[1.0]).max() > 0.5  # the 1 s clip is centred on a cough, not on silence
    assert len(zoo.features_of(clips[5.0]).events) >= 2


def test_check_answer_accepts_only_this_clips_answer() -> None:
    expected = Expected("/x/a.mp3", 0.4, 2)
    good = {"covid_probability": 0.40003, "events": [[0, 1, 0.4], [2, 3, 0.4]]}
    assert load.check_answer(good, expected) is None
    assert load.check_answer((good, None), expected) is None  # gradio_client returns a tuple for two outputs
    assert "covid_probability" in load.check_answer({**good, "covid_probability": 0.41}, expected)
    assert "events" in load.check_answer({**good, "events": [[0, 1, 0.4]]}, expected)
    assert "error" in load.check_answer({"error": "too short"}, expected)
    assert "no result" in load.check_answer(None, expected)


CLIPS = [Expected(f"/clips/{i}.wav", i / 100, i % 3 + 1) for i in range(8)]
ANSWERS = {c.path: {"covid_probability": c.covid_probability, "events": [[0, 1, 0]] * c.n_events} for c in CLIPS}


def test_drive_counts_every_correct_concurrent_answer() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def make_caller():
        def call(path: str) -> dict:
            with lock:
                seen.append(path)
            return ANSWERS[path]
        return call

    result = load.drive(make_caller, CLIPS, n_clients=4, requests_per_client=3)
    assert result["requests"] == 12 and result["correct"] == 12 and result["all_correct"]
    assert len(set(seen)) == 6  # client i sends clips i .. i+2
    assert result["p50_ms"] <= result["p99_ms"]


def test_drive_catches_answers_that_went_to_the_wrong_caller() -> None:
    """A server that answers with whatever request came in last (shared state) is found out."""
    state = {"last": None}
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def make_caller():
        def call(path: str) -> dict:
            with lock:
                state["last"] = path
            barrier.wait(timeout=5)  # all four requests are in flight together
            return ANSWERS[state["last"]]
        return call

    result = load.drive(make_caller, CLIPS, n_clients=4, requests_per_client=1)
    assert not result["all_correct"]
    assert result["correct"] == 1 and len(result["problems"]) == 3


def test_drive_reports_failures_and_refuses_too_few_clips() -> None:
    def make_caller():
        def call(path: str) -> dict:
            raise ConnectionError("refused")
        return call

    result = load.drive(make_caller, CLIPS, n_clients=2, requests_per_client=1)
    assert result["correct"] == 0 and "ConnectionError" in result["problems"][0]
    with pytest.raises(ValueError, match="different clips"):
        load.drive(make_caller, CLIPS[:2], n_clients=3, requests_per_client=1)


def _fake_report(all_correct: bool = True) -> dict:
    medians = {"wav2vec2_base_torch": 4000.0, "wav2vec2_base_ov_fp32": 3000.0, "teacher_torch": 300.0,
               "mfcc_baseline": 20.0, "student_torch": 60.0, "student_ov_fp32": 15.0, "student_ov_int8": 10.0,
               "student_ir_fp32": 2.0, "student_ir_int8": 1.0}
    latency = [_row(m, clip, t, v * clip / 5) for m, v in medians.items() for clip in (1.0, 5.0) for t in (1, 2)]
    models = {m: {"parameters": 43_682, "file_bytes": 130_000, "peak_rss_bytes": 110e6} for m in medians}
    models["wav2vec2_base_ov_fp32"].update(parameters=94_371_712, file_bytes=377e6)
    problems = [] if all_correct else ["b.mp3: covid_probability 0.1 != 0.300000"]
    app = {"clips": [{}] * 20, "levels": [
        {"clients": n, "requests": 48, "requests_per_s": 10.0, "p50_ms": 100.0, "p99_ms": 300.0,
         "correct": 48 - len(problems), "all_correct": not problems, "problems": problems} for n in (1, 4, 16)]}
    report = {"command": "python -m bench", "date": "2026-01-01 00:00 UTC", "wall_s": 600.0,
              "machine": {"cpu": "Test CPU", "cores": 2, "memory_bytes": 16e9,
                          "load_average_at_start": [0.1, 0.2, 0.3], "load_average_at_end": [1.5, 0.2, 0.3]},
              "config": {"wav2vec2": {}}, "threads": [1, 2], "model_order": list(zoo.MODELS), "notes": render.NOTES,
              "latency": timing.latency_ratios(latency), "models": models, "ratios": timing.size_ratios(models),
              "accuracy": {
                  "student_ov_int8": {"within_source_auc": 0.71, "pooled_auc": 0.8, "pooled_auc_ci": [0.7, 0.9]},
                  "teacher_torch": {"within_source_auc": 0.74, "pooled_auc": 0.82, "pooled_auc_ci": None}},
              "app": app}
    report["profile"] = {"1": {"front end": 0.6, "COVID-19 CNN": 0.25}, "2": {"front end": 0.5, "COVID-19 CNN": 0.7}}
    report["headline"] = render.headline(report, {1: 300.0, 2: 150.0}, 900.0)
    return report


def test_headline_checks_the_issue_targets() -> None:
    h = _fake_report()["headline"]
    assert h["clip_s"] == 5.0
    assert h["wav2vec2_ov_fp32_vs_student_int8"] == {"1": pytest.approx(300.0), "2": pytest.approx(300.0)}
    assert h["speedup_met"] and h["parameters_met"] and h["speedup_targets"] == {"1": 300.0, "2": 150.0}
    assert not render.headline(_fake_report(), {1: 301.0, 2: 150.0}, 900.0)["speedup_met"], "every setting must meet"
    assert render.target_for(8, {1: 300.0, 2: 150.0}) == 150.0 and render.target_for(1, {2: 150.0}) == 150.0
    assert h["wav2vec2_parameters_vs_student"] == pytest.approx(94_371_712 / 43_682)
    assert h["app_max_clients"] == 16 and h["app_all_correct"]
    assert not _fake_report(all_correct=False)["headline"]["app_all_correct"]


def test_markdown_and_snippet_quote_the_measured_figures() -> None:
    report = _fake_report()
    md = render.render_markdown(report)
    assert "wav2vec2-base on OpenVINO FP32 is **300x slower**" in md and "target 300x: met." in md
    assert "target 301x: **not met**" in render.render_markdown({**report, "headline": render.headline(
        report, {1: 301.0}, 900.0)})
    # The profile: node times, the bare call (1 ms) outside them (none where they sum above it), then the Python
    # around it (10 - 1 ms).
    assert "| front end | 0.6 | 0.5 |" in md and "| outside the nodes | 0.15 | – |" in md
    assert "| Python around it (decoded audio in, decision out) | 9 (90% of the path) | 9 (90% of the path) |" in md
    assert "**2,160x more parameters**" in md
    int8_row = "| student (coughkd) | OpenVINO INT8 | 43,682 | 130 kB | 110 MB | 10 | 12 | 0.002 | 1x | 0.710 |"
    assert f"{int8_row} 0.800 [0.70, 0.90] |" in md
    assert "| 16 | 48 | 10.0 | 100 | 300 | 48/48 |" in md
    assert "Test CPU" in md and "python -m bench" in md and "bench.png" in md
    assert "at start: 0.1, 0.2, 0.3; at end: 1.5, 0.2, 0.3" in md
    text = card.snippet(report)
    assert "300x slower" in text and "16 concurrent clients" in text and "every answer correct" in text
    assert "300x slower end to end, 3,000x network to network (target 300x end to end: met)" in text
    wrong = render.render_markdown(_fake_report(all_correct=False))
    assert "**NO**" in wrong and "b.mp3: covid_probability" in wrong


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = render.plot(_fake_report(), tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_peak_rss_is_this_process_not_its_parent() -> None:
    import subprocess
    import sys

    big = np.ones(300_000_000 // 8)  # ~300 MB held by this (parent) process
    child = subprocess.run([sys.executable, "-c", "from bench.memory import peak_rss_bytes; print(peak_rss_bytes())"],
                           capture_output=True, text=True, check=True, cwd=zoo.REPO)
    assert 0 < int(child.stdout) < 250e6 < big.nbytes


# ---- the whole benchmark, tiny configuration --------------------------------------------------------------------


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory, shared_models: Path) -> tuple[Path, Path, Path]:
    """A random student exported like training.export does, the EfficientAT teacher, and an evaluate report."""
    import torch

    from coughkd.features import front_end_spec
    from training.lib.export import export_fp32, quantize_int8, write_manifest
    from training.models.students import Screener, SoundTypeCNN, build_student, count_parameters
    from training.models.teachers import build_teacher

    root = tmp_path_factory.mktemp("bench")
    run_dir, model_dir = root / "run", root / "model"
    run_dir.mkdir()
    torch.manual_seed(0)
    student = build_student("cnn").eval()
    torch.save({"family": "cnn", "config": {}, "state_dict": student.state_dict(),
                "parameters": count_parameters(student)}, run_dir / "student_cnn.pt")
    gate = SoundTypeCNN().eval()
    torch.save({"members": [gate.state_dict()], "parameters": count_parameters(gate), "threshold": 0.5},
               run_dir / "sound_cnn.pt")
    torch.save({"teacher": "efficientat", "state_dict": build_teacher("efficientat").state_dict()},
               run_dir / "teacher.pt")
    export_fp32(Screener(student, gate).eval(), model_dir)
    calibration = np.random.default_rng(0).standard_normal((16, 16000)).astype(np.float32) * 0.1
    quantize_int8(model_dir / "student_fp32.xml", calibration, model_dir, subset_size=16)
    write_manifest(model_dir, model_id="bench-test", command="test", threshold={"covid": 0.5, "cough": 0.5},
                   operating_point={"sensitivity": 0.5, "specificity": 0.9, "source": "validation"}, metrics={},
                   teacher={}, data={}, student={"family": "cnn", "parameters": count_parameters(student),
                                                 "gate_parameters": count_parameters(gate)},
                   front_end=front_end_spec())
    report = {key: _eval_result({"call-center": 0.6, "telegram": 0.7}, 0.8)
              for key in ("student_int8", "student_fp32", "teacher", "mfcc_baseline", "student_cnn_torch")}
    eval_report = root / "report.json"
    eval_report.write_text(json.dumps(report))
    return model_dir, run_dir, eval_report


@pytest.mark.slow
def test_quick_benchmark_writes_the_whole_report(artefacts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model_dir, run_dir, eval_report = artefacts
    report = bench_main.main(["--quick=True", f"--model_dir={model_dir}", f"--run_dir={run_dir}",
                              f"--eval_report={eval_report}", f"--out={tmp_path}"])
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["headline"] == report["headline"]
    cells = {(r["model"], r["clip_s"], r["threads"]) for r in saved["latency"]}
    assert cells == {(m, c, t) for m in zoo.MODELS for c in zoo.QUICK.clips_s for t in saved["threads"]}
    assert all(r["median_ms"] > 0 and r["ratio"] > 0 for r in saved["latency"])
    models = saved["models"]
    assert models["student_ov_int8"]["imports_torch"] is False  # the lean runtime, measured as users run it
    assert models["teacher_torch"]["imports_torch"] is True
    assert all(models[m]["peak_rss_bytes"] > 0 for m in zoo.MODELS if m not in zoo.BARE_IR)
    assert models["wav2vec2_base_ov_fp32"]["file_bytes"] > 0
    assert saved["accuracy"]["student_torch"]["within_source_auc"] == pytest.approx(0.65)
    levels = saved["app"]["levels"]
    assert [lv["clients"] for lv in levels] == list(zoo.QUICK.app_clients)
    assert all(lv["all_correct"] and lv["correct"] == lv["requests"] for lv in levels), levels
    assert saved["headline"]["app_all_correct"]
    md = (tmp_path / "bench.md").read_text()
    assert "## App throughput" in md and "| student (coughkd) | OpenVINO INT8 |" in md
    assert (tmp_path / "bench.png").stat().st_size > 0


def test_quote_replaces_only_the_bench_section(tmp_path: Path) -> None:
    from training.lib.card import BENCH_END, BENCH_START, quote

    doc = tmp_path / "README.md"
    doc.write_text(f"# Title\n\n{BENCH_START}\nold figures\n{BENCH_END}\n\nrest\n")
    assert quote(doc, "new figures")
    assert quote(doc, "newer figures")
    assert doc.read_text() == f"# Title\n\n{BENCH_START}\nnewer figures\n{BENCH_END}\n\nrest\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not quote(plain, "x") and plain.read_text() == "no markers\n"

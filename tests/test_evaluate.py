"""Tests for training/lib/metrics.py: metrics against sklearn and hand-made cases, the MFCC baseline, the report."""
from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.lib.metrics import (
    choose_threshold,
    evaluate_scores,
    expected_calibration_error,
    markdown_table,
    operating_point,
    paired_auc_difference,
    paired_differences,
    paired_group_auc_difference,
    paired_table,
    roc_auc_ci,
    sensitivity_at_specificity,
    within_source_auc,
    write_report,
)
from training.lib.probe import MfccBaseline, mfcc_statistics


def _scores(n: int, separation: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    return y, 1 / (1 + np.exp(-(rng.normal(size=n) + separation * y)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn_including_ties(seed: int) -> None:
    y, p = _scores(300, 1.0, seed)
    p = np.round(p, 1)  # many ties
    auc, low, high = roc_auc_ci(y, p, n_boot=500, seed=seed)
    assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert low <= auc <= high


def test_ci_narrows_with_more_data() -> None:
    small = roc_auc_ci(*_scores(60, 1.0, 0), n_boot=1000)
    large = roc_auc_ci(*_scores(3000, 1.0, 0), n_boot=1000)
    assert large[2] - large[1] < 0.5 * (small[2] - small[1])
    assert large[1] <= large[0] <= large[2]


def test_bootstrap_is_seeded() -> None:
    y, p = _scores(200, 1.0, 0)
    assert roc_auc_ci(y, p, n_boot=300, seed=5) == roc_auc_ci(y, p, n_boot=300, seed=5)
    assert roc_auc_ci(y, p, n_boot=300, seed=5) != roc_auc_ci(y, p, n_boot=300, seed=6)


def test_perfect_and_random_scores() -> None:
    y = np.array([0] * 50 + [1] * 50)
    assert roc_auc_ci(y, y + 0.1 * np.arange(100) / 100, n_boot=200) == (1.0, 1.0, 1.0)
    auc, low, high = roc_auc_ci(*_scores(2000, 0.0, 3), n_boot=500)
    assert abs(auc - 0.5) < 0.05 and low < 0.5 < high
    assert roc_auc_ci(y, 1 - y, n_boot=200)[0] == 0.0


def test_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_auc_ci(np.ones(5), np.linspace(0, 1, 5))


def test_sensitivity_at_specificity_hand_made() -> None:
    # 10 negatives 0.0 .. 0.9; 5 positives. 90% specificity needs 9 negatives below the threshold,
    # i.e. threshold above 0.8: the next observed score is 0.85, which catches the positives 0.85, 0.95, 0.99.
    neg = np.arange(10) / 10
    pos = np.array([0.3, 0.6, 0.85, 0.95, 0.99])
    y = np.r_[np.zeros(10), np.ones(5)]
    p = np.r_[neg, pos]
    sens, threshold = sensitivity_at_specificity(y, p, 0.9)
    assert threshold == 0.85 and sens == pytest.approx(0.6)
    point = operating_point(y, p, threshold)
    assert point["specificity"] == pytest.approx(0.9) and point["sensitivity"] == pytest.approx(0.6)
    assert (point["tp"], point["fn"], point["tn"], point["fp"]) == (3, 2, 9, 1)
    assert choose_threshold(y, p, 0.9) == threshold
    assert sensitivity_at_specificity(y, p, 1.0) == (pytest.approx(0.4), 0.95)
    assert sensitivity_at_specificity(y, p, 0.0) == (1.0, 0.0)


def test_sensitivity_at_specificity_holds_with_ties() -> None:
    y, p = _scores(500, 1.0, 4)
    p = np.round(p, 2)
    for target in (0.8, 0.9, 0.95):
        sens, threshold = sensitivity_at_specificity(y, p, target)
        point = operating_point(y, p, threshold)
        assert point["specificity"] >= target and point["sensitivity"] == pytest.approx(sens)
        # no lower observed score keeps the specificity
        lower = p[p < threshold]
        if lower.size:
            assert operating_point(y, p, lower.max())["specificity"] < target


def test_ece_calibrated_and_overconfident() -> None:
    y = np.r_[np.ones(25), np.zeros(75), np.ones(75), np.zeros(25)]
    p = np.r_[np.full(100, 0.25), np.full(100, 0.75)]
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    coin = np.tile([0, 1], 100)
    assert expected_calibration_error(coin, np.where(coin == 1, 0.99, 0.98)) == pytest.approx(0.485)
    assert expected_calibration_error(coin, np.full(200, 1.0)) == pytest.approx(0.5)


def test_evaluate_scores_splits_by_source() -> None:
    # Within each source the scores are useless, but the positive rate differs by source: the pooled AUC
    # rewards recognising the channel, the per-source AUCs do not.
    rng = np.random.default_rng(0)
    sources = np.array(["call-center"] * 400 + ["telegram"] * 400)
    y = np.r_[rng.random(400) < 0.7, rng.random(400) < 0.3].astype(int)
    p = np.where(sources == "call-center", 0.7, 0.3) + 0.01 * rng.normal(size=800)
    result = evaluate_scores(y, p, sources, n_boot=300, seed=0)
    assert set(result["per_source"]) == {"call-center", "telegram"}
    for source, group in result["per_source"].items():
        mask = sources == source
        assert group["n"] == mask.sum() and group["positives"] == y[mask].sum()
        assert group["auc"] == pytest.approx(roc_auc_score(y[mask], p[mask]))
        assert abs(group["auc"] - 0.5) < 0.1
        assert group["auc_ci"][0] <= group["auc"] <= group["auc_ci"][1]
    assert result["pooled"]["n"] == 800 and result["pooled"]["auc"] > 0.65


def test_evaluate_scores_single_class_source() -> None:
    y = np.array([1, 1, 1, 0, 1, 0])
    sources = ["a", "a", "a", "b", "b", "b"]
    result = evaluate_scores(y, np.linspace(0.1, 0.9, 6), sources, n_boot=50)
    assert result["per_source"]["a"]["auc"] is None and result["per_source"]["a"]["n"] == 3
    assert result["per_source"]["b"]["auc"] is not None
    json.dumps(result, allow_nan=False)


def _tone_or_noise(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Positives: a noisy 300-1500 Hz tone; negatives: broadband noise; varied lengths and levels."""
    rng = np.random.default_rng(seed)
    waves, labels = [], rng.integers(0, 2, n)
    for label in labels:
        length = int(rng.integers(8000, 24000))
        wave = rng.normal(scale=0.3, size=length)
        if label:
            t = np.arange(length) / 16000
            wave = 0.3 * wave + np.sin(2 * np.pi * rng.uniform(300, 1500) * t)
        waves.append((wave * rng.uniform(0.1, 1.0) / np.abs(wave).max()).astype(np.float32))
    return waves, labels


def test_mfcc_statistics_shape_and_batching() -> None:
    waves, _ = _tone_or_noise(3, 0)
    features = mfcc_statistics(waves)
    assert features.shape == (3, 80) and features.dtype == np.float32 and np.all(np.isfinite(features))
    windows = np.stack([w[:8000] for w in waves])
    assert np.allclose(mfcc_statistics(windows), mfcc_statistics(list(windows)))
    with pytest.raises(ValueError, match="batch"):
        mfcc_statistics(waves[0])


def test_baseline_beats_chance_on_separable_task() -> None:
    train_x, train_y = _tone_or_noise(40, 1)
    test_x, test_y = _tone_or_noise(30, 2)
    baseline = MfccBaseline().fit(train_x, train_y)
    proba = baseline.predict_proba(test_x)
    assert proba.shape == (30,) and np.all((proba >= 0) & (proba <= 1))
    assert roc_auc_score(test_y, proba) > 0.9
    assert baseline.best_c in MfccBaseline.C_GRID


def test_baseline_refuses_a_missing_class() -> None:
    waves, _ = _tone_or_noise(4, 0)
    with pytest.raises(ValueError, match="each class"):
        MfccBaseline().fit(waves, [1, 1, 1, 0])


def test_write_report_json_png_and_table(tmp_path) -> None:
    rng = np.random.default_rng(0)
    sources = np.array(["call-center"] * 120 + ["telegram"] * 80)
    y = (rng.random(200) < 0.5).astype(int)
    results = {
        name: evaluate_scores(y, 1 / (1 + np.exp(-(rng.normal(size=200) + sep * y))), sources, n_boot=200)
        for name, sep in [("student_int8", 1.5), ("mfcc_baseline", 0.5)]
    }
    json_path, png_path = write_report(results, tmp_path / "eval")
    loaded = json.loads(json_path.read_text())
    assert set(loaded) == set(results)
    assert loaded["student_int8"]["per_source"]["telegram"]["auc"] == pytest.approx(
        results["student_int8"]["per_source"]["telegram"]["auc"]
    )
    image = matplotlib.image.imread(png_path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100

    assert (tmp_path / "eval" / "table.md").read_text() == markdown_table(results)
    results["student_int8"]["paired"] = paired_differences(y, rng.random(200), {"mfcc_baseline": rng.random(200)},
                                                           sources, n_boot=50)
    write_report(results, tmp_path / "eval")
    assert (tmp_path / "eval" / "table.md").read_text() == (
        markdown_table(results) + "\n" + paired_table("student_int8", results["student_int8"]["paired"]))
    table = markdown_table(results).strip().splitlines()
    assert len(table) == 2 + len(results)
    assert "AUC call-center (n=120)" in table[0] and "AUC telegram (n=80)" in table[0]
    auc = results["mfcc_baseline"]["per_source"]["telegram"]["auc"]
    assert table[3].startswith("| mfcc_baseline |") and f"{auc:.3f}" in table[3]


def _correlated_models(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models that share one noisy latent score, each with a little noise of its own."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    latent = rng.normal(size=n) + y
    return y, latent + 0.2 * rng.normal(size=n), latent + 0.2 * rng.normal(size=n)


def test_paired_difference_point_is_the_difference_of_aucs_with_ties() -> None:
    y, a, b = _correlated_models(300, 0)
    a, b = np.round(a, 1), np.round(b, 1)
    point, low, high = paired_auc_difference(y, a, b, n_boot=500)
    assert point == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert low <= point <= high
    assert paired_auc_difference(y, a, a, n_boot=200) == (0.0, 0.0, 0.0)


def test_paired_ci_is_narrower_than_separate_cis_when_models_share_noise() -> None:
    y, a, b = _correlated_models(200, 1)
    _, low, high = paired_auc_difference(y, a, b, n_boot=1000)
    _, a_low, a_high = roc_auc_ci(y, a, n_boot=1000)
    # Resampling the two models independently would give a CI of the difference wider than either model's own.
    assert high - low < 0.5 * (a_high - a_low)


def test_weighted_auc_is_the_auc_with_sample_weights_whatever_their_totals() -> None:
    from training.lib.metrics import _weighted_auc

    rng = np.random.default_rng(6)
    pos, neg = np.round(rng.normal(1, 1, 40), 1), np.round(rng.normal(0, 1, 60), 1)  # with ties
    w_pos, w_neg = rng.integers(0, 4, (3, 40)).astype(float), rng.integers(0, 4, (3, 60)).astype(float)
    y = np.r_[np.ones(40), np.zeros(60)]
    expected = [roc_auc_score(y, np.r_[pos, neg], sample_weight=np.r_[a, b]) for a, b in zip(w_pos, w_neg)]
    np.testing.assert_allclose(_weighted_auc(pos, neg)(w_pos, w_neg), expected, rtol=1e-12)


def test_group_paired_difference_resamples_whole_groups() -> None:
    y, a, b = _correlated_models(300, 3)
    one_each = np.arange(300)
    point, low, high = paired_group_auc_difference(y, a, b, one_each, n_boot=1000)
    assert point == pytest.approx(paired_auc_difference(y, a, b)[0], abs=1e-12)
    assert low <= point <= high
    assert paired_group_auc_difference(y, a, a, one_each, n_boot=200) == (0.0, 0.0, 0.0)
    assert paired_group_auc_difference(y, a, b, one_each, n_boot=200, seed=4) == paired_group_auc_difference(
        y, a, b, one_each, n_boot=200, seed=4)
    # Ten groups whose clips all move together: far less is known than from 300 separate clips, and the CI says so.
    groups = np.arange(300) % 10
    shared = np.random.default_rng(5).normal(size=10)[groups]
    _, g_low, g_high = paired_group_auc_difference(y, a + shared * y, b, groups, n_boot=1000)
    _, c_low, c_high = paired_auc_difference(y, a + shared * y, b, n_boot=1000)
    assert g_high - g_low > 1.5 * (c_high - c_low)


def test_paired_ci_tells_a_better_model_apart_and_is_seeded() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(400) < 0.4).astype(int)
    latent = rng.normal(size=400)
    better, worse = latent + 1.5 * y, latent + 0.5 * y
    point, low, high = paired_auc_difference(y, better, worse, n_boot=500, seed=3)
    assert point > 0 and low > 0
    assert paired_auc_difference(y, worse, better, n_boot=500, seed=3) == pytest.approx((-point, -high, -low))
    assert paired_auc_difference(y, better, worse, n_boot=500, seed=4) != (point, low, high)


def test_paired_differences_per_source_and_table() -> None:
    y, a, b = _correlated_models(300, 4)
    sources = np.array(["call-center"] * 150 + ["telegram"] * 150)
    paired = paired_differences(y, a, {"teacher": b, "itself": a}, sources, n_boot=300, seed=0)
    cc = sources == "call-center"
    expected = paired_auc_difference(y[cc], a[cc], b[cc], n_boot=300, seed=0)
    assert paired["teacher"]["per_source"]["call-center"] == {"difference": expected[0], "ci": list(expected[1:])}
    assert paired["teacher"]["pooled"]["difference"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert paired["itself"]["pooled"] == {"difference": 0.0, "ci": [0.0, 0.0]}

    table = paired_table("student_int8", paired).strip().splitlines()
    assert table[0] == "| student_int8 minus | AUC call-center | AUC telegram | AUC pooled |"
    assert table[3] == "| itself | +0.000 [+0.000, +0.000] | +0.000 [+0.000, +0.000] | +0.000 [+0.000, +0.000] |"
    d = paired["teacher"]["per_source"]["call-center"]
    assert f"{d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" in table[2]


def test_paired_differences_skip_single_class_groups() -> None:
    y = np.array([0, 1, 0, 1, 0, 0])
    sources = np.array(["a", "a", "a", "a", "b", "b"])
    p = np.linspace(0, 1, 6)
    paired = paired_differences(y, p, {"other": p[::-1]}, sources, n_boot=50)
    assert paired["other"]["per_source"]["b"] is None
    assert paired["other"]["per_source"]["a"]["difference"] == pytest.approx(0.75 - 0.25)
    assert "n/a" in paired_table("m", paired)


def test_within_source_auc_ignores_the_channel() -> None:
    sources = np.array(["a"] * 6 + ["b"] * 6 + ["c"] * 2)
    y = np.array([0, 0, 0, 1, 1, 1] + [0, 0, 0, 1, 1, 1] + [1, 1])
    p = np.r_[[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.9, 0.8, 0.7, 0.95, 0.75, 0.85], [0.0, 0.1]]
    assert within_source_auc(y, p, sources) == pytest.approx((1.0 + 6 / 9) / 2)
    with pytest.raises(ValueError, match="both classes"):
        within_source_auc(y[-2:], p[-2:], sources[-2:])


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """A run folder over synthetic wav files, with coughkd.load replaced by a stand-in model."""
    import types

    import soundfile

    import coughkd
    from coughkd.model import sha256_file
    from training.lib.data import Recording, split

    waves, labels = _tone_or_noise(60, 5)
    recordings = []
    for i, (wave, label) in enumerate(zip(waves, labels)):
        path = tmp_path / f"{i}.wav"
        soundfile.write(path, wave, 16000)
        recordings.append(Recording(path, int(label), "call-center" if i % 2 else "telegram", sha256_file(path)))
    parts = split(recordings, seed=0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "split.json").write_text(json.dumps({k: [r.sha256 for r in v] for k, v in parts.items()}))
    teacher = {r.sha256: 0.2 + 0.6 * r.label - 0.1 * (i % 3) for i, r in enumerate(parts["test"])}
    (run_dir / "teacher_test_scores.json").write_text(json.dumps(teacher))

    calls = []

    def load(model_dir, variant="int8"):
        def scores(waveform, sample_rate=None):
            calls.append((variant, sample_rate))
            p = float(np.abs(waveform).mean())
            return types.SimpleNamespace(covid_logit=float(np.log(p / (1 - p))))
        return types.SimpleNamespace(scores=scores, runtime=types.SimpleNamespace(thresholds={"covid": 0.3}))

    monkeypatch.setattr(coughkd, "load", load, raising=False)
    return recordings, parts, teacher, run_dir, calls


@pytest.mark.slow
def test_evaluate_run_scores_every_model_on_the_test_split(fake_run, tmp_path) -> None:
    from training.lib.metrics import evaluate_run

    recordings, parts, teacher, run_dir, calls = fake_run
    results = evaluate_run(tmp_path / "model", run_dir, tmp_path / "eval", recordings, n_boot=100, progress=False)
    test = parts["test"]
    assert list(results) == ["student_int8", "student_fp32", "teacher", "mfcc_baseline"]
    assert sorted(calls) == sorted([(v, 16000) for v in ("int8", "fp32") for _ in test])
    for result in results.values():
        assert result["pooled"]["n"] == len(test)
        assert result["per_source"]["telegram"]["n"] == sum(r.source == "telegram" for r in test)
    y = [r.label for r in test]
    assert results["teacher"]["pooled"]["auc"] == pytest.approx(roc_auc_score(y, [teacher[r.sha256] for r in test]))
    point = results["student_int8"]["test_operating_point"]["pooled"]
    assert point["threshold"] == 0.3 and point["tp"] + point["fn"] == sum(y)
    assert json.loads((tmp_path / "eval" / "report.json").read_text()).keys() == results.keys()
    assert (tmp_path / "eval" / "roc.png").is_file()
    paired = results["student_int8"]["paired"]
    assert list(paired) == ["student_fp32", "teacher", "mfcc_baseline"]
    assert paired["teacher"]["pooled"]["difference"] == pytest.approx(
        results["student_int8"]["pooled"]["auc"] - results["teacher"]["pooled"]["auc"])
    assert (tmp_path / "eval" / "table.md").read_text().startswith(markdown_table(results))


def test_evaluate_run_needs_teacher_scores_for_every_test_recording(fake_run, tmp_path) -> None:
    from training.lib.metrics import evaluate_run

    recordings, parts, teacher, run_dir, _ = fake_run
    del teacher[parts["test"][0].sha256]
    (run_dir / "teacher_test_scores.json").write_text(json.dumps(teacher))
    with pytest.raises(ValueError, match="teacher_test_scores.json lacks 1"):
        evaluate_run(tmp_path / "model", run_dir, tmp_path / "eval", recordings, n_boot=10, progress=False)
    with pytest.raises(ValueError, match="not in the loaded dataset"):
        evaluate_run(tmp_path / "model", run_dir, tmp_path / "eval", recordings[:5], n_boot=10, progress=False)

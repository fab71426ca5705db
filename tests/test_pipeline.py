"""A smoke run of the whole training pipeline (prepare -> teacher -> distil -> gate -> export -> evaluate -> card)
on a small stratified subset of the real data, and the pieces it is glued with."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import coughkd
from training.lib.clips import ClipSet, clip_scores
from training.lib.configurator import parse_overrides


def test_overrides_are_typed_and_checked() -> None:
    defaults = {"epochs": 3, "lr": 0.1, "name": "x", "flag": False}
    assert parse_overrides(defaults, ["--epochs=5", "--lr=1", "--name=y", "--flag=True"]) == {
        "epochs": 5, "lr": 1.0, "name": "y", "flag": True}
    for bad in (["--epoch=5"], ["--epochs=five"], ["--epochs=1.5"], ["epochs=5"], ["--flag=1"]):
        with pytest.raises(SystemExit):
            parse_overrides(defaults, bad)


def _clips() -> ClipSet:
    waveforms = [np.full(n, v, np.float32) for n, v in ((3, 0.1), (5, 0.2), (2, 0.3), (4, 0.4))]
    return ClipSet.build(waveforms, recording=np.array([0, 1, -1, 2]), split=np.array(["val", "val", "val", "test"]),
                         covid_label=np.array([1, 0, -1, 0]), source=np.array(["a", "b", "generated:tone", "b"]),
                         is_cough=np.array([1, 1, 0, 1], np.int8))


def test_clip_set_keeps_each_clip_whole_through_subset_and_save(tmp_path: Path) -> None:
    clips = _clips()
    assert [len(clips.waveform(i)) for i in range(len(clips))] == [3, 5, 2, 4]
    part = clips.subset(np.array([False, True, False, True]))
    assert part.recording.tolist() == [1, 2]
    np.testing.assert_array_equal(part.waveform(1), np.full(4, 0.4, np.float32))
    clips.save(tmp_path / "clips.npz")
    loaded = ClipSet.load(tmp_path / "clips.npz")
    np.testing.assert_array_equal(loaded.waveform(2), clips.waveform(2))
    assert loaded.source.tolist() == clips.source.tolist()
    both = ClipSet.concatenate([part, clips])
    assert len(both) == 6 and both.waveform(5).tolist() == clips.waveform(3).tolist()


def test_clip_scores_leave_out_generated_audio() -> None:
    scores = clip_scores(_clips(), np.array([2.0, -1.0, 9.0, 0.0]))
    assert scores.recording.tolist() == [0, 1, 2]
    assert scores.label.tolist() == [1, 0, 0]
    assert scores.source.tolist() == ["a", "b", "b"]
    np.testing.assert_allclose(scores.probability, 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.0]))))


@pytest.mark.slow
def test_reproduce_smoke_run(cough_data: Path, shared_models: Path, tmp_path: Path) -> None:
    from training import reproduce

    out, card, reports = tmp_path / "model", tmp_path / "CARD.md", tmp_path / "reports"
    results = reproduce.main([f"--run_dir={tmp_path / 'run'}", f"--out_dir={out}", f"--card={card}",
                              f"--report_dir={reports}", "--limit=60", "--non_cough_clips=30",
                              "--student_epochs=2", "--gate_epochs=1", "--n_boot=100", "--calibration_windows=50",
                              "--families=cnn,wav2vec"])

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metrics"]["export"]["fp32_parity_max_abs_diff"] < 1e-4
    assert manifest["student"]["parameters"] <= 100_000
    assert manifest["data"]["conflicting_groups_dropped"] > 0
    assert "--limit=60" in manifest["command"]
    point = manifest["operating_point"]
    for count in ("tp", "fn", "tn", "fp"):
        assert sum(p[count] for p in point["per_source"].values()) == point[count], "channels add up to the pooled"
    telegram = point["per_source"]["telegram"]
    assert f"| telegram | {telegram['sensitivity']:.3f} | {telegram['specificity']:.3f} | " in card.read_text()

    gate = torch.load(tmp_path / "run" / "sound_cnn.pt", map_location="cpu", weights_only=False)
    assert manifest["sound_types"] == list(coughkd.SOUND_TYPES) and manifest["threshold"]["cough"] == gate["threshold"]
    assert manifest["student"]["parameters"] + manifest["student"]["gate_parameters"] <= 100_000
    model = coughkd.load(out)
    clip = next((cough_data / "raw").glob("*.mp3"))
    prediction = model.predict(str(clip))
    assert prediction.sound_type in coughkd.SOUND_TYPES and prediction.events
    assert (prediction.covid_probability is None) == (not prediction.is_cough)
    gate_report = json.loads((reports / "gate.json").read_text())
    assert {"cough: coswara", "speech", "breathing", "other"} <= set(gate_report["promises"])
    sounds = json.loads((tmp_path / "run" / "sounds.json").read_text())
    assert {row["dataset"] for row in sounds} >= {"coswara", "esc10", "speech-commands", "covid19-cough"}
    assert gate_report["roc"]["n_cough"] + gate_report["roc"]["n_other"] == sum(
        row["split"] == "test" and row["dataset"] not in ("generated", "mixture") for row in sounds)

    report = json.loads((reports / "report.json").read_text())
    assert {"student_int8", "student_fp32", "teacher", "mfcc_baseline", "student_cnn_torch",
            "student_wav2vec_torch"} <= set(report)
    assert (reports / "roc.png").stat().st_size > 10_000
    assert (tmp_path / "CARD_roc.png").read_bytes() == (reports / "roc.png").read_bytes()
    text = card.read_text()
    assert "](CARD_roc.png)" in text, "the card shows the ROC plot that sits beside it"
    assert "](CARD_gate_roc.png)" in text and (tmp_path / "CARD_gate_roc.png").stat().st_size > 10_000
    speech = gate_report["promises"]["speech"]
    assert f"| speech | refused {speech['share']:.1%} ({speech['right']}/{speech['n']}) |" in text
    pooled = results["student_int8"]["pooled"]
    assert f"{pooled['auc']:.3f}" in text, "the card must quote the AUC this run measured"
    assert "not a medical device" in text
    int8 = manifest["metrics"]["export"]["int8"]
    assert f"FP32 {int8['fp32_metric']:.3f}, plain PTQ {int8['ptq_metric']:.3f}" in text
    assert "| MFCC-statistics read-out |" in text and "| CNN head |" in text and "| mean (shipped) |" in text
    cnn_test = results["student_cnn_torch"]["per_source"]
    shipped_row = next(line for line in text.splitlines() if line.startswith("| mean (shipped) |"))
    assert [f"{cnn_test[s]['auc']:.3f}" for s in sorted(cnn_test)] == shipped_row.strip("| ").split(" | ")[1:], \
        "the members' mean is the shipped student, so its row must repeat the student's own AUCs"
    vs_teacher = results["student_int8"]["paired"]["teacher"]["pooled"]
    assert vs_teacher["difference"] == pytest.approx(pooled["auc"] - results["teacher"]["pooled"]["auc"])
    assert "| teacher | " in text and f"{vs_teacher['difference']:+.3f} [{vs_teacher['ci'][0]:+.3f}, " in text

    from training import crossval

    run_clips = ClipSet.load(tmp_path / "run" / "clips.npz")
    report = crossval.main([f"--run_dir={tmp_path / 'run'}", "--folds=2", "--epochs=1", f"--card={card}",
                            f"--report_dir={reports}", "--n_boot=50"])
    recordings, _ = crossval.cross_validated_rows(run_clips)
    assert report["recordings"] == recordings.sum() == sum(
        g["n"] for g in report["results"]["teacher"]["per_source"].values()), "each recording scored once"
    assert {crossval.STUDENT, crossval.CUT, "student member: CNN head", "teacher",
            "mfcc_baseline"} <= set(report["per_source_auc"])
    assert 0 <= report["recordings_cut"] <= report["recordings"]
    assert "The runtime scores a cough recording whole" in card.read_text()
    assert json.loads((reports / "crossval.json").read_text())["per_source_auc"] == report["per_source_auc"]
    text = card.read_text()
    assert "Not measured for this recipe yet" not in text
    assert f"{report['per_source_auc']['teacher']['telegram']:.3f}" in text
    oof = report["out_of_fold"]
    telegram = np.array(oof["source"]) == "telegram"
    assert len(oof["recording"]) == report["recordings"]
    assert roc_auc_score(np.array(oof["label"])[telegram], np.array(oof["teacher"])[telegram]) == pytest.approx(
        report["per_source_auc"]["teacher"]["telegram"]), "the stored out-of-fold scores are the ones scored"
    student_minus_teacher = report["paired"]["teacher"]["per_source"]["telegram"]["difference"]
    assert f"{student_minus_teacher:+.3f} [" in text

    seeded = crossval.main([f"--run_dir={tmp_path / 'run'}", "--folds=2", "--epochs=1", "--card=",
                            f"--report_dir={reports / 'seed3'}", "--n_boot=50", "--student_seed=3"])
    shipped = torch.load(tmp_path / "run" / "student_cnn.pt", map_location="cpu", weights_only=False)
    assert seeded["student_config"]["seed"] == 3 != shipped["distill"]["seed"], "the folds' students used seed 3"
    assert seeded["per_source_auc"]["teacher"] == report["per_source_auc"]["teacher"], "same folds, same teacher"
    assert (reports / "seed3" / "crossval.json").exists() and card.read_text() == text, "--card= leaves it alone"

    from training import gate_crossval

    gate_cv = gate_crossval.main([f"--run_dir={tmp_path / 'run'}", "--folds=2", "--epochs=1", "--limit=60",
                                  "--speed_copies=1.0", f"--report={reports / 'gate_crossval.json'}"])
    held = [c for c in gate_cv["clips"] if c["channel"] == "wideband" and c["dataset"] != "covid19-cough"]
    real = [r for r in sounds if r["channel"] == "wideband" and r["dataset"] in ("coswara", "esc10", "speech-commands")]
    copies = 2 if gate["config"]["speed_copies"] > 1 else 1  # the run's training split holds a speed copy of each
    assert len(held) == sum(r["split"] == "val" for r in real) + sum(r["split"] == "train" for r in real) // copies, \
        "every real training and validation recording is held out once"
    folds_of_group: dict[str, set] = {}
    for clip in gate_cv["clips"]:
        folds_of_group.setdefault(clip["group"], set()).add(clip["fold"])
    assert all(len(f) == 1 for f in folds_of_group.values()), "a person, speaker or fold is held out in one fold"
    assert {c["fold"] for c in gate_cv["clips"]} == {0, 1}
    assert sum(n for _, n in gate_cv["rates"].values()) == len(gate_cv["clips"])
    assert 0.0 <= gate_cv["auc"] <= 1.0 and json.loads((reports / "gate_crossval.json").read_text())["wrong"] == \
        gate_cv["wrong"]


def test_cross_validation_never_reads_the_test_split() -> None:
    from training.crossval import cross_validated_rows

    clips = ClipSet.build([np.zeros(4, np.float32)] * 6, recording=np.array([0, 1, 2, -1, -1, 3]),
                          split=np.array(["train", "val", "test", "train", "test", "train"]),
                          covid_label=np.array([1, 0, 1, -1, -1, 0]),
                          source=np.array(["a", "a", "a", "generated:tone", "generated:tone", "b"]),
                          is_cough=np.array([1, 1, 1, 0, 0, 1], np.int8))
    recordings, kept = cross_validated_rows(clips)
    assert recordings.tolist() == [True, True, False, False, False, True]
    assert kept.tolist() == [True, True, False, True, False, True]


def test_previous_model_note_names_it_and_its_command() -> None:
    from training.lib.card import previous_note

    assert previous_note(None) == ""
    note = previous_note({"model": "coughkd-cnn-1", "command": "docs/previous_model_scores.py out.json", "scores": {}})
    assert "previous model (coughkd-cnn-1)" in note and "`docs/previous_model_scores.py out.json`" in note


def test_family_table_is_a_comparison_only_when_the_run_trained_several_families() -> None:
    from training.lib.card import families_heading

    assert families_heading(["cnn", "wav2vec"]).startswith("Student families compared")
    alone = families_heading(["cnn"])
    assert "compared" not in alone.split(";")[0] and "`--families=cnn,wav2vec`" in alone

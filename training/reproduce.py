"""Rebuild the shipped model from data, end to end, and rewrite assets/model/ and assets/MODEL_CARD.md (with the
run's ROC plot beside it, MODEL_CARD_roc.png).

    python -m training.reproduce                      # the shipped model (run time by machine: README.md)
    python -m training.reproduce --limit=60 --student_epochs=2 --out_dir=/tmp/m   # smoke run
    python -m training.reproduce --families=cnn,wav2vec     # and the waveform student beside the shipped CNN
    python -m training.reproduce --teacher=facebook/wav2vec2-base --finetune_epochs=3 --mode=frozen
    accelerate launch -m training.reproduce --teacher=facebook/wav2vec2-base --finetune_epochs=3   # every GPU

Steps: prepare (data, traps, splits, clips) -> teacher (EfficientAT mn04, or any wav2vec2-family hub name or local
directory, + probes, cached outputs) -> distill
(each student family) -> gate (the sound-type network, on real coughs, speech, breathing and everyday sounds) ->
export (OpenVINO FP32 + NNCF INT8, parity) -> evaluate (held-out test splits, through the coughkd runtime) -> model
card. Every number in the card comes from this run; ``previous_scores`` adds the model this one replaces as a row
(its per-recording test probabilities, {"model": id, "scores": {sha256: probability}}). The gate always learns
from mn04's AudioSet tags, whichever teacher the COVID-19 student has. Under ``accelerate launch`` every process
fine-tunes the teacher and trains the students and the gate; the main process alone prepares the data, writes the
teacher cache and checkpoints, exports, evaluates and writes the card.
"""
from __future__ import annotations

import json
import platform
import re
import shlex
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from coughkd.features import front_end_spec
from training import distill, gate, prepare
from training import teacher as teacher_step
from training.lib.card import gate_image, model_card, positive_share, roc_image
from training.lib.clips import ClipSet, features
from training.lib.configurator import configure
from training.lib.distillation import member_aucs, student_clip_scores
from training.lib.export import (
    calibration_inputs,
    export_student,
    write_manifest,
)
from training.lib.metrics import (
    POOLED,
    choose_threshold,
    evaluate_gate,
    evaluate_run,
    evaluate_scores,
    gate_roc_figure,
    operating_points,
    within_source_auc,
    write_report,
)

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/reproduce"
out_dir = "assets/model"
card = "assets/MODEL_CARD.md"
report_dir = "reports/eval"
families = "cnn"  # student families trained and compared; the first is exported and shipped. "cnn,wav2vec" adds
# the tiny waveform transformer for comparison (16 more minutes on 2 cores; its last figures: docs/experiments.md)
teacher = "efficientat"  # the COVID-19 student's teacher: "efficientat" (mn04) or a wav2vec2-family hub name / dir
mode = "full"  # wav2vec2-family teachers, when fine-tuned: "full", or "frozen" with a learnt weighted layer sum
finetune_epochs = 0  # > 0: fine-tune the teacher on 2 s crops first (training.teacher)
layer_weight = 0.0  # > 0: the students also regress these teacher layers (wav2vec2-family teachers; training.distill)
layers = "4,8,12"
student_epochs = 30
gate_epochs = 30
non_cough_clips = 600
limit = 0  # > 0: a stratified subset of this many recordings (smoke runs)
calibration_windows = 300
n_boot = 2000
resume = False  # True: steps whose outputs are in run_dir (from a run of this checkout) are loaded, not redone
previous_scores = ""  # a json of the replaced model's test-split scores (see the module docstring); "": no such row
seed = 0
# --------------------------------------------------------------------------------------------------------------------

# Processes wait at barriers while the main one prepares the data or embeds every clip with the teacher, which can
# outlast torch's default 10 minutes on a first run.
BARRIER_TIMEOUT = timedelta(hours=2)


def teacher_tag(name: str) -> str:
    """The teacher's part of the model id: "" for mn04, else the hub name's or directory's last part
    ("facebook/wav2vec2-base" -> "wav2vec2-base-"), so a model distilled from another teacher says so."""
    if name == "efficientat":
        return ""
    return re.sub(r"[^a-z0-9.]+", "-", Path(name.rstrip("/")).name.lower()).strip("-") + "-"


def run(*, run_dir: str = run_dir, out_dir: str = out_dir, card: str = card, report_dir: str = report_dir,
        families: str = families, teacher: str = teacher, mode: str = mode, finetune_epochs: int = finetune_epochs,
        layer_weight: float = layer_weight, layers: str = layers, student_epochs: int = student_epochs,
        gate_epochs: int = gate_epochs, non_cough_clips: int = non_cough_clips, limit: int = limit,
        calibration_windows: int = calibration_windows, n_boot: int = n_boot, resume: bool = resume,
        previous_scores: str = previous_scores, seed: int = seed, command: str = "") -> dict:
    """The whole recipe; ``command``: the command line the manifest and the card cite."""
    config = {k: v for k, v in locals().items() if k != "command"}
    start = time.time()
    # `accelerate launch --cpu` says so through the environment, which Accelerator reads and PartialState does not
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"), timeout=BARRIER_TIMEOUT)
    run, out = Path(config["run_dir"]), Path(config["out_dir"])
    families_ = config["families"].split(",")
    resumed: list[str] = []

    def done(step: str, output: str) -> bool:
        """Whether `step` is loaded from the run folder instead of run (``resume``)."""
        if config["resume"] and (run / output).exists():
            resumed.append(step)
            return True
        return False

    if not done("prepare", "clips.npz") and state.is_main_process:  # under `accelerate launch`, one process
        prepare.run(run_dir=str(run), limit=limit, non_cough_clips=non_cough_clips, seed=seed)  # the others read it
    state.wait_for_everyone()
    clips = ClipSet.load(run / "clips.npz")
    feats = features(clips)
    if done("teacher", "teacher_summary.json"):
        teacher_summary = json.loads((run / "teacher_summary.json").read_text())
    else:
        teacher_summary = teacher_step.run(run_dir=str(run), seed=seed, teacher=teacher, mode=mode,
                                           finetune_epochs=finetune_epochs, feats=feats)
    state.wait_for_everyone()  # the students read the cache the main process wrote
    checkpoints = {}
    for family in families_:
        if done(f"distill {family}", f"student_{family}.pt"):
            checkpoints[family] = torch.load(run / f"student_{family}.pt", map_location="cpu", weights_only=False)
        else:
            checkpoints[family] = distill.run(run_dir=str(run), family=family, epochs=student_epochs, seed=seed,
                                              layer_weight=layer_weight, layers=layers, feats=feats)
    gate_checkpoint, sounds, sound_feats = gate.run(run_dir=str(run), epochs=gate_epochs, limit=limit, seed=seed,
                                                    resume=done("gate", "sound_cnn.pt"), clips=clips)
    if not state.is_main_process:  # export, evaluation and the card happen once
        return {}

    test_scores = {family: student_clip_scores(clips, feats, ckpt, "test") for family, ckpt in checkpoints.items()}
    family_test = {family: within_source_auc(scores.label, scores.probability, scores.source)
                   for family, scores in test_scores.items()}
    shipped = families_[0]
    val_scores = student_clip_scores(clips, feats, checkpoints[shipped], "val")
    threshold = choose_threshold(val_scores.label, val_scores.probability, specificity=0.9)
    val_points = operating_points(val_scores.label, val_scores.probability, val_scores.source, threshold)

    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("student_*"):
        stale.unlink()
    calibration = calibration_inputs(clips, feats, sounds, sound_feats, calibration_windows, seed)
    export_info = export_student(checkpoints[shipped], gate_checkpoint, clips, calibration, out, run)
    data_report = json.loads((run / "data_report.json").read_text())
    splits = {k: len(v) for k, v in json.loads((run / "split.json").read_text()).items()}
    gate_splits = {name: int((sounds.split == name).sum()) for name in ("train", "val", "test")}
    manifest_fields = dict(
        # The UTC date and minute: two releases of one day are told apart (the card compares each with the one before).
        model_id=(f"coughkd-{shipped}-{teacher_tag(config['teacher'])}{time.strftime('%Y%m%d-%H%M', time.gmtime())}"
                  f"-s{config['seed']}"),
        command=command,
        threshold={"covid": threshold, "cough": gate_checkpoint["threshold"]},
        operating_point={**val_points[POOLED], "per_source": val_points["per_source"], "source": "validation"},
        teacher={"name": f"{teacher_summary['description']}; COVID-19 head: per-source linear probes on its clip "
                         "embedding and on MFCC statistics, averaged; sound types (the gate): EfficientAT mn04's "
                         "AudioSet tags",
                 "model": config["teacher"], "val_within_source_auc": teacher_summary["val_within_source_auc"]},
        data={"dataset": "covid19-cough (CC0)", "splits": splits, "counts": data_report["counts"],
              "conflicting_groups_dropped": len(data_report["conflicting_groups"]),
              "undecodable": len(data_report["undecodable"]),
              "gate": {"datasets": "covid19-cough, coswara-20200413, esc10, speech-commands-30x10, generated",
                       "splits": gate_splits}},
        student={"family": shipped, "parameters": checkpoints[shipped]["parameters"],
                 "gate_parameters": gate_checkpoint["parameters"]},
        front_end=front_end_spec(),
    )
    write_manifest(out, metrics={"export": export_info}, **manifest_fields)

    previous = json.loads(Path(config["previous_scores"]).read_text()) if config["previous_scores"] else None
    others = {f"previous model ({previous['model']})": previous["scores"]} if previous else None
    results = evaluate_run(out, run, Path(config["report_dir"]), n_boot=config["n_boot"], seed=config["seed"],
                           cache_dir=Path(prepare.audio_cache), other_scores=others)
    for family, scores in test_scores.items():
        results[f"student_{family}_torch"] = evaluate_scores(scores.label, scores.probability, scores.source,
                                                             config["n_boot"], config["seed"])
    _, roc = write_report(results, Path(config["report_dir"]))
    shutil.copyfile(roc, roc_image(Path(config["card"])))
    gate_test, coswara = evaluate_gate(out, sounds, "test")
    (Path(config["report_dir"]) / "gate.json").write_text(json.dumps({**gate_test, "coswara": coswara}, indent=1))
    gate_roc_figure(gate_test, gate_image(Path(config["card"])))
    test_metrics = {name: {"per_source_auc": {s: g["auc"] for s, g in r["per_source"].items()},
                           "pooled_auc": r["pooled"]["auc"]} for name, r in results.items()}
    test_metrics["gate"] = {g: p["share"] for g, p in gate_test["promises"].items()}
    write_manifest(out, metrics={"export": export_info, "test": test_metrics}, **manifest_fields)
    saved = {k: manifest_fields[k] for k in ("threshold", "operating_point", "teacher", "data")}
    (run / "metrics.json").write_text(json.dumps({**saved, "metrics": test_metrics}, indent=1))

    summary = {
        "shipped": shipped, "checkpoints": checkpoints, "teacher": teacher_summary, "family_test": family_test,
        "threshold": threshold, "val_operating_points": val_points, "export": export_info,
        "gate": gate_checkpoint, "gate_test": gate_test, "gate_splits": gate_splits, "coswara": coswara,
        "previous": previous, "resumed": resumed,
        "members": member_aucs(clips, feats, checkpoints[shipped], "test"),
        "positive_share": positive_share(data_report["counts"]),
        "data": {"found": data_report["found"], "conflicting_groups": len(data_report["conflicting_groups"]),
                 "undecodable": len(data_report["undecodable"]), "counts": data_report["counts"]},
        "splits": splits, "command": command, "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads", "minutes": (time.time() - start) / 60,
    }
    Path(config["card"]).write_text(model_card(config, results, summary))
    print(f"done in {summary['minutes']:.1f} min: {out}, {config['card']}")
    return results


def main(argv: list[str]) -> dict:
    return run(**configure(globals(), argv), command=shlex.join(["python", "-m", "training.reproduce", *argv]))


if __name__ == "__main__":
    main(sys.argv[1:])

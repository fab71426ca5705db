"""Student vs teacher vs MFCC baseline, cross-validated over the training and validation recordings (never test).

    python -m training.crossval --run_dir=runs/reproduce      # after `python -m training.reproduce`; ~25 min on 2 cores

Why: the validation and test splits hold 8 Telegram positives each, and one model's Telegram AUC swings by 0.3-0.4
between them (the teacher of the run behind the shipped model: 0.42 on validation, 0.78 on test, from the scores in
its run directory). Out-of-fold scores over every training and validation recording (47 Telegram positives) are a
steadier comparison of the recipe than either split alone.

Each fold repeats the run's recipe with the held-out fold in the role of the validation split: the teacher's probes
are cross-fitted on the fold's training recordings (training.lib.probe.covid_logits), a student is distilled from
them with the shipped student's own distillation config (training.lib.distillation.train_student), and the MFCC
baseline is fitted on the fold's training recordings; then each scores the held-out fold. Generated non-cough clips
of the training split stay in every fold's training set; test clips are never read. Writes reports/crossval.json and the
card's cross-validation section (between its crossval markers); the json keeps every recording's out-of-fold
scores (``out_of_fold``, recordings by index into the run's recordings.json), so other statistics need no re-run.

How much of a difference is the seed: ``--student_seed=1 --card= --report_dir=reports/seed1`` distils every fold's
student with another seed, on the same folds and teacher, and leaves the card alone. For the shipped recipe that
moved the student's out-of-fold AUC from 0.820 / 0.728 to 0.824 / 0.712 (call-centre / Telegram; 2026-11-29,
31 min): recipes that differ by 0.01-0.02 on Telegram are not told apart by one run each.

What distillation adds: ``--ablation=True`` also distils every fold's student on the hard labels alone
(soft_weight=0) and on the teacher's targets alone (hard_weight=0), beside the shipped recipe, and adds their rows
and the shipped recipe's paired differences to each (``ablation`` in crossval.json; against hard labels only it is
"with distillation minus without") to the json and the card's section. Three students per fold: about three times
the run time.
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from coughkd.audio import MIN_SECONDS, SAMPLE_RATE
from coughkd.events import Event
from coughkd.features import chunks
from coughkd.model import OUTPUTS
from coughkd.predict import aggregate, score, sigmoid
from training.lib.card import CROSSVAL_END, CROSSVAL_START, quote, section
from training.lib.clips import ClipFeatures, ClipSet, features, load_run
from training.lib.configurator import configure
from training.lib.distillation import member_logits, recipe, student_inputs, train_student
from training.lib.metrics import evaluate_scores, paired_differences
from training.lib.probe import MfccBaseline, covid_logits
from training.models.students import (
    WINDOW_HOP_SAMPLES,
    WINDOW_SAMPLES,
    Screener,
    from_checkpoint,
    gate_from_checkpoint,
)

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
family = "cnn"  # the student family whose recipe is cross-validated (its checkpoint in run_dir gives the config)
folds = 5
epochs = 0  # > 0: override the checkpoint's number of epochs (for quick checks); 0: the recipe's own
student_seed = -1  # >= 0: distil with this seed instead of the checkpoint's (same folds: the recipe's seed spread)
ablation = False  # True: on the same folds, also distil on hard labels only and on the teacher's targets only
card = "assets/MODEL_CARD.md"  # "": leave the card alone (e.g. a --student_seed run beside the shipped recipe's)
report_dir = "reports"
n_boot = 2000
seed = 0
# --------------------------------------------------------------------------------------------------------------------

STUDENT = "student (mean of members, as shipped; PyTorch)"
CUT = "student on the cough parts (speech and other events cut; not shipped)"
# The alternative measured here: events the gate hears as these cut out before the COVID-19 score. Breathing would
# stay: the inhale before a cough belongs to it, and the training recordings hold it too.
CUT_TYPES = ("speech", "other")
# The distillation ablation (--ablation=True): the shipped recipe with one of its two COVID-19 losses switched off.
ABLATIONS = {"student, hard labels only (soft_weight=0)": {"soft_weight": 0.0},
             "student, teacher targets only (hard_weight=0)": {"hard_weight": 0.0}}


def cross_validated_rows(clips: ClipSet) -> tuple[np.ndarray, np.ndarray]:
    """(recordings, kept) masks over clips: the labelled training and validation recordings that are split into
    folds, and those plus the generated training clips, which every fold trains on. Test clips are in neither."""
    recordings = (clips.recording >= 0) & np.isin(clips.split, ["train", "val"])
    return recordings, recordings | ((clips.recording < 0) & (clips.split == "train"))


def run_fold(clips: ClipSet, feats: list[ClipFeatures], cache: dict[str, np.ndarray], held: np.ndarray,
             student_config: dict, teacher_config: dict) -> tuple[dict[str, np.ndarray], torch.nn.Module]:
    """COVID-19 probabilities of the ``held`` recordings (a mask over ``clips``, the cross-validated clips only) from
    the teacher, the student (and each of its members) and the baseline, all fitted on the other clips, with
    ``held`` in the role of the validation split, and the fold's student. Arrays are aligned with
    ``np.flatnonzero(held)``."""
    part = replace(clips, split=np.where(held, "val", "train"))
    part_cache = {**cache, "covid_logit": covid_logits(part, feats, cache["embedding"], teacher_config)}
    model = from_checkpoint(train_student(part, part_cache, student_config, feats))

    scored = np.flatnonzero(held)
    members = member_logits(model, student_inputs([feats[i] for i in scored], student_config["family"]))
    fit = np.flatnonzero(~held & (clips.recording >= 0))
    baseline = MfccBaseline(teacher_config["seed"]).fit([feats[i].waveform for i in fit], clips.covid_label[fit])
    names = model.member_names
    return {STUDENT: sigmoid(members.mean(axis=1)),
            **({f"student member: {n}": sigmoid(members[:, k]) for k, n in enumerate(names)} if len(names) > 1 else {}),
            "teacher": sigmoid(part_cache["covid_logit"][scored]),
            "mfcc_baseline": baseline.predict_proba([feats[i].waveform for i in scored])}, model


def cough_parts(waveform: np.ndarray, events: list[Event], types: list[str]) -> np.ndarray:
    """The waveform without the events heard as CUT_TYPES, or all of it when that leaves no cough event or less than
    the shortest recording the runtime scores."""
    if "cough" not in types or not set(types) & set(CUT_TYPES):
        return waveform
    keep = np.ones(len(waveform), dtype=bool)
    for event, kind in zip(events, types):
        if kind in CUT_TYPES:
            keep[int(event.start_s * SAMPLE_RATE):int(np.ceil(event.end_s * SAMPLE_RATE))] = False
    return waveform[keep] if keep.sum() >= MIN_SECONDS * SAMPLE_RATE else waveform


def cough_part_probabilities(student: torch.nn.Module, gate: dict, waveforms: list[np.ndarray]) -> np.ndarray:
    """A fold's student on each recording's cough parts as the run's gate (training.gate's checkpoint) hears its
    events, through the graph the runtime exports (front end included): the alternative to the runtime's
    whole-recording score, measured here."""
    network = Screener(student, gate_from_checkpoint(gate)).eval()

    @torch.no_grad()
    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {name: t.numpy() for name, t in zip(OUTPUTS, network(torch.from_numpy(x)))}

    logits = []
    for waveform in waveforms:
        scores = score(run, waveform, (WINDOW_SAMPLES, WINDOW_HOP_SAMPLES), gate["threshold"])
        parts = cough_parts(waveform, scores.events, scores.event_types)
        logits.append(aggregate([run(piece[None])["covid_logit"][0] for piece in chunks(parts)]))
    return sigmoid(np.array(logits))


def ablation_fold(clips: ClipSet, feats: list[ClipFeatures], cache: dict[str, np.ndarray], held: np.ndarray,
                  student_config: dict, teacher_config: dict) -> dict[str, np.ndarray]:
    """COVID-19 probabilities of the ``held`` recordings from a student distilled with each of ABLATIONS' overrides
    of the recipe (its members' mean, as shipped), on the fold's own teacher probes as in run_fold."""
    part = replace(clips, split=np.where(held, "val", "train"))
    part_cache = {**cache, "covid_logit": covid_logits(part, feats, cache["embedding"], teacher_config)}
    inputs = student_inputs([feats[i] for i in np.flatnonzero(held)], student_config["family"])
    out = {}
    for name, overrides in ABLATIONS.items():
        model = from_checkpoint(train_student(part, part_cache, {**student_config, **overrides}, feats))
        out[name] = sigmoid(member_logits(model, inputs).mean(axis=1))
    return out


def main(argv: list[str]) -> dict:
    config = configure(globals(), argv)
    start = time.time()
    run = Path(config["run_dir"])
    clips, cache = load_run(run)
    _, kept = cross_validated_rows(clips)
    clips, cache = clips.subset(kept), {k: v[kept] for k, v in cache.items()}
    shipped = torch.load(run / f"student_{config['family']}.pt", map_location="cpu", weights_only=False)
    student_config = {**recipe(shipped), "family": config["family"], "run_dir": str(run)}
    if config["epochs"] > 0:
        student_config["epochs"] = config["epochs"]
    if config["student_seed"] >= 0:
        student_config["seed"] = config["student_seed"]
    teacher_config = {"seed": config["seed"], "mfcc_probe": json.loads((run / "teacher_summary.json").read_text())[
        "mfcc_probe"]}
    feats = features(clips)

    labelled = np.flatnonzero(clips.recording >= 0)
    strata = np.array([f"{s}/{y}" for s, y in zip(clips.source[labelled], clips.covid_label[labelled])])
    scores: dict[str, np.ndarray] = {}
    splitter = StratifiedKFold(config["folds"], shuffle=True, random_state=config["seed"])
    students = []
    for k, (_, held_rows) in enumerate(splitter.split(labelled, strata)):
        print(f"fold {k + 1}/{config['folds']}")
        held = np.zeros(len(clips), dtype=bool)
        held[labelled[held_rows]] = True
        fold_scores, student = run_fold(clips, feats, cache, held, student_config, teacher_config)
        for name, values in fold_scores.items():
            scores.setdefault(name, np.zeros(len(labelled)))[held_rows] = values
        students.append((held_rows, student))
    gate = torch.load(run / "sound_cnn.pt", map_location="cpu", weights_only=False)
    scores[CUT] = np.zeros(len(labelled))
    for held_rows, student in students:
        scores[CUT][held_rows] = cough_part_probabilities(student, gate,
                                                           [clips.waveform(i) for i in labelled[held_rows]])

    y, sources = clips.covid_label[labelled], clips.source[labelled].astype(str)
    if config["ablation"]:  # the same folds again, with one of the recipe's losses switched off
        for k, (_, held_rows) in enumerate(splitter.split(labelled, strata)):
            print(f"ablation, fold {k + 1}/{config['folds']}")
            held = np.zeros(len(clips), dtype=bool)
            held[labelled[held_rows]] = True
            for name, values in ablation_fold(clips, feats, cache, held, student_config, teacher_config).items():
                scores.setdefault(name, np.zeros(len(labelled)))[held_rows] = values
    results = {name: evaluate_scores(y, p, sources, config["n_boot"], config["seed"]) for name, p in scores.items()}
    paired = paired_differences(y, scores[STUDENT], {name: scores[name] for name in ("teacher", "mfcc_baseline")},
                                sources, config["n_boot"], config["seed"])
    cut = paired_differences(y, scores[CUT], {STUDENT: scores[STUDENT]}, sources, config["n_boot"], config["seed"])
    report = {"command": shlex.join(["python", "-m", "training.crossval", *argv]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "minutes": (time.time() - start) / 60,
              "folds": config["folds"], "recordings": len(labelled), "student_config": student_config,
              "per_source_auc": {name: {s: g["auc"] for s, g in r["per_source"].items()}
                                 for name, r in results.items()},
              "results": results, "paired": paired, "cut_minus_whole": cut,
              "recordings_cut": int(sum(not np.isclose(a, b) for a, b in zip(scores[CUT], scores[STUDENT]))),
              "out_of_fold": {"recording": clips.recording[labelled].tolist(), "label": y.tolist(),
                              "source": sources.tolist(), **{name: p.tolist() for name, p in scores.items()}}}
    if config["ablation"]:
        report["ablation"] = paired_differences(y, scores[STUDENT], {name: scores[name] for name in ABLATIONS},
                                                sources, config["n_boot"], config["seed"])
    out = Path(config["report_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossval.json").write_text(json.dumps(report, indent=1, default=float))
    text = section(results, report)
    print(text)
    if config["card"] and not quote(Path(config["card"]), text, (CROSSVAL_START, CROSSVAL_END)):
        print(f"{config['card']} has no crossval markers: section not written there")
    return report



if __name__ == "__main__":
    main(sys.argv[1:])

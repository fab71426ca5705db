"""The gate's recipe cross-validated over the people, speakers, folds and recordings of the training and validation
splits (never test).

    python -m training.gate_crossval --run_dir=runs/reproduce --epochs=10        # 15-20 min on 2 threads
    python -m training.gate_crossval --run_dir=runs/reproduce --speed_copies=1.0 --report=reports/gate_cv_b.json
    python -m training.gate_crossval --run_dir=runs/reproduce --max_seconds=10 --baseline=reports/gate_crossval.json

Why: the validation split holds eight Coswara participants, one ESC-10 fold and a fifth of the speakers, and recipes
make a handful of mistakes on it, while the test split's new people and sneezes cost the same gates thirty. How well a
recipe carries to people and sounds it has not heard is not told by so few groups. Here every training and validation
group is held out once: ESC-10 fold k + 1 is held out in fold k; Coswara participants, Speech Commands speakers and
covid19-cough recordings are dealt to the folds in a seeded shuffle, data set by data set. Each fold repeats the
recipe of the run's gate (the training.gate config its sound_cnn.pt records; any of its settings can be overridden
here, as ``--speed_copies=1.0`` above) on the other folds, with the speed copies, telephone copies and mixtures made
anew from them, and scores its held-out real recordings and their telephone copies. Prints the out-of-fold shares of
every group and kind at the one threshold that serves the groups best (the same rule as training.gate's, so
optimistic, and alike for every recipe) and the cough-vs-rest AUC; writes them, with every held-out clip's cough
probability, to ``report``; with ``baseline``, also the paired AUC difference from the recipe that wrote it.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from coughkd.model import SOUND_TYPES
from training.lib.clips import ClipSet, features
from training.lib.configurator import config_keys, parse_overrides
from training.lib.gate_training import train_member
from training.lib.metrics import (
    choose_gate_threshold,
    gate_auc,
    gate_groups,
    gate_rates,
    paired_group_auc_difference,
)
from training.lib.sounds import LATER_SETTINGS, REAL, SoundClips, gate_probabilities, made_sounds, recorded_sounds
from training.models.students import GateEnsemble

# ---- config: plain values, override with --name=value (and any setting of the run's gate recipe) ------------------
run_dir = "runs/latest"
folds = 3  # ESC-10 holds folds 1-3 outside its test fold: one each
members = 1  # networks per fold (the shipped gate averages `members` of them; one keeps a run short)
report = "reports/gate_crossval.json"
baseline = ""  # another recipe's report, run on the same folds: the paired AUC difference (this recipe minus it)
# --------------------------------------------------------------------------------------------------------------------


def fold_of(sounds: SoundClips, folds: int, seed: int) -> np.ndarray:
    """(N,) the fold each real training or validation clip is held out in; -1 for the rest (generated clips train in
    every fold). ESC-10 by its own folds; the other data sets' groups dealt in turn from a seeded shuffle."""
    fold = np.full(len(sounds), -1)
    real = np.isin(sounds.split, ["train", "val"]) & np.isin(sounds.dataset, REAL)
    rng = np.random.default_rng(seed)
    for dataset in REAL:
        rows = np.flatnonzero(real & (sounds.dataset == dataset))
        if dataset == "esc10":
            fold[rows] = [(int(g.removeprefix("esc10:fold")) - 1) % folds for g in sounds.group[rows]]
            continue
        groups = sorted(set(sounds.group[rows].tolist()))
        dealt = {groups[j]: k % folds for k, j in enumerate(rng.permutation(len(groups)))}
        fold[rows] = [dealt[g] for g in sounds.group[rows]]
    return fold


LABELS = ("sound_type", "dataset", "kind", "channel", "group")  # what the report keeps of each held-out clip


def run_fold(base: SoundClips, fold: np.ndarray, k: int, config: dict) -> SimpleNamespace:
    """Train fold ``k``'s gate on every other fold (its held-out clips in the role of the validation split); returns
    its held-out real clips' LABELS and cough probabilities (``p_cough``), not their audio."""
    sounds = made_sounds(replace(base, split=np.where(fold == k, "val", "train")), config)
    feats = features(sounds)
    networks = [train_member(sounds, feats, {**config, "seed": config["seed"] + m})[0]
                for m in range(config["members"])]
    held = np.flatnonzero((sounds.split == "val") & np.isin(sounds.dataset, REAL))
    p_cough = gate_probabilities(GateEnsemble(networks).eval(), [feats[i] for i in held])[:, 0]
    return SimpleNamespace(p_cough=p_cough, fold=np.full(len(held), k),
                           **{name: getattr(sounds, name)[held] for name in LABELS})


def summary(held: SimpleNamespace) -> dict:
    """The out-of-fold shares per group at the threshold chosen on them, per kind, and the AUC."""
    p_cough = held.p_cough
    groups = gate_groups(held)
    threshold = choose_gate_threshold(p_cough, groups)
    rates = gate_rates(p_cough, groups, threshold)
    names = np.array([" / ".join((SOUND_TYPES[t], d, k)) for t, d, k in zip(held.sound_type, held.dataset, held.kind)])
    kinds = {name: (int((p_cough[names == name] >= threshold).sum()), int((names == name).sum()))
             for name in sorted(set(names.tolist()))}
    return {"threshold": threshold, "auc": gate_auc(p_cough, groups), "rates": rates,
            "wrong": sum(n - r for r, n in rates.values()), "accepted_per_kind": kinds}


def against(held: SimpleNamespace, report: Path) -> dict:
    """This recipe's out-of-fold AUC minus that of the recipe in ``report`` (the same held-out clips, in the same
    order, or an error), with a 95% CI from resampling whole groups, and how many clips each gets wrong."""
    other = json.loads(report.read_text())
    clips = other["clips"]
    same = len(clips) == len(held.p_cough) and all(
        (c["dataset"], c["kind"], c["channel"], c["group"], c["sound_type"]) == (d, k, ch, g, SOUND_TYPES[t])
        for c, d, k, ch, g, t in zip(clips, held.dataset, held.kind, held.channel, held.group, held.sound_type))
    if not same:
        raise ValueError(f"{report} holds other clips than this run: compare runs of the same folds and data")
    cough = held.sound_type == SOUND_TYPES.index("cough")
    point, low, high = paired_group_auc_difference(cough, held.p_cough, np.array([c["p_cough"] for c in clips]),
                                                   held.group)
    return {"baseline": str(report), "auc_difference": point, "ci": [low, high], "baseline_wrong": other["wrong"]}


def settings(argv: list[str]) -> dict:
    """This script's settings over the recipe of the run's gate (the training.gate config its checkpoint records),
    then the overrides: the recipe is cross-validated as it was trained, unless told otherwise."""
    own = {k: globals()[k] for k in config_keys(globals())}
    run = parse_overrides(own, [a for a in argv if a.startswith("--run_dir=")])["run_dir"]
    recipe = torch.load(Path(run) / "sound_cnn.pt", map_location="cpu", weights_only=False)["config"]
    return parse_overrides({**LATER_SETTINGS, **recipe, **own}, argv)


def main(argv: list[str]) -> dict:
    config = settings(argv)
    started = time.time()
    run = Path(config["run_dir"])
    base, _ = recorded_sounds(ClipSet.load(run / "clips.npz"), config)
    base = base.subset(np.isin(base.split, ["train", "val"]))
    fold = fold_of(base, config["folds"], config["seed"])
    parts = [run_fold(base, fold, k, config) for k in range(config["folds"])]
    held = SimpleNamespace(**{name: np.concatenate([getattr(part, name) for part in parts])
                              for name in ("p_cough", "fold", *LABELS)})
    result = summary(held)
    lines = [f"{name}: {right}/{n}" for name, (right, n) in result["rates"].items()]
    print(f"gate cross-validated over {config['folds']} folds of the training and validation groups "
          f"({len(held.p_cough)} held-out real clips), threshold {result['threshold']:.3f} chosen on them: "
          f"{result['wrong']} treated wrongly; cough-vs-rest AUC {result['auc']:.4f}\n  " + "\n  ".join(lines))
    print("accepted as cough, per kind:\n  " + "\n  ".join(f"{k}: {a}/{n}"
                                                        for k, (a, n) in result["accepted_per_kind"].items()))
    if config["baseline"]:
        result["paired"] = against(held, Path(config["baseline"]))
        paired = result["paired"]
        print(f"against {paired['baseline']} ({paired['baseline_wrong']} treated wrongly): AUC difference "
              f"{paired['auc_difference']:+.4f} [{paired['ci'][0]:+.4f}, {paired['ci'][1]:+.4f}] (groups resampled)")
    output = {**result, "command": "python -m training.gate_crossval " + " ".join(argv),
              "minutes": round((time.time() - started) / 60, 1),
              "clips": [{"dataset": str(d), "kind": str(k), "channel": str(c), "group": str(g), "fold": int(f),
                         "sound_type": SOUND_TYPES[t], "p_cough": round(float(p), 5)}
                        for d, k, c, g, f, t, p in zip(held.dataset, held.kind, held.channel, held.group, held.fold,
                                                       held.sound_type, held.p_cough)]}
    Path(config["report"]).parent.mkdir(parents=True, exist_ok=True)
    Path(config["report"]).write_text(json.dumps(output, indent=1))
    return output


if __name__ == "__main__":
    main(sys.argv[1:])

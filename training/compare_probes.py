"""Which teacher head? Cross-validated within-source AUC of the probe choices, on train + val only (never test).

    python -m training.compare_probes --run_dir=runs/reproduce      # after `python -m training.teacher`

For each feature set (the teacher's clip embedding, MFCC statistics, and the mean of both probes) and each way of
fitting (one probe for all sources, or one per source), repeated stratified 5-fold cross-validation over the
training and validation recordings. This is the evidence behind the teacher step's defaults; the numbers are
printed, not stored, because they describe a design choice, not the shipped model.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from training.lib.clips import features, load_run
from training.lib.configurator import configure
from training.lib.metrics import per_source_auc
from training.lib.probe import probe_inputs, probe_logits

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
folds = 5
repeats = 3
seed = 0
# --------------------------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    config = configure(globals(), argv)
    clips, cache = load_run(Path(config["run_dir"]))
    chosen = (clips.recording >= 0) & np.isin(clips.split, ["train", "val"])
    rows, part = np.flatnonzero(chosen), clips.subset(chosen)
    labels, sources = part.covid_label.astype(int), part.source.astype(str)
    members = probe_inputs(features(part), cache["embedding"][rows])
    strata = np.array([f"{s}/{y}" for s, y in zip(sources, labels)])
    results: dict[str, dict[str, float]] = {}
    for per_source in (False, True):
        fitted_on = sources if per_source else np.full(len(rows), "all")
        oof = {name: [] for name in (*members, "mean of both")}
        for repeat in range(config["repeats"]):
            scores = {name: np.zeros(len(rows)) for name in members}
            split = StratifiedKFold(config["folds"], shuffle=True, random_state=config["seed"] + repeat)
            for fit, held in split.split(rows, strata):
                fit_rows, held_rows = np.isin(np.arange(len(rows)), fit), np.isin(np.arange(len(rows)), held)
                for name, x in members.items():
                    scores[name][held_rows] = probe_logits(x, labels, fitted_on, fit_rows, held_rows, config["seed"])
            scores["mean of both"] = np.mean(list(scores.values()), axis=0)
            for name, s in scores.items():
                oof[name].append(per_source_auc(labels, s, sources))
        for name, runs in oof.items():
            key = f"{name}, {'per-source' if per_source else 'pooled'} probe"
            results[key] = {source: float(np.mean([r[source] for r in runs])) for source in runs[0]}
    width = max(map(len, results))
    print(f"{'teacher head':{width}}  " + "  ".join(f"{s:>11}" for s in next(iter(results.values()))))
    for key, by_source in results.items():
        print(f"{key:{width}}  " + "  ".join(f"{v:11.3f}" for v in by_source.values()))
    return results



if __name__ == "__main__":
    main(sys.argv[1:])

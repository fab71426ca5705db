"""Score a run's held-out test split with every model, through the shipped runtime, and write the report
(training.lib.metrics.evaluate_run: per-source and pooled AUCs with bootstrap CIs, paired differences, the ROC plot).

    python -m training.evaluate --model_dir=assets/model --run_dir=runs/latest --out=reports/eval
"""
from __future__ import annotations

import sys
from pathlib import Path

from training.lib.configurator import configure
from training.lib.data import COVID19_COUGH, load_covid19_cough
from training.lib.metrics import evaluate_run

# ---- config: plain values, override with --name=value -------------------------------------------------------------
model_dir = "assets/model"
run_dir = "runs/latest"
out = "reports/eval"
data_root = str(COVID19_COUGH)
cache_dir = ""  # decoded-waveform cache (see training.lib.data); "": none
n_boot = 2000
seed = 0
# --------------------------------------------------------------------------------------------------------------------


def run(*, model_dir: str = model_dir, run_dir: str = run_dir, out: str = out, data_root: str = data_root,
        cache_dir: str = cache_dir, n_boot: int = n_boot, seed: int = seed) -> dict[str, dict]:
    return evaluate_run(Path(model_dir), Path(run_dir), Path(out), load_covid19_cough(Path(data_root))[0],
                        n_boot=n_boot, seed=seed, cache_dir=Path(cache_dir) if cache_dir else None)


def main(argv: list[str]) -> dict[str, dict]:
    return run(**configure(globals(), argv))


if __name__ == "__main__":
    main(sys.argv[1:])

"""Per-recording test-split COVID-19 probabilities of a previously shipped model, scored by its own runtime, for
`python -m training.reproduce --previous_scores=...` (the card's "previous model" row and its paired differences).

Run it from a checkout of the release being replaced, beside this one (its runtime reads its own assets/model):

    git worktree add /tmp/previous 0098451 && cd /tmp/previous && \
        PYTHONPATH=. python /path/to/this/docs/previous_model_scores.py /path/to/this/reports/previous_test_scores.json

The test split is rebuilt exactly as `training.prepare` does (covid19-cough, deduplicated, split seed 0).
"""
import json
import sys
from pathlib import Path

import numpy as np

import coughkd

try:
    from training.lib.data import decode_all, load_covid19_cough, split
except ImportError:  # releases before training/lib/ (such as 0098451) kept the data code in training/data.py
    from training.data import decode_all, load_covid19_cough, split

recordings, _ = load_covid19_cough()
decoded, _ = decode_all(recordings, progress=False)
test = {rec.sha256 for rec in split([rec for rec, _ in decoded], seed=0)["test"]}
model = coughkd.load()
HERE = Path(__file__).resolve().parents[1]  # the checkout this script belongs to


def probability(waveform: np.ndarray) -> float:
    """The COVID-19 probability of a recording as the card measures students: releases with the sound-type gate
    score every recording, refused or not (`scores`); the ones before it had only `predict`."""
    if hasattr(model, "scores"):
        from coughkd.predict import sigmoid  # the release's own, as training.lib.metrics.score_student reads it

        return float(sigmoid(model.scores(waveform, sample_rate=16000).covid_logit))
    return model.predict(waveform, sample_rate=16000).covid_probability


def shown(arg: str) -> str:
    """An argument as the card shows it: relative to HERE, not to this machine."""
    path = Path(arg).resolve()
    return str(path.relative_to(HERE)) if path.is_relative_to(HERE) else arg


scores = {rec.sha256: probability(w) for rec, w in decoded if rec.sha256 in test}
command = "PYTHONPATH=. python " + " ".join(shown(a) for a in sys.argv)
Path(sys.argv[1]).write_text(json.dumps({"model": model.model_id, "command": command, "scores": scores}, indent=1))
print(model.model_id, len(scores))

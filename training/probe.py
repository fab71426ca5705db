"""Linear probes: the teacher's COVID-19 head on fixed clip features (a pretrained embedding, MFCC statistics).

Why a probe by default: fine-tuning mn04 on 1 s windows of the ~600 training recordings reached a validation
within-source AUC of 0.57 (the pipeline before this one), while per-source logistic regression on the frozen
AudioSet embedding of the whole clip scored 0.68 in 5-fold cross-validation on train+val
(`python -m training.compare_probes`), and is fitted in seconds.

One probe per source: the teacher may use the recording channel (privileged information the student never gets),
so it does not have to spend capacity telling phone calls from Telegram notes. Labels are balanced within each
source; the regularisation strength is chosen by an inner cross-validation on the training clips only.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

C_GRID = (0.001, 0.01, 0.1)


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> GridSearchCV | None:
    """Standardise -> class-balanced logistic regression, C by 5-fold ROC AUC; None when a class is too rare."""
    folds = min(5, int(np.bincount(y, minlength=2).min()))
    if folds < 2:
        return None
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000)),
        {"logisticregression__C": list(C_GRID)},
        scoring="roc_auc",
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
    )
    return search.fit(x, y)


def probe_logits(x: np.ndarray, labels: np.ndarray, sources: np.ndarray, fit_rows: np.ndarray,
                 score_rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Logits for ``score_rows`` from per-source probes fitted on ``fit_rows`` (boolean masks over x's rows).

    A source with too few labelled recordings of either class to fit gets logit 0 (no opinion)."""
    out = np.zeros(len(x), dtype=np.float32)
    for source in np.unique(sources[score_rows]):
        fit = fit_rows & (sources == source)
        score = score_rows & (sources == source)
        model = _fit(x[fit], labels[fit].astype(int), seed)
        if model is not None:
            out[score] = model.decision_function(x[score])
    return out[score_rows]


def cross_fitted_logits(x: np.ndarray, labels: np.ndarray, sources: np.ndarray, train: np.ndarray,
                        score: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(len(x),) logits: training rows scored by probes fitted on the other folds, ``score`` rows (e.g. val, test)
    by probes fitted on all training rows. Rows in neither get 0.

    Cross-fitting keeps the teacher honest on its own training data: a probe scores every training clip as if it
    had never seen it, so the student is not taught the labels the probe memorised."""
    logits = np.zeros(len(x), dtype=np.float32)
    train_rows = np.flatnonzero(train)
    strata = np.array([f"{s}/{y}" for s, y in zip(sources[train_rows], labels[train_rows])])
    n_folds = min(folds, int(np.unique(strata, return_counts=True)[1].min()))
    if n_folds >= 2:
        for fit, held in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(train_rows, strata):
            fit_rows = np.zeros(len(x), dtype=bool)
            fit_rows[train_rows[fit]] = True
            held_rows = np.zeros(len(x), dtype=bool)
            held_rows[train_rows[held]] = True
            logits[held_rows] = probe_logits(x, labels, sources, fit_rows, held_rows, seed)
    logits[score] = probe_logits(x, labels, sources, train, score, seed)
    return logits

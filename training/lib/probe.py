"""Linear probes: the teacher's COVID-19 head on fixed clip features (a pretrained embedding, MFCC statistics).

Why a probe by default: it beat fine-tuning mn04 on the few hundred training recordings, and is fitted in seconds
(docs/experiments.md).

One probe per source: the teacher may use the recording channel (privileged information the student never gets),
so it does not have to spend capacity telling phone calls from Telegram notes. Labels are balanced within each
source; the regularisation strength is chosen by an inner cross-validation on the training clips only.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.lib.clips import FRONT_END, ClipFeatures, ClipSet
from training.models.students import MfccStatistics

C_GRID = (0.001, 0.01, 0.1)


def _fit(x: np.ndarray, y: np.ndarray, seed: int, grid: Sequence[float] = C_GRID) -> GridSearchCV | None:
    """Standardise -> class-balanced logistic regression, C from ``grid`` by 5-fold ROC AUC; None when a class is too
    rare."""
    folds = min(5, int(np.bincount(y, minlength=2).min()))
    if folds < 2:
        return None
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000)),
        {"logisticregression__C": list(grid)},
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


def probe_inputs(feats: list[ClipFeatures], embedding: np.ndarray, mfcc_probe: bool = True) -> dict[str, np.ndarray]:
    """What the COVID-19 probes read per clip: the teacher's embedding and, optionally, MFCC statistics of the
    band-limited clip (training.compare_probes weighs the same inputs)."""
    inputs = {"embedding": embedding}
    if mfcc_probe:
        inputs["mfcc"] = mfcc_statistics([f.waveform for f in feats])
    return inputs


def covid_logits(clips: ClipSet, feats: list[ClipFeatures], embedding: np.ndarray, config: dict) -> np.ndarray:
    """The teacher's COVID-19 logit per clip: the mean of its probes, cross-fitted on the training clips."""
    labelled = clips.recording >= 0
    train = labelled & (clips.split == "train")
    logits = [cross_fitted_logits(x, clips.covid_label, clips.source, train, labelled & ~train, seed=config["seed"])
              for x in probe_inputs(feats, embedding, config["mfcc_probe"]).values()]
    return np.mean(logits, axis=0).astype(np.float32)


def mfcc_statistics(windows_or_waveforms: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(n, 80) features: mean and std over time of 20 MFCCs and of their deltas, computed by students.MfccStatistics,
    the module the student's own read-out uses.

    MFCCs are the orthonormal DCT-II of the model's own front end (training.models.frontend), so the baseline sees
    the same band-limited (0-4 kHz) input as the student and cannot read the channel from bandwidth either (a
    waveform that is band-limited already is low-passed again, which changes only the 3.6-4 kHz transition).
    Accepts a 2-D array of equal-length windows or a sequence of 1-D waveforms of any length (16 kHz).
    """
    if isinstance(windows_or_waveforms, np.ndarray) and windows_or_waveforms.ndim == 1:
        raise ValueError("expected a batch: a 2-D array or a sequence of 1-D waveforms")
    statistics = MfccStatistics()
    with torch.no_grad():
        rows = [statistics(FRONT_END(torch.from_numpy(np.asarray(w, dtype=np.float32)[None]))[0])[0].numpy()
                for w in windows_or_waveforms]
    return np.stack(rows).astype(np.float32)


class MfccBaseline:
    """The classic baseline the student must beat: MFCC statistics -> standardise -> logistic regression.

    Class weights are balanced because positive rates differ widely between sources; C is picked by a
    5-fold stratified CV on the training recordings only (scored by ROC AUC).
    """

    C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.model: GridSearchCV | None = None

    def fit(self, waveforms: Sequence[np.ndarray], labels: Sequence[int]) -> MfccBaseline:
        self.model = _fit(mfcc_statistics(waveforms), np.asarray(labels).astype(int), self.seed, self.C_GRID)
        if self.model is None:
            raise ValueError("the baseline needs at least 2 recordings of each class")
        return self

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """(n,) probability of the positive class (not sklearn's (n, 2): only P(covid) is ever used)."""
        if self.model is None:
            raise RuntimeError("call fit() first")
        return self.model.predict_proba(mfcc_statistics(waveforms))[:, 1]

    @property
    def best_c(self) -> float:
        return float(self.model.best_params_["logisticregression__C"])

"""The unit of training and scoring: 1 s windows centred on detected coughs, as the runtime sees them.

A run directory holds ``windows.npz`` (from ``prepare``) and ``teacher_cache.npz`` (from ``teacher``); every later
step reads them through this module. Clip-level scores aggregate window logits exactly as coughkd does at run time.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from coughkd.predict import aggregate, sigmoid

NO_LABEL = -1  # covid_label of generated non-cough windows


@dataclass
class WindowSet:
    waveforms: np.ndarray  # (N, window samples) float32, 16 kHz
    recording: np.ndarray  # (N,) index into recordings.json, -1 for generated non-cough audio
    split: np.ndarray  # (N,) "train" | "val" | "test"
    covid_label: np.ndarray  # (N,) 1 / 0, NO_LABEL for generated audio
    source: np.ndarray  # (N,) recording source, or "generated:<kind>"
    is_cough: np.ndarray  # (N,) 1 for dataset coughs, 0 for generated non-cough audio

    def __len__(self) -> int:
        return len(self.recording)

    def subset(self, mask: np.ndarray) -> "WindowSet":
        return WindowSet(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    def save(self, path: Path) -> None:
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> "WindowSet":
        with np.load(path) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass
class ClipScores:
    recording: np.ndarray  # index into recordings.json
    label: np.ndarray
    probability: np.ndarray
    source: np.ndarray


def clip_scores(windows: WindowSet, covid_logits: np.ndarray) -> ClipScores:
    """Per-recording COVID-19 probabilities from per-window logits, aggregated as coughkd.predict does.

    Generated non-cough windows are left out: they carry no COVID-19 label.
    """
    indices = np.unique(windows.recording[windows.recording >= 0])
    labels, probabilities, sources = [], [], []
    for index in indices:
        rows = windows.recording == index
        labels.append(int(windows.covid_label[rows][0]))
        probabilities.append(float(sigmoid(aggregate(covid_logits[rows]))))
        sources.append(str(windows.source[rows][0]))
    return ClipScores(indices, np.array(labels), np.array(probabilities), np.array(sources))


def load_run(run_dir: Path) -> tuple[WindowSet, dict[str, np.ndarray]]:
    """The windows and the teacher's cached outputs for them (row-aligned)."""
    windows = WindowSet.load(run_dir / "windows.npz")
    with np.load(run_dir / "teacher_cache.npz") as cache:
        teacher = {k: cache[k] for k in cache.files}
    if len(teacher["covid_logit"]) != len(windows):
        raise ValueError(f"{run_dir}: teacher cache has {len(teacher['covid_logit'])} rows for {len(windows)} windows; "
                         "rerun `python -m training.teacher`")
    return windows, teacher

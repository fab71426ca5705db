"""The unit of training and scoring: whole recordings, seen through the model's own front end.

A run directory holds ``clips.npz`` (from ``prepare``) and ``teacher_cache.npz`` (from ``teacher``); every later
step reads them through this module. A clip's features come from training.models.frontend.FrontEnd, the module the
exported graph begins with, and its events from coughkd.events on that module's frame energies, as at run time, so
the student is trained on exactly what it is given.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Self

import numpy as np
import torch
from tqdm import tqdm

from coughkd.audio import SAMPLE_RATE
from coughkd.events import Event, detect_events, event_centres
from coughkd.features import HOP_LENGTH, WINDOW_FRAMES
from coughkd.predict import sigmoid
from training.models.frontend import FrontEnd

NO_LABEL = -1  # covid_label of generated non-cough audio


@dataclass
class PackedClips:
    """Variable-length 16 kHz waveforms end to end in one float32 array, with per-clip fields that subclasses add
    (every dataclass field after ``offsets`` is one value per clip)."""

    audio: np.ndarray  # every clip's waveform, end to end
    offsets: np.ndarray  # (N + 1,) clip i is audio[offsets[i]:offsets[i + 1]]

    @classmethod
    def per_clip(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))[2:]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def waveform(self, i: int) -> np.ndarray:
        return self.audio[self.offsets[i]:self.offsets[i + 1]]

    def subset(self, mask: np.ndarray) -> Self:
        chosen = np.flatnonzero(mask)
        return self.build([self.waveform(i) for i in chosen], **{k: getattr(self, k)[chosen] for k in self.per_clip()})

    @classmethod
    def build(cls, waveforms: list[np.ndarray], **per_clip: np.ndarray) -> Self:
        lengths = [len(w) for w in waveforms]
        audio = np.concatenate(waveforms, dtype=np.float32) if waveforms else np.zeros(0, np.float32)
        return cls(audio, np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
                   **{k: np.asarray(per_clip[k]) for k in cls.per_clip()})

    @classmethod
    def concatenate(cls, parts: list[Self]) -> Self:
        return cls.build([p.waveform(i) for p in parts for i in range(len(p))],
                         **{k: np.concatenate([getattr(p, k) for p in parts]) for k in cls.per_clip()})

    def save(self, path: Path) -> None:
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> Self:
        with np.load(path) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass
class ClipSet(PackedClips):
    """The COVID-19 student's clips: the data set's recordings and the generated non-cough audio."""

    recording: np.ndarray  # (N,) index into recordings.json, -1 for generated non-cough audio
    split: np.ndarray  # (N,) "train" | "val" | "test"
    covid_label: np.ndarray  # (N,) 1 / 0, NO_LABEL for generated audio
    source: np.ndarray  # (N,) recording source, or "generated:<kind>"
    is_cough: np.ndarray  # (N,) 1 for dataset coughs, 0 for generated non-cough audio


def centred_slices(x: np.ndarray, centres: np.ndarray, width: int) -> np.ndarray:
    """(n, ..., min(width, length)) slices of x's last axis centred on each centre and kept inside x.

    Inside, not zero padded: a slice then holds only what the whole-clip input holds, so the student sees the same
    kind of input for an event as for a clip."""
    if len(centres) == 0:
        return np.zeros((0, *x.shape[:-1], min(width, x.shape[-1])), dtype=x.dtype)
    return np.stack([centred_slice(x, int(c), width) for c in centres])


def centred_slice(x: np.ndarray, centre: int, width: int) -> np.ndarray:
    """One of `centred_slices`, as a view of x rather than a copy."""
    length = x.shape[-1]
    width = min(width, length)
    start = min(max(centre - width // 2, 0), length - width)
    return x[..., start:start + width]


@dataclass
class ClipFeatures:
    """What the networks are given for one recording, computed once."""

    waveform: np.ndarray  # band-limited 16 kHz waveform (what the teacher and the waveform student hear)
    events: list[Event]
    centres: np.ndarray  # (n_events,) sample at the centre of each event's window
    log_mel: np.ndarray  # (N_MELS, frames) of the whole clip

    @property
    def windows(self) -> np.ndarray:
        """(n_events, N_MELS, WINDOW_FRAMES or fewer for clips under 1 s) log-mel slices around the events."""
        return centred_slices(self.log_mel, self.centres // HOP_LENGTH, WINDOW_FRAMES)


FRONT_END = FrontEnd().eval()


@torch.no_grad()
def clip_features(waveform: np.ndarray) -> ClipFeatures:
    """The front end of a 16 kHz recording (band limit, log-mel, frame energy), and the events on its energies."""
    x = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)[None])
    log_mel, energy = (t[0].numpy() for t in FRONT_END(x))
    events = detect_events(energy, x.shape[-1] / SAMPLE_RATE)
    return ClipFeatures(FRONT_END.band_limited(x)[0].numpy(), events, event_centres(energy, events), log_mel)


def features(clips: PackedClips, progress: bool = True) -> list[ClipFeatures]:
    """The features of every clip: computed once per step."""
    return [clip_features(clips.waveform(i))
            for i in tqdm(range(len(clips)), desc="clip features", unit="clip", disable=not progress)]


@dataclass
class ClipScores:
    recording: np.ndarray  # index into recordings.json
    label: np.ndarray
    probability: np.ndarray
    source: np.ndarray


def clip_scores(clips: ClipSet, covid_logits: np.ndarray) -> ClipScores:
    """Per-recording COVID-19 probabilities; generated non-cough clips are left out (they carry no label)."""
    labelled = clips.recording >= 0
    return ClipScores(clips.recording[labelled], clips.covid_label[labelled].astype(int),
                      np.asarray(sigmoid(np.asarray(covid_logits)[labelled]), dtype=np.float64),
                      clips.source[labelled].astype(str))


def load_run(run_dir: Path) -> tuple[ClipSet, dict[str, np.ndarray]]:
    """The clips and the teacher's cached outputs for them (row-aligned)."""
    clips = ClipSet.load(run_dir / "clips.npz")
    with np.load(run_dir / "teacher_cache.npz") as cache:
        teacher = {k: cache[k] for k in cache.files}
    if len(teacher["covid_logit"]) != len(clips):
        raise ValueError(f"{run_dir}: teacher cache has {len(teacher['covid_logit'])} rows for {len(clips)} clips; "
                         "rerun `python -m training.teacher`")
    return clips, teacher

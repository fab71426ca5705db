"""The whole pipeline, recording in, decision out:
load_audio -> telephone_band -> log_mel of the whole clip -> model, plus detect_events -> the model on 1 s slices
of that log-mel around each event (per-event evidence and the cough/not-cough decision)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, Audio, load_audio
from .events import WINDOW_SECONDS, Event, detect_events, event_centres
from .features import HOP_LENGTH, log_mel, telephone_band
from .model import StudentRuntime

AudioSource = str | Path | np.ndarray | tuple[int, np.ndarray] | Audio
MAX_CLIP_SECONDS = 30.0  # longer recordings are scored in chunks of this length and their logits averaged
WINDOW_FRAMES = 1 + int(WINDOW_SECONDS * SAMPLE_RATE) // HOP_LENGTH


@dataclass(frozen=True)
class EventScore:
    """One detected event and the student's scores for the window around it."""

    start_s: float
    end_s: float
    covid_probability: float
    cough_probability: float


@dataclass
class Prediction:
    """A clip-level decision with the per-event evidence behind it."""

    covid_probability: float
    cough_probability: float
    is_cough: bool
    covid_positive: bool
    threshold: float
    events: list[EventScore]
    latency_ms: float
    model: str
    duration_s: float
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; events as [start_s, end_s, covid_probability] as the CLI contract says."""
        return {
            "covid_probability": self.covid_probability,
            "cough_probability": self.cough_probability,
            "is_cough": self.is_cough,
            "covid_positive": self.covid_positive,
            "threshold": self.threshold,
            "events": [[e.start_s, e.end_s, e.covid_probability] for e in self.events],
            "latency_ms": self.latency_ms,
            "model": self.model,
            "duration_s": self.duration_s,
            "warnings": list(self.warnings),
        }


def aggregate(logits: np.ndarray) -> float:
    """One logit from several (the chunks of a long clip): their mean."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.size == 0:
        raise ValueError("cannot aggregate zero logits")
    return float(logits.mean())


def sigmoid(logits: np.ndarray | float) -> np.ndarray | float:
    """exp(-log(1 + e^-x)): no overflow warning for large negative logits."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(logits, dtype=np.float64)))


def centred_slices(x: np.ndarray, centres: np.ndarray, width: int) -> np.ndarray:
    """(n, ..., min(width, length)) slices of x's last axis centred on each centre and kept inside x.

    Inside, not zero padded: a slice then holds only what the whole-clip input holds, so the student sees the same
    kind of input for an event as for a clip."""
    length = x.shape[-1]
    width = min(width, length)
    starts = np.clip(np.asarray(centres, dtype=np.int64) - width // 2, 0, length - width)
    if len(starts) == 0:
        return np.zeros((0, *x.shape[:-1], width), dtype=x.dtype)
    return np.stack([x[..., s:s + width] for s in starts])


def chunks(x: np.ndarray, seconds: float = MAX_CLIP_SECONDS, rate: float = SAMPLE_RATE / HOP_LENGTH) -> list[np.ndarray]:
    """x's last axis (frames by default) in pieces of `seconds`; a tail under half a piece joins the piece before
    it, so no piece is too short to score and none is longer than 1.5 times `seconds`."""
    size = int(seconds * rate)
    bounds = list(range(0, x.shape[-1], size))[1:]
    if bounds and x.shape[-1] - bounds[-1] < size // 2:
        bounds.pop()
    return np.split(x, bounds, axis=-1)


@dataclass
class ClipFeatures:
    """What the student is given for one recording, computed once: training and run time share this function."""

    waveform: np.ndarray  # band-limited 16 kHz waveform
    events: list[Event]
    centres: np.ndarray  # (n_events,) sample at the centre of each event's window
    log_mel: np.ndarray  # (N_MELS, frames) of the whole clip

    @property
    def windows(self) -> np.ndarray:
        """(n_events, N_MELS, WINDOW_FRAMES or fewer for clips under 1 s) log-mel slices around the events."""
        return centred_slices(self.log_mel, self.centres // HOP_LENGTH, WINDOW_FRAMES)


def clip_features(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> ClipFeatures:
    """Band-limit, find the events, and take one log-mel of the whole clip (event windows are slices of it)."""
    waveform = telephone_band(waveform, sample_rate)
    events = detect_events(waveform, sample_rate)
    return ClipFeatures(waveform, events, event_centres(waveform, events, sample_rate), log_mel(waveform))


def predict(runtime: StudentRuntime, source: AudioSource, sample_rate: int | None = None) -> Prediction:
    """Score a recording; raises AudioError for unusable input.

    The COVID-19 score comes from the whole clip, as the student was trained and the threshold chosen; each event
    also gets its own score, for display. A clip is a cough if its most cough-like event is, so speech around a
    cough does not hide it.
    """
    started = time.perf_counter()
    audio = source if isinstance(source, Audio) else load_audio(source, sample_rate)
    features = clip_features(audio.waveform, audio.sample_rate)
    covid_probability = float(sigmoid(aggregate([runtime.run(part[None])[0][0] for part in chunks(features.log_mel)])))
    event_covid, event_cough = runtime.run(features.windows)
    covid_p, cough_p = sigmoid(event_covid), sigmoid(event_cough)
    cough_probability = float(cough_p.max())
    threshold, cough_threshold = runtime.thresholds["covid"], runtime.thresholds["cough"]
    scores = [EventScore(e.start_s, e.end_s, float(c), float(k)) for e, c, k in zip(features.events, covid_p, cough_p)]
    return Prediction(
        covid_probability=covid_probability,
        cough_probability=cough_probability,
        is_cough=cough_probability >= cough_threshold,
        covid_positive=covid_probability >= threshold,
        threshold=threshold,
        events=scores,
        latency_ms=round((time.perf_counter() - started) * 1000.0, 2),
        model=runtime.model_id,
        duration_s=audio.duration_s,
        warnings=list(audio.warnings),
    )


class CoughModel:
    """A loaded model with a `predict` method; build it with `coughkd.load`."""

    def __init__(self, runtime: StudentRuntime) -> None:
        self.runtime = runtime

    @property
    def model_id(self) -> str:
        return self.runtime.model_id

    @property
    def manifest(self) -> dict[str, Any]:
        return self.runtime.manifest

    def predict(self, audio: AudioSource, sample_rate: int | None = None) -> Prediction:
        return predict(self.runtime, audio, sample_rate)

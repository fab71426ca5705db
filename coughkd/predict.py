"""The whole pipeline, recording in, decision out:
load_audio -> telephone_band -> detect_events -> event_windows -> log_mel -> model."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, Audio, load_audio
from .events import Event, detect_events, event_windows
from .features import log_mel, telephone_band
from .model import StudentRuntime

AudioSource = str | Path | np.ndarray | tuple[int, np.ndarray] | Audio


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


def aggregate(event_logits: np.ndarray) -> float:
    """A clip's logit from its events' logits: the mean. Training's evaluation uses this same function."""
    logits = np.asarray(event_logits, dtype=np.float64)
    if logits.size == 0:
        raise ValueError("cannot aggregate zero events")
    return float(logits.mean())


def sigmoid(logits: np.ndarray | float) -> np.ndarray | float:
    """exp(-log(1 + e^-x)): no overflow warning for large negative logits."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(logits, dtype=np.float64)))


def cough_windows(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[list[Event], np.ndarray]:
    """The events of a 16 kHz recording and the 1 s windows the student scores: training builds its data with
    this same function, so the model is trained on exactly what it is given at run time."""
    waveform = telephone_band(waveform, sample_rate)
    events = detect_events(waveform, sample_rate)
    return events, event_windows(waveform, events, sample_rate)


def predict(runtime: StudentRuntime, source: AudioSource, sample_rate: int | None = None) -> Prediction:
    """Score a recording; raises AudioError for unusable input.

    The COVID-19 score aggregates every event's logit, exactly as training chose the threshold; a clip is a cough
    if its most cough-like event is, so speech around a cough does not hide it.
    """
    started = time.perf_counter()
    audio = source if isinstance(source, Audio) else load_audio(source, sample_rate)
    events, windows = cough_windows(audio.waveform, audio.sample_rate)
    features = log_mel(windows)
    covid_logits, cough_logits = runtime.run(features)
    covid_p, cough_p = sigmoid(covid_logits), sigmoid(cough_logits)
    covid_probability = float(sigmoid(aggregate(covid_logits)))
    cough_probability = float(cough_p.max())
    threshold, cough_threshold = runtime.thresholds["covid"], runtime.thresholds["cough"]
    scores = [EventScore(e.start_s, e.end_s, float(c), float(k)) for e, c, k in zip(events, covid_p, cough_p)]
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

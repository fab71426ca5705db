"""The whole pipeline, recording in, decision out:
load_audio (decode, mono, 16 kHz) -> one call of the network on the waveform (its graph band-limits it, takes the
log-mel and gives the COVID-19 logit and sound-type logits of the clip, the same for every window position, and the
frame energies) -> detect_events on those energies -> each event's sound type and score read from the window
position around it.

The sound-type gate decides first: a recording that does not sound like a cough gets no COVID-19 score at all. One
that does is scored whole, non-cough parts included, as the student was trained (training.crossval measures the
alternative of cutting them out first).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, Audio, load_audio
from .events import Event, detect_events, event_centres
from .features import chunks
from .model import SOUND_TYPES, StudentRuntime

AudioSource = str | Path | np.ndarray | tuple[int, np.ndarray] | Audio
# The network: (1, samples) 16 kHz waveform -> coughkd.model.OUTPUTS by name.
Network = Callable[[np.ndarray], dict[str, np.ndarray]]
COUGH = SOUND_TYPES.index("cough")


@dataclass(frozen=True)
class EventScore:
    """One detected event: what it sounds like and, for a cough, the student's COVID-19 score of its window."""

    start_s: float
    end_s: float
    sound_type: str
    cough_probability: float
    covid_probability: float | None  # None unless the event is a cough


@dataclass
class Prediction:
    """A clip-level decision with the per-event evidence behind it.

    `covid_probability` and `covid_positive` are None whenever `is_cough` is False: the score means nothing for
    audio that is not a cough. `latency_ms` is the time spent inside `predict`, from the input as given (decoding a
    file included) to the decision."""

    covid_probability: float | None
    covid_positive: bool | None
    cough_probability: float
    is_cough: bool
    sound_type: str
    sound_probabilities: dict[str, float]
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
            "covid_positive": self.covid_positive,
            "cough_probability": self.cough_probability,
            "is_cough": self.is_cough,
            "sound_type": self.sound_type,
            "sound_probabilities": dict(self.sound_probabilities),
            "threshold": self.threshold,
            "events": [[e.start_s, e.end_s, e.covid_probability] for e in self.events],
            "latency_ms": self.latency_ms,
            "model": self.model,
            "duration_s": self.duration_s,
            "warnings": list(self.warnings),
        }


def aggregate(logits: np.ndarray | list[float]) -> float:
    """One logit from several (the chunks of a long clip): their mean."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.size == 0:
        raise ValueError("cannot aggregate zero logits")
    return float(logits.mean())


def sigmoid(logits: np.ndarray | float) -> np.ndarray | float:
    """exp(-log(1 + e^-x)): no overflow warning for large negative logits."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(logits, dtype=np.float64)))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, in float64."""
    x = np.asarray(logits, dtype=np.float64)
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return x / x.sum(axis=-1, keepdims=True)


def sound_type(probabilities: np.ndarray, cough_threshold: float) -> str:
    """"cough" once the cough probability reaches the gate's threshold, else the likeliest of the other types: the
    threshold was chosen on validation recordings, the argmax was not."""
    if probabilities[COUGH] >= cough_threshold:
        return "cough"
    others = [k for k in range(len(SOUND_TYPES)) if k != COUGH]
    return SOUND_TYPES[max(others, key=lambda k: probabilities[k])]


@dataclass
class Scores:
    """Everything the network says of one recording, before any decision is worded (training scores with it too)."""

    covid_logit: float  # of the whole recording (30 s pieces averaged)
    sound_probabilities: np.ndarray  # (len(SOUND_TYPES),) of the recording's most cough-like 30 s piece
    events: list[Event]
    event_types: list[str]
    event_cough: np.ndarray  # (n_events,) cough probability of each event's window
    event_covid: np.ndarray  # (n_events,) COVID-19 logit of each event's window


def score(network: Network, waveform: np.ndarray, window: tuple[int, int], cough_threshold: float) -> Scores:
    """The COVID-19 logit and sound type of the whole clip, its events, and the sound type of each event's window:
    one network call per 30 s piece. `window`: (samples, hop_samples) of the network's window positions.

    An event's window is the position whose window is centred nearest the event's centre, inside its piece; a
    piece shorter than one window has a single window, itself (its clip-level outputs)."""
    width, hop = window
    pieces = chunks(waveform)
    outputs = [network(piece[None]) for piece in pieces]
    probabilities = [softmax(out["sound_logits"].reshape(-1)) for out in outputs]
    clip = max(probabilities, key=lambda p: p[COUGH])
    energy = np.concatenate([out["energy_db"].reshape(-1) for out in outputs])
    events = detect_events(energy, len(waveform) / SAMPLE_RATE)
    starts = np.cumsum([0] + [len(p) for p in pieces])
    centres = event_centres(energy, events)
    piece_of = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(pieces) - 1)
    covid, sound = np.zeros(len(events)), np.zeros((len(events), len(SOUND_TYPES)))
    for i in np.unique(piece_of).tolist():  # the pieces that hold an event, each read once for all its events
        rows, out = piece_of == i, outputs[i]
        positions = out["window_covid_logits"].shape[-1]
        last = (len(pieces[i]) - width) // hop
        if last < 0 or positions == 0:
            covid[rows], sound[rows] = out["covid_logit"].reshape(-1)[0], out["sound_logits"].reshape(-1)
            continue
        p = np.clip(np.rint((centres[rows] - starts[i] - width / 2) / hop), 0, min(last, positions - 1)).astype(int)
        covid[rows], sound[rows] = out["window_covid_logits"][0, p], out["window_sound_logits"][0][:, p].T
    event_probabilities = softmax(sound) if len(events) else np.zeros((0, len(SOUND_TYPES)))
    types = [sound_type(p, cough_threshold) for p in event_probabilities]
    return Scores(aggregate([out["covid_logit"].reshape(-1)[0] for out in outputs]), clip, events, types,
                  event_probabilities[:, COUGH], covid)


def predict(runtime: StudentRuntime, source: AudioSource, sample_rate: int | None = None) -> Prediction:
    """Score a recording; raises AudioError for unusable input.

    The gate reads the whole clip, so a recording is a cough if any of it sounds like one (the network pools over
    time); the COVID-19 score then comes from the whole clip, as the student was trained and the threshold chosen;
    each cough event also gets its own score, for display.
    """
    started = time.perf_counter()
    audio = source if isinstance(source, Audio) else load_audio(source, sample_rate)
    threshold, cough_threshold = runtime.thresholds["covid"], runtime.thresholds["cough"]
    scores = score(runtime.run, audio.waveform, runtime.window, cough_threshold)
    kind = sound_type(scores.sound_probabilities, cough_threshold)
    is_cough = kind == "cough"
    covid_probability = float(sigmoid(scores.covid_logit)) if is_cough else None
    event_covid = sigmoid(scores.event_covid).tolist()  # one call for all events: numpy is slow on scalars
    events = [EventScore(e.start_s, e.end_s, t, k, c if is_cough and t == "cough" else None)
              for e, t, k, c in zip(scores.events, scores.event_types, scores.event_cough.tolist(), event_covid)]
    return Prediction(
        covid_probability=covid_probability,
        covid_positive=None if covid_probability is None else covid_probability >= threshold,
        cough_probability=float(scores.sound_probabilities[COUGH]),
        is_cough=is_cough,
        sound_type=kind,
        sound_probabilities={t: float(p) for t, p in zip(SOUND_TYPES, scores.sound_probabilities)},
        threshold=threshold,
        events=events,
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

    def scores(self, audio: AudioSource, sample_rate: int | None = None) -> Scores:
        """The network's raw scores of a recording, before the gate's decision is worded (for evaluation: a COVID-19
        logit exists even where the gate says "not a cough")."""
        audio = audio if isinstance(audio, Audio) else load_audio(audio, sample_rate)
        return score(self.runtime.run, audio.waveform, self.runtime.window, self.runtime.thresholds["cough"])

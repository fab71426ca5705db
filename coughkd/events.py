"""Find the coughs in a recording and where the window that shows each one is centred.

Energy-based on purpose: it is cheap and needs no model. It reads frame energies in dB on a fixed grid (frame i
starts at sample i * HOP_SECONDS, FRAME_SECONDS long): the network's graph computes them on the telephone band
(training.models.frontend), so they behave the same on 8 kHz and 48 kHz recordings; `frame_energy_db` computes the
same on a numpy waveform (the app's quality checks, tests).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE

WINDOW_SECONDS = 1.0
FRAME_SECONDS = 0.03
HOP_SECONDS = 0.01
FLOOR_PERCENTILE = 10.0
MIN_RANGE_DB = 10.0
HIGH_FRACTION = 0.5
LOW_FRACTION = 0.25
MERGE_GAP_SECONDS = 0.1
MIN_EVENT_SECONDS = 0.05
ENERGY_FLOOR = 1e-12  # frame power floor before dB (-120 dB)


@dataclass(frozen=True)
class Event:
    """A stretch of the recording that stands out from its noise floor, in seconds from the start."""

    start_s: float
    end_s: float


def frame_energy_db(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mean power in dB of FRAME_SECONDS frames every HOP_SECONDS; frame i starts at sample i * hop."""
    x = np.asarray(waveform, dtype=np.float64)
    frame, hop = _frame_hop(sample_rate)
    if x.size < frame:
        x = np.pad(x, (0, frame - x.size))
    cumulative = np.concatenate(([0.0], np.cumsum(np.square(x))))
    starts = np.arange(0, x.size - frame + 1, hop)
    power = (cumulative[starts + frame] - cumulative[starts]) / frame
    return 10.0 * np.log10(np.maximum(power, ENERGY_FLOOR))


def _energy_events(energy: np.ndarray, duration: float, sample_rate: int) -> list[Event]:
    """Events found by hysteresis on frame energy; empty when nothing stands out (e.g. steady noise)."""
    floor = _percentile(energy, FLOOR_PERCENTILE)
    spread = energy.max() - floor
    if spread < MIN_RANGE_DB:
        return []
    high, low = floor + HIGH_FRACTION * spread, floor + LOW_FRACTION * spread
    # Runs of frames above the low threshold that reach the high one: hysteresis keeps a cough's quiet tail.
    above = np.concatenate(([False], energy > low, [False]))
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))  # starts and ends of the runs, alternating
    # Each run's peak in one call (-inf past the end, so the last run's end is a valid index).
    peaks = np.maximum.reduceat(np.append(energy, -np.inf), edges)[::2]
    bounds = edges.reshape(-1, 2)[peaks > high].tolist()  # Python ints: the loop below is scalar
    frame, hop = _frame_hop(sample_rate)
    spans = []
    for a, b in bounds:
        start = (a * hop + frame / 2 - hop / 2) / sample_rate
        end = min(((b - 1) * hop + frame / 2 + hop / 2) / sample_rate, duration)
        if spans and start - spans[-1][1] < MERGE_GAP_SECONDS:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [Event(round(float(s), 4), round(float(e), 4)) for s, e in spans if e - s >= MIN_EVENT_SECONDS]


def _percentile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, q) (its linear method, the same float operations) for 1-D values without NaN, by
    partial sort: np.percentile's generic machinery took a third of event detection on a 5 s clip."""
    position = (values.size - 1) * (q / 100)
    below = int(position)
    above = min(below + 1, values.size - 1)
    a, b = np.partition(values, (below, above))[[below, above]]
    gamma = position - below
    return float(a + (b - a) * gamma if gamma < 0.5 else b - (b - a) * (1 - gamma))


def detect_events(energy_db: np.ndarray, duration: float, sample_rate: int = SAMPLE_RATE,
                  fallback: bool = True) -> list[Event]:
    """Events of a recording `duration` seconds long, found by hysteresis on its frame energies (dB). Where nothing
    stands out (e.g. steady noise): with `fallback`, one WINDOW_SECONDS span around the loudest frame, so every
    clip is scored; without, none."""
    energy = np.asarray(energy_db, dtype=np.float64)
    events = _energy_events(energy, duration, sample_rate)
    if events or not fallback:
        return events
    frame, hop = _frame_hop(sample_rate)
    centre = (int(np.argmax(energy)) * hop + frame / 2) / sample_rate
    start = min(max(centre - WINDOW_SECONDS / 2, 0.0), max(duration - WINDOW_SECONDS, 0.0))
    return [Event(round(float(start), 4), round(float(min(start + WINDOW_SECONDS, duration)), 4))]


def event_centres(energy_db: np.ndarray, events: list[Event], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_events,) sample index at the centre of the WINDOW_SECONDS window that represents each event.

    A window is centred on its event; an event longer than the window gets the window around its loudest frame,
    where the explosive phase of a cough is.
    """
    energy = np.asarray(energy_db)
    length = int(round(WINDOW_SECONDS * sample_rate))
    frame, hop = _frame_hop(sample_rate)
    centres = np.zeros(len(events), dtype=np.int64)
    for i, event in enumerate(events):
        start, end = int(round(event.start_s * sample_rate)), int(round(event.end_s * sample_rate))
        if end - start <= length:
            centres[i] = (start + end) // 2
            continue
        first = -(-start // hop)
        inside = energy[first:max(first + 1, (end - frame) // hop + 1)]
        centre = (first + int(np.argmax(inside))) * hop + frame // 2 if inside.size else (start + end) // 2
        centres[i] = min(max(centre, start + length // 2), end - length // 2)
    return centres


def _frame_hop(sample_rate: int) -> tuple[int, int]:
    return int(round(FRAME_SECONDS * sample_rate)), int(round(HOP_SECONDS * sample_rate))

"""Event detection on synthetic bursts (known onsets) and on real dataset recordings."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coughkd.audio import load_audio
from coughkd.events import (
    WINDOW_SECONDS,
    Event,
    detect_events,
    event_centres,
    frame_energy_db,
)

SR = 16000
BURSTS = [(0.5, 0.8), (1.5, 1.9), (3.0, 3.25), (4.2, 4.6)]


def events_of(x: np.ndarray, fallback: bool = True) -> list[Event]:
    """The events of a waveform, from its frame energies as the graph computes them (coughkd.events' numpy twin)."""
    return detect_events(frame_energy_db(x), len(x) / SR, fallback=fallback)


def centres_of(x: np.ndarray, events: list[Event]) -> np.ndarray:
    return event_centres(frame_energy_db(x), events)


def bursts(spans: list[tuple[float, float]], seconds: float = 5.0, noise: float = 1e-3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * SR)) * noise
    for start, end in spans:
        a, b = int(start * SR), int(end * SR)
        x[a:b] += rng.standard_normal(b - a) * 0.3
    return x.astype(np.float32)


@pytest.mark.parametrize("noise", [0.0, 1e-4, 1e-3, 1e-2])
def test_bursts_onsets_and_offsets(noise: float) -> None:
    events = events_of(bursts(BURSTS, noise=noise))
    assert len(events) == len(BURSTS)
    for event, (start, end) in zip(events, BURSTS):
        assert abs(event.start_s - start) <= 0.05
        assert abs(event.end_s - end) <= 0.05


def test_short_gaps_merge_and_blips_drop() -> None:
    events = events_of(bursts([(0.5, 0.7), (0.74, 0.9), (2.0, 2.02), (3.0, 3.3)]), fallback=False)
    assert [(round(e.start_s, 1), round(e.end_s, 1)) for e in events] == [(0.5, 0.9), (3.0, 3.3)]


def test_quiet_tail_is_kept_by_hysteresis() -> None:
    x = bursts([(1.0, 1.2)])
    rng = np.random.default_rng(5)
    x[int(1.2 * SR): int(1.5 * SR)] += (rng.standard_normal(int(0.3 * SR)) * 0.03).astype(np.float32)
    (event,) = events_of(x, fallback=False)
    assert abs(event.start_s - 1.0) <= 0.05 and abs(event.end_s - 1.5) <= 0.05


def test_a_bump_that_never_reaches_the_high_threshold_is_no_event() -> None:
    x = bursts([(1.0, 1.2), (3.0, 3.2)])
    rng = np.random.default_rng(6)
    x[int(2.0 * SR): int(2.3 * SR)] += (rng.standard_normal(int(0.3 * SR)) * 6e-3).astype(np.float32)  # -44 dB
    events = events_of(x, fallback=False)
    assert [(round(e.start_s, 1), round(e.end_s, 1)) for e in events] == [(1.0, 1.2), (3.0, 3.2)]


def test_steady_noise_falls_back_to_loudest_second() -> None:
    x = (np.random.default_rng(2).standard_normal(3 * SR) * 0.1).astype(np.float32)
    assert events_of(x, fallback=False) == []
    (event,) = events_of(x)
    assert event.end_s - event.start_s == pytest.approx(WINDOW_SECONDS)
    loudest = (np.argmax(frame_energy_db(x)) * 160 + 240) / SR
    assert event.start_s <= loudest <= event.end_s


def test_fallback_for_clip_shorter_than_window() -> None:
    x = (np.random.default_rng(3).standard_normal(int(0.4 * SR)) * 0.1).astype(np.float32)
    assert events_of(x) == [Event(0.0, 0.4)]


def test_window_centres_follow_short_events() -> None:
    x = np.zeros(3 * SR, dtype=np.float32)
    centres = centres_of(x, [Event(1.4, 1.6), Event(0.0, 0.2), Event(2.9, 3.0)])
    assert centres.tolist() == [int(1.5 * SR), int(0.1 * SR), int(2.95 * SR)]


def test_long_event_window_follows_the_loudest_part() -> None:
    x = bursts([(0.5, 3.5)], seconds=4.0)
    x[int(2.6 * SR): int(2.7 * SR)] *= 3.0
    (centre,) = centres_of(x, events_of(x, fallback=False))
    assert 2.6 * SR < centre < 3.0 * SR  # the window [centre - 0.5 s, centre + 0.5 s) holds the loud part


def test_no_events_gives_no_centres() -> None:
    assert centres_of(np.ones(SR, dtype=np.float32), []).shape == (0,)


def test_real_recordings(cough_data: Path) -> None:
    rows = json.loads((cough_data / "metadata.json").read_text())
    picked = [r for r in rows if r["source"] == "call-center"][:3] + [r for r in rows if r["source"] == "telegram"][:3]
    for row in picked:
        audio = load_audio(cough_data / "raw" / row["filename"])
        events = events_of(audio.waveform, fallback=False)
        assert events, row["filename"]
        assert all(0.0 <= e.start_s < e.end_s <= audio.duration_s + 1e-6 for e in events)
        assert all(a.end_s < b.start_s for a, b in zip(events, events[1:]))
        centres = centres_of(audio.waveform, events)
        assert len(centres) == len(events) and all(0 <= c <= len(audio.waveform) for c in centres)

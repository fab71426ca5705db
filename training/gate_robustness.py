"""Gate checkpoints on the validation clips as other microphones and rooms would give them (never the test split).

    python -m training.gate_robustness --run_dir=runs/reproduce --checkpoints=a.pt,b.pt     # a few minutes

Why: the validation clips come from the same microphones as the training clips, and several gate recipes hold every
group there; real recordings are quieter, louder, brighter, duller, noisier or more reverberant, or hold the sound in
seconds of room tone or, cut as ESC-50 cuts its clips, of digital silence. Each checkpoint is read at its own
threshold on copies of every validation clip changed one way at a time (``members``: and each member of an ensemble
alone); the sound set is rebuilt with the first checkpoint's own settings, so the split is the one it was chosen on.
Prints a markdown table: per change, the clips the gate treats wrongly and its worst group, and the sum over all of
them (docs/experiments.md quotes it).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.signal
import torch

from coughkd.audio import SAMPLE_RATE
from coughkd.events import detect_events, frame_energy_db
from training.lib.clips import ClipSet, clip_features
from training.lib.configurator import configure
from training.lib.metrics import choose_gate_threshold, gate_groups, gate_rates, worst_group
from training.lib.sounds import LATER_SETTINGS, gate_probabilities, sound_set
from training.models.students import gate_from_checkpoint

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
checkpoints = ""  # comma-separated gate checkpoints ("": run_dir/sound_cnn.pt)
members = False  # True: also every member of an ensemble alone, at the threshold training.gate would choose for it
seed = 0  # of the added noise
# --------------------------------------------------------------------------------------------------------------------

Change = Callable[[np.ndarray, np.random.Generator], np.ndarray]
CHANGES: dict[str, Change] = {
    "as recorded": lambda w, rng: w,
    "quiet (-12 dB)": lambda w, rng: w * 10 ** (-12 / 20),
    "loud (+6 dB, clipped)": lambda w, rng: np.clip(w * 2.0, -1.0, 1.0),
    "brighter (pre-emphasis 0.7)": lambda w, rng: scipy.signal.lfilter([1.0, -0.7], [1.0], w),
    "duller (one-pole low-pass 0.7)": lambda w, rng: scipy.signal.lfilter([0.3], [1.0, -0.7], w),
    "white noise 20 dB below": lambda w, rng: w + rng.standard_normal(len(w)) * np.sqrt(np.mean(w ** 2)) * 0.1,
    "room (RT60 0.6 s, DRR 3 dB)": lambda w, rng: scipy.signal.fftconvolve(w, room_response(0.6, 3.0, rng))[:len(w)],
    "in 4 s more of quiet (noise 50 dB below its peak)": lambda w, rng: in_quiet(w, 4.0, 50.0, rng),
    "its loudest event alone in 5 s of that quiet": lambda w, rng: loudest_event_in_quiet(w, 5.0, 50.0, rng),
    "1.5 s from its first event, then digital silence to 5 s": lambda w, rng: cut_and_padded(w, 1.5, 5.0),
}


def in_quiet(waveform: np.ndarray, seconds: float, below_db: float, rng: np.random.Generator) -> np.ndarray:
    """The clip at a random offset inside `seconds` more of white noise `below_db` under its peak: a recording that
    holds the sound in mostly room tone."""
    level = np.abs(waveform).max() * 10 ** (-below_db / 20)
    x = rng.standard_normal(len(waveform) + int(seconds * SAMPLE_RATE)) * level
    at = int(rng.integers(0, len(x) - len(waveform) + 1))
    x[at:at + len(waveform)] += waveform
    return x


def event_spans(waveform: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) samples of the clip's events (coughkd.events, on the clip at full scale), 0.1 s either side."""
    events = detect_events(frame_energy_db(waveform / np.abs(waveform).max()), len(waveform) / SAMPLE_RATE)
    return [(max(0, int((e.start_s - 0.1) * SAMPLE_RATE)), int((e.end_s + 0.1) * SAMPLE_RATE)) for e in events]


def loudest_event_in_quiet(waveform: np.ndarray, seconds: float, below_db: float,
                           rng: np.random.Generator) -> np.ndarray:
    """The clip's loudest event (event_spans) alone inside `seconds` of in_quiet's noise: one
    cough, one bark, one word in a recording of mostly room tone, which the clip's mean over time dilutes."""
    start, end = max(event_spans(waveform), key=lambda s: np.abs(waveform[s[0]:s[1]]).max())
    event = waveform[start:end]
    return in_quiet(event, max(0.0, seconds - len(event) / SAMPLE_RATE), below_db, rng)


def cut_and_padded(waveform: np.ndarray, seconds: float, padded_s: float) -> np.ndarray:
    """`seconds` of the clip from the start of its first event span (event_spans), then exact zeros up to `padded_s`:
    how ESC-50 cuts its clips (its sneezes, roosters and coughs end in seconds of digital silence), so a gate that
    heard the silence as a sign of "not a cough" refuses such a cough."""
    spans = event_spans(waveform)
    start = spans[0][0] if spans else 0
    cut = waveform[start:start + int(seconds * SAMPLE_RATE)]
    return np.pad(cut, (0, max(0, int(padded_s * SAMPLE_RATE) - len(cut))))


def room_response(rt60_s: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response at 16 kHz: the direct sound, then exponentially decaying noise whose energy
    is `drr_db` below it (60 dB of decay in `rt60_s`), the standard statistical model of a diffuse reverberant tail."""
    n = np.arange(1, int(rt60_s * SAMPLE_RATE))
    tail = rng.standard_normal(len(n)) * 10 ** (-3.0 * n / (rt60_s * SAMPLE_RATE))
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail ** 2))
    return np.concatenate([[1.0], tail])


def worst(rates: dict[str, tuple[int, int]]) -> str:
    """The group furthest below (or least above) its bar, as "group k/n"."""
    group, _ = worst_group(rates)
    k, n = rates[group]
    return f"{group} {k}/{n}"


def main(argv: list[str]) -> str:
    config = configure(globals(), argv)
    run = Path(config["run_dir"])
    paths = [Path(p) for p in config["checkpoints"].split(",")] if config["checkpoints"] else [run / "sound_cnn.pt"]
    gates = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    sounds, _ = sound_set(ClipSet.load(run / "clips.npz"), {**LATER_SETTINGS, **gates[0]["config"]})
    val = np.flatnonzero(sounds.split == "val")
    groups = gate_groups(sounds.subset(sounds.split == "val"))
    rng = np.random.default_rng(config["seed"])
    changed = {name: [clip_features(change(sounds.waveform(i).astype(np.float64), rng).astype(np.float32))
                      for i in val] for name, change in CHANGES.items()}
    rows = []  # (name, gate, its threshold; None: chosen on its validation clips as recorded, as training.gate does)
    for path, checkpoint in zip(paths, gates):
        name = f"{path.parent.name}/{path.name}"
        rows.append((name, gate_from_checkpoint(checkpoint), checkpoint["threshold"]))
        if config["members"] and len(checkpoint["members"]) > 1:
            rows += [(f"{name}, member {k} alone", gate_from_checkpoint({"members": [state]}), None)
                     for k, state in enumerate(checkpoint["members"])]
    lines = ["| checkpoint | " + " | ".join(CHANGES) + " | all changes |", "|---|" + "---|" * (len(CHANGES) + 1)]
    for name, model, threshold in rows:
        p_cough = {change: gate_probabilities(model, feats)[:, 0] for change, feats in changed.items()}
        if threshold is None:
            threshold = choose_gate_threshold(p_cough["as recorded"], groups)
        cells, total = [], 0
        for p in p_cough.values():
            rates = gate_rates(p, groups, threshold)
            wrong = sum(n - k for k, n in rates.values())
            total += wrong
            cells.append(f"{wrong} wrong; worst {worst(rates)}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {total} wrong |")
    table = "\n".join(lines)
    print(f"{len(val)} validation clips, each checkpoint at its own threshold:\n\n{table}")
    return table


if __name__ == "__main__":
    main(sys.argv[1:])

"""Step 1: recordings -> deduplicated, decoded, split -> 1 s cough windows, plus generated non-cough windows.

    python -m training.prepare --run_dir=runs/latest

Writes to the run directory: ``windows.npz`` (see training.windows), ``recordings.json`` (one row per kept
recording), ``split.json`` (content hashes per split) and ``data_report.json`` (what the loader dropped and why).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from coughkd.audio import SAMPLE_RATE
from coughkd.predict import cough_windows
from training.configurator import parse_overrides
from training.data import COVID19_COUGH, SPLITS, decode_all, load_covid19_cough, split
from training.synth import generate_non_cough
from training.windows import NO_LABEL, WindowSet

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
data_root = str(COVID19_COUGH)
audio_cache = "runs/cache/audio"  # decoded 16 kHz waveforms keyed by content hash, shared by all runs
only_verified_positives = False
max_windows_per_recording = 6  # long recordings would otherwise dominate the loss
non_cough_clips = 600
limit = 0  # > 0: use only this many recordings (smoke tests)
seed = 0
# --------------------------------------------------------------------------------------------------------------------


def first_windows(waveform: np.ndarray, max_windows: int) -> np.ndarray:
    """The first windows the runtime scores for this recording (coughkd.predict.cough_windows)."""
    return cough_windows(waveform, SAMPLE_RATE)[1][:max_windows]


def _stratified_subset(recordings: list, n: int, seed: int) -> list:
    """A small subset that still holds every (source, label) stratum, for smoke runs."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(recordings))
    strata: dict[tuple[str, int], list] = {}
    for i in order:
        strata.setdefault((recordings[i].source, recordings[i].label), []).append(recordings[i])
    per = max(1, n // len(strata))
    return [r for members in strata.values() for r in members[:per]]


def main(argv: list[str]) -> WindowSet:
    config = parse_overrides({k: globals()[k] for k in _CONFIG_KEYS}, argv)
    run = Path(config["run_dir"])
    run.mkdir(parents=True, exist_ok=True)

    recordings, report = load_covid19_cough(Path(config["data_root"]), config["only_verified_positives"])
    if config["limit"]:
        recordings = _stratified_subset(recordings, config["limit"], config["seed"])
    decoded, _ = decode_all(recordings, cache_dir=Path(config["audio_cache"]), report=report)
    print(report)
    splits = split([rec for rec, _ in decoded], seed=config["seed"])
    split_of = {rec.sha256: name for name, members in splits.items() for rec in members}

    parts: list[WindowSet] = []
    rows = []
    for index, (rec, waveform) in enumerate(tqdm(decoded, desc="cough windows", unit="file")):
        w = first_windows(waveform, config["max_windows_per_recording"])
        n = len(w)
        rows.append({"sha256": rec.sha256, "label": rec.label, "source": rec.source, "split": split_of[rec.sha256],
                     "verified": rec.verified, "path": str(rec.path), "windows": n})
        parts.append(WindowSet(w, np.full(n, index), np.full(n, split_of[rec.sha256]), np.full(n, rec.label),
                               np.full(n, rec.source), np.ones(n, dtype=np.int8)))

    rng = np.random.default_rng(config["seed"])
    generated = generate_non_cough(config["non_cough_clips"], seed=config["seed"], sample_rate=SAMPLE_RATE)
    for kind, waveform in tqdm(generated, desc="non-cough windows", unit="clip"):
        w = first_windows(waveform, 2)
        n = len(w)
        name = SPLITS[int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
        parts.append(WindowSet(w, np.full(n, -1), np.full(n, name), np.full(n, NO_LABEL),
                               np.full(n, f"generated:{kind}"), np.zeros(n, dtype=np.int8)))

    windows = WindowSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                          ("waveforms", "recording", "split", "covid_label", "source", "is_cough")))
    windows.save(run / "windows.npz")
    (run / "recordings.json").write_text(json.dumps(rows, indent=1))
    (run / "split.json").write_text(json.dumps({name: [r.sha256 for r in members] for name, members in splits.items()},
                                               indent=1))
    (run / "data_report.json").write_text(json.dumps(report.as_dict(), indent=1))
    for name in SPLITS:
        chosen = windows.split == name
        print(f"{name}: {len(splits[name])} recordings, {int((chosen & (windows.is_cough == 1)).sum())} cough windows, "
              f"{int((chosen & (windows.is_cough == 0)).sum())} non-cough windows")
    return windows


_CONFIG_KEYS = ("run_dir", "data_root", "audio_cache", "only_verified_positives", "max_windows_per_recording",
                "non_cough_clips", "limit", "seed")

if __name__ == "__main__":
    main(sys.argv[1:])

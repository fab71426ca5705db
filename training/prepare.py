"""Step 1: recordings -> deduplicated, decoded, split -> clips, plus generated non-cough clips.

    python -m training.prepare --run_dir=runs/latest

Writes to the run directory: ``clips.npz`` (see training.lib.clips), ``recordings.json`` (one row per kept
recording), ``split.json`` (content hashes per split) and ``data_report.json`` (what the loader dropped and why).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from coughkd.audio import SAMPLE_RATE
from coughkd.features import MAX_CLIP_SECONDS
from training.lib.clips import NO_LABEL, ClipSet
from training.lib.configurator import configure
from training.lib.data import COVID19_COUGH, SPLITS, decode_all, load_covid19_cough, split
from training.lib.synth import generate_non_cough

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
data_root = str(COVID19_COUGH)
audio_cache = "runs/cache/audio"  # decoded 16 kHz waveforms keyed by content hash, shared by all runs
only_verified_positives = False
non_cough_clips = 600
limit = 0  # > 0: use only this many recordings (smoke tests)
seed = 0
# --------------------------------------------------------------------------------------------------------------------


def _stratified_subset(recordings: list, n: int, seed: int) -> list:
    """A small subset that still holds every (source, label) stratum, for smoke runs."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(recordings))
    strata: dict[tuple[str, int], list] = {}
    for i in order:
        strata.setdefault((recordings[i].source, recordings[i].label), []).append(recordings[i])
    per = max(1, n // len(strata))
    return [r for members in strata.values() for r in members[:per]]


def run(*, run_dir: str = run_dir, data_root: str = data_root, audio_cache: str = audio_cache,
        only_verified_positives: bool = only_verified_positives, non_cough_clips: int = non_cough_clips,
        limit: int = limit, seed: int = seed) -> ClipSet:
    config = dict(locals())
    run = Path(config["run_dir"])
    run.mkdir(parents=True, exist_ok=True)

    recordings, report = load_covid19_cough(Path(config["data_root"]), config["only_verified_positives"])
    if config["limit"]:
        recordings = _stratified_subset(recordings, config["limit"], config["seed"])
    decoded, _ = decode_all(recordings, cache_dir=Path(config["audio_cache"]), report=report)
    print(report)
    splits = split([rec for rec, _ in decoded], seed=config["seed"])
    split_of = {rec.sha256: name for name, members in splits.items() for rec in members}

    longest = int(MAX_CLIP_SECONDS * SAMPLE_RATE)  # what the runtime scores in one piece
    rows = [{"sha256": rec.sha256, "label": rec.label, "source": rec.source, "split": split_of[rec.sha256],
             "verified": rec.verified, "path": str(rec.path), "seconds": round(len(waveform) / SAMPLE_RATE, 3)}
            for rec, waveform in decoded]
    coughs = ClipSet.build([waveform[:longest] for _, waveform in decoded],
                           recording=np.arange(len(decoded)), split=[row["split"] for row in rows],
                           covid_label=[rec.label for rec, _ in decoded], source=[rec.source for rec, _ in decoded],
                           is_cough=np.ones(len(decoded), dtype=np.int8))

    rng = np.random.default_rng(config["seed"])
    generated = generate_non_cough(config["non_cough_clips"], seed=config["seed"], sample_rate=SAMPLE_RATE)
    n = len(generated)
    non_cough = ClipSet.build([waveform[:longest] for _, waveform in generated], recording=np.full(n, -1),
                              split=[SPLITS[int(rng.choice(3, p=[0.7, 0.15, 0.15]))] for _ in range(n)],
                              covid_label=np.full(n, NO_LABEL), source=[f"generated:{kind}" for kind, _ in generated],
                              is_cough=np.zeros(n, dtype=np.int8))
    clips = ClipSet.concatenate([coughs, non_cough])
    clips.save(run / "clips.npz")
    (run / "recordings.json").write_text(json.dumps(rows, indent=1))
    (run / "split.json").write_text(json.dumps({name: [r.sha256 for r in members] for name, members in splits.items()},
                                               indent=1))
    (run / "data_report.json").write_text(json.dumps(report.as_dict(), indent=1))
    for name in SPLITS:
        chosen = clips.split == name
        print(f"{name}: {int((chosen & (clips.is_cough == 1)).sum())} recordings, "
              f"{int((chosen & (clips.is_cough == 0)).sum())} generated non-cough clips")
    return clips


def main(argv: list[str]) -> ClipSet:
    return run(**configure(globals(), argv))


if __name__ == "__main__":
    main(sys.argv[1:])

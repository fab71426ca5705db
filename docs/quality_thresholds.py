"""The measurements behind the app's quality checks (coughkd_app/quality.py): each check's metric on the covid19-cough
recordings as they are and on copies degraded on purpose, and the share of each that the checks flag. Prints a
markdown report; the committed one is docs/quality_thresholds.md:

    python -m docs.quality_thresholds > docs/quality_thresholds.md                        # under a minute on 2 cores
    python -m docs.quality_thresholds --model assets/model > docs/quality_thresholds.md   # with the model's gate

Degraded copies keep their recording's channel: too loud and clipped (at 48 kHz, then coded as WebM/Opus as a phone
browser does, for Telegram recordings; at 8 kHz, uncompressed, for telephone ones), and white noise added 20, 10 or
0 dB below the recording's own level. Without --model, the coughs are the energy detector's events (what the gate
then names); with it, the events its sound-type gate heard as coughs, and how far each degradation moves the COVID-19
score of the recordings the gate hears as coughs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soxr

import coughkd
from coughkd import Audio, EventScore, Prediction
from coughkd.audio import SAMPLE_RATE, AudioError, load_audio
from coughkd.events import detect_events, frame_energy_db
from coughkd.features import telephone_band
from coughkd_app import quality
from tests.audio_formats import encode
from training.lib.data import COVID19_COUGH

ROOT = Path(__file__).resolve().parents[1]
DATA = COVID19_COUGH
PERCENTILES = (0.5, 1, 2.5, 5, 50, 95, 99)
GAINS = (2, 5, 20)  # times the loudest sample's level, before clipping at full scale
NOISE_DB = (20, 10, 0)  # white noise this many dB below the recording's RMS
RATES = {"call-center": 8000, "telegram": 48000}


def energy_prediction(audio: Audio) -> Prediction:
    """A stand-in Prediction whose events are the energy detector's, every one a cough (no model given)."""
    events = [EventScore(e.start_s, e.end_s, "cough", 1.0, None)
              for e in detect_events(frame_energy_db(telephone_band(audio.waveform, SAMPLE_RATE)),
                                     audio.duration_s, fallback=False)]
    return Prediction(None, None, 1.0, True, "cough", {}, 0.5, events, 0.0, "energy events", audio.duration_s)


def measure(audio: Audio, source: str, model: coughkd.CoughModel | None) -> dict:
    """One recording's metrics and failed checks; with a model its COVID-19 probability too."""
    prediction = model.predict(audio) if model else energy_prediction(audio)
    checked = quality.check(audio, prediction)
    return {"source": source, "warned": float(checked.clipped), "crest": checked.loud_crest, "snr_db": checked.snr_db,
            "coughs": checked.coughs, "cough_seconds": checked.cough_seconds, "seconds": audio.duration_s,
            "problems": checked.problems, "covid": prediction.covid_probability}


def clipped_copy(waveform: np.ndarray, gain: float, source: str, folder: Path) -> Audio:
    """`gain` times too loud at the channel's rate, clipped at full scale and, for app audio, coded as WebM/Opus."""
    rate = RATES[source]
    loud = np.clip(soxr.resample(waveform, SAMPLE_RATE, rate) * gain, -1.0, 1.0).astype(np.float32)
    if source == "telegram":
        return load_audio(encode(loud, rate, "webm", folder, stem="clipped"))
    return load_audio(loud, sample_rate=rate)


def noisy_copy(waveform: np.ndarray, below_db: float, source: str, rng: np.random.Generator) -> Audio:
    """White noise `below_db` dB under the recording's RMS, back into full scale, at the channel's rate."""
    rms = float(np.sqrt(np.mean(np.square(waveform))))
    noisy = waveform + rng.standard_normal(len(waveform)).astype(np.float32) * rms * 10 ** (-below_db / 20)
    rate = min(RATES[source], SAMPLE_RATE)
    return load_audio(soxr.resample(noisy / np.abs(noisy).max(), SAMPLE_RATE, rate), sample_rate=rate)


def table(groups: dict[str, list[dict]], key: str, problem: str | None, fmt: str) -> list[str]:
    """Markdown rows: the metric's percentiles per group of recordings, and the share that fails `problem`."""
    lines = ["| recordings | n | " + " | ".join(f"p{p:g}" for p in PERCENTILES) + " | max | flagged |",
             "|" + "---|" * (len(PERCENTILES) + 4)]
    for name, rows in groups.items():
        values = np.array([r[key] for r in rows], dtype=np.float64)
        if values.size == 0:
            continue
        cells = " | ".join(format(np.percentile(values, p), fmt) for p in PERCENTILES)
        flagged = f"{np.mean([problem in r['problems'] for r in rows]):.1%}" if problem else ""
        lines.append(f"| {name} | {values.size} | {cells} | {format(values.max(), fmt)} | {flagged} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="the covid19-cough folder (metadata.json, raw/)")
    p.add_argument("--every", type=int, default=3, help="degrade every n-th recording (default 3)")
    p.add_argument("--model", type=Path, default=None, help="also measure with this model's gate and scores")
    args = p.parse_args(argv)
    model = coughkd.load(args.model) if args.model else None
    records = json.loads((args.data / "metadata.json").read_text())
    rng = np.random.default_rng(0)
    kinds = ["as recorded", *(f"{g}x too loud, clipped" for g in GAINS), *(f"noise {d} dB below" for d in NOISE_DB)]
    rows: dict[str, list[dict]] = {kind: [] for kind in kinds}
    undecodable = 0
    with tempfile.TemporaryDirectory() as folder:
        for i, record in enumerate(records):
            source = record["source"]
            try:
                audio = load_audio(args.data / "raw" / record["filename"])
            except AudioError:
                undecodable += 1
                continue
            clean = measure(audio, source, model)
            rows["as recorded"].append(clean)
            if i % args.every:
                continue
            for gain in GAINS:
                copy = clipped_copy(audio.waveform, gain, source, Path(folder))
                rows[f"{gain}x too loud, clipped"].append(measure(copy, source, model) | {"before": clean["covid"]})
            for below in NOISE_DB:
                copy = noisy_copy(audio.waveform, below, source, rng)
                rows[f"noise {below} dB below"].append(measure(copy, source, model) | {"before": clean["covid"]})
    groups = {f"{kind}: {source}": [r for r in group if r["source"] == source]
              for kind, group in rows.items() for source in RATES}
    clean = {k: v for k, v in groups.items() if k.startswith("as recorded")} | {"as recorded: all": rows["as recorded"]}
    counted = {k: [r for r in v if r["coughs"] >= quality.MIN_COUGHS] for k, v in clean.items()}
    coughs = "the gate's coughs" if model else "the energy detector's events (no model given)"
    command = "python -m docs.quality_thresholds" + (f" --model {args.model}" if model else "")
    out = [(f"# Quality-check measurements\n\n`{command}`: {len(rows['as recorded'])} recordings of "
            f"{args.data.name} ({undecodable} undecodable) and degraded copies of one in {args.every}, split by "
            f"channel (call-center: telephone, 8 kHz; telegram: app audio, 48 kHz). Coughs: {coughs}.\n"),
           "## Decoder's clipping warning (samples at full scale; the share of recordings it warned of)\n",
           *(f"- {name}: {np.mean([r['warned'] for r in group]):.1%} of {len(group)}"
             for name, group in groups.items() if group),
           (f"\n## Crest factor of the loud frames (flagged as clipped under {quality.MIN_LOUD_CREST:g} when the "
            "decoder warned of clipping)\n"),
           *table(groups, "crest", "clipped", ".2f"),
           (f"\n## Signal-to-noise, dB (p{quality.SIGNAL_PERCENTILE:g} - p{quality.FLOOR_PERCENTILE:g} of 30 ms "
            f"frame energies, 4 kHz band; flagged under {quality.MIN_SNR_DB['telephone']:g} dB for telephone audio, "
            f"{quality.MIN_SNR_DB['app']:g} dB for app audio)\n"),
           *table(groups, "snr_db", "noisy", ".1f"),
           f"\n## Coughs per recording (flagged under {quality.MIN_COUGHS})\n",
           *table(clean, "coughs", "no_cough", ".0f"),
           f"\n## Seconds of cough, recordings with a cough (flagged under {quality.MIN_COUGH_SECONDS:g} s)\n",
           *table(counted, "cough_seconds", "short", ".2f"),
           "\n## Recording length, s\n",
           *table(clean, "seconds", None, ".2f"),
           "\n## Any check failed (the app says: record again)\n",
           *(f"- {name}: {np.mean([bool(r['problems']) for r in group]):.1%} of {len(group)}"
             for name, group in groups.items() if group)]
    if model:
        out.append("\n## COVID-19 probability moved by each degradation (recordings the gate heard as coughs)\n")
        for kind in kinds[1:]:
            moved = np.array([abs(r["covid"] - r["before"]) for r in rows[kind]
                              if r["covid"] is not None and r["before"] is not None])
            if moved.size:
                out.append(f"- {kind}: median |change| {np.median(moved):.3f}, 90th percentile "
                           f"{np.percentile(moved, 90):.3f} ({moved.size} recordings)")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

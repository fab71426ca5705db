"""Is a recording good enough for its COVID-19 score to mean anything? Four checks, each a reason to record again.

A score of a recording unlike any the model learnt from is not evidence, so each threshold marks the edge of the
covid19-cough recordings (telephone and Telegram), measured on them and on copies degraded on purpose by
`python -m docs.quality_thresholds` (docs/quality_thresholds.md holds its output and the figures quoted here).

- Clipping. The decoder warns when samples reach full scale, as it does for 1.1% of the data set's Telegram
  recordings, which are fine: the warning alone is no reason to record again. Heavy clipping also flattens the
  loud parts into a square wave: the median peak-to-RMS ratio of the loud 30 ms frames ("loud crest") is 2.92 in
  the data set's Telegram recordings (0.5th percentile 2.20) and 2.95 in its telephone ones; copies made 20 times
  too loud have medians of 1.69 (Telegram, then WebM/Opus) and 1.85 (telephone). Warned and under 2.0 flags none
  of the data set, 96% / 83% of the copies 20 times too loud and 61% / 35% of those 5 times too loud.
- Noise. The 95th minus the 10th percentile of frame energy (the loud moments against the floor between them).
  Telegram recordings: 19.2 dB or more in 99% (0.5th percentile 13.9 dB), and white noise at the recording's own
  level brings them to a median of 10.9 dB; under 12 dB flags 0.4% of them and 82% of those copies. Telephone
  recordings are noisy already (1st percentile 6.0 dB, median 26.5): under 6 dB flags 1.3% of them but only 7% of
  their copies with noise at their own level, so on telephone audio this check catches only the worst.
- No cough. With no event heard as a cough, a score would rest on other sounds. The energy detector finds no
  event in 2.9% of the telephone recordings (their level never varies by 10 dB) and none of the Telegram ones.
- Too short. The events of a recording with any last under 0.25 s together in 0.8% of the data set (1st
  percentile 0.25 s, median 1.06 s).

These were measured with the energy detector's events standing in for the sound-type gate's coughs, as the model
is being rebuilt; `--model DIR` measures with the gate and also how far each degradation moves the score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coughkd import Audio, Prediction
from coughkd.events import frame_energy_db
from coughkd.features import TELEPHONE_RATE, telephone_band

FRAME = 480  # samples at 16 kHz: 30 ms, the event detector's frame
LOUD_DB = 10.0  # the loud frames: within this of the loudest one
MIN_LOUD_CREST = 2.0
SIGNAL_PERCENTILE, FLOOR_PERCENTILE = 95.0, 10.0
MIN_SNR_DB = {"telephone": 6.0, "app": 12.0}
MIN_COUGHS = 1
MIN_COUGH_SECONDS = 0.25
PROBLEMS = ("clipped", "noisy", "no_cough", "short")  # in the order a person should fix them


@dataclass(frozen=True)
class Quality:
    """The measurements behind the checks, and the checks that failed (a subset of PROBLEMS, in its order)."""

    clipped: bool  # the decoder saw samples at full scale (its "clipped" warning)
    loud_crest: float
    snr_db: float
    coughs: int
    cough_seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def channel(original_sample_rate: int) -> str:
    """"telephone" for 8 kHz or less (a phone line, as the data set's call-centre recordings), else "app"."""
    return "telephone" if original_sample_rate <= TELEPHONE_RATE else "app"


def loud_crest(waveform: np.ndarray) -> float:
    """Median peak-to-RMS ratio of the loud 30 ms frames: about 3 for a cough's noise-like burst, towards 1 as
    clipping flattens it into a square wave (lossy coding rings the flat tops, but not back up to 3)."""
    x = np.asarray(waveform, dtype=np.float64)
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME) if len(x) >= FRAME else x[None, :]
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    loud = rms >= rms.max() * 10 ** (-LOUD_DB / 20)
    return float(np.median(np.abs(frames[loud]).max(axis=1) / rms[loud]))


def snr_db(waveform: np.ndarray, sample_rate: int) -> float:
    """The loudest moments against the quietest, in dB, in the band the model hears (noise above 4 kHz never
    reaches it): the 95th minus the 10th percentile of 30 ms frame energies."""
    energy = frame_energy_db(telephone_band(waveform, sample_rate), sample_rate)
    return float(np.percentile(energy, SIGNAL_PERCENTILE) - np.percentile(energy, FLOOR_PERCENTILE))


def check(audio: Audio, prediction: Prediction) -> Quality:
    """Measure a decoded recording and the coughs its prediction found; list the checks it fails."""
    coughs = [e for e in prediction.events if e.sound_type == "cough"]
    clipped = any("clipped" in w for w in audio.warnings)
    crest, snr = loud_crest(audio.waveform), snr_db(audio.waveform, audio.sample_rate)
    seconds = float(sum(e.end_s - e.start_s for e in coughs))
    failed = {
        "clipped": clipped and crest < MIN_LOUD_CREST,
        "noisy": snr < MIN_SNR_DB[channel(audio.original_sample_rate)],
        "no_cough": len(coughs) < MIN_COUGHS,
        "short": len(coughs) >= MIN_COUGHS and seconds < MIN_COUGH_SECONDS,
    }
    return Quality(clipped, crest, snr, len(coughs), seconds, [p for p in PROBLEMS if failed[p]])

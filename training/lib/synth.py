"""Generated non-cough audio: the negative class of the cough/not-cough head.

The cough datasets hold only coughs, so without these the cough head would have nothing to say "no" to.
The kinds cover what a user may send instead of a cough: speech (espeak-ng), noise, tones, near-silence and
music-like sounds (drum hits are deliberately cough-like: short broadband bursts).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

KINDS = ("speech", "white_noise", "pink_noise", "brown_noise", "tone", "sweep", "silence", "chord", "drums")

VOICES = ("en", "en-us", "en-gb-x-rp", "ru", "de", "fr", "es", "it", "hi", "pt")
VARIANTS = ("", "+m1", "+m3", "+m7", "+f1", "+f2", "+f4", "+croak", "+whisper")
WORDS = {
    "en": "the a my this cough doctor please call today morning feel better tired water phone number "
          "we you they will should could is was have had been going coming home work quick slow".split(),
    "ru": "я ты мы они кашель врач пожалуйста сегодня утром чувствую лучше устал вода телефон номер "
          "дома работа быстро медленно был была хорошо плохо".split(),
}


def _speech(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    voice = VOICES[rng.integers(len(VOICES))]
    words = WORDS["ru" if voice == "ru" else "en"]
    text = " ".join(words[i] for i in rng.integers(len(words), size=rng.integers(4, 12)))
    args = ["-v", voice + VARIANTS[rng.integers(len(VARIANTS))], "-s", str(rng.integers(110, 260)),
            "-p", str(rng.integers(20, 80))]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        result = subprocess.run(["espeak-ng", *args, "-w", str(out), text], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng {' '.join(args)} failed: {result.stderr.strip()}")
        audio, rate = sf.read(out, dtype="float32", always_2d=True)
    return soxr.resample(audio.mean(axis=1), rate, sample_rate).astype(np.float32)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=float)
    freqs[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(freqs), n)


def _brown(rng: np.random.Generator, n: int) -> np.ndarray:
    walk = np.cumsum(rng.standard_normal(n))
    return walk - np.linspace(walk[0], walk[-1], n)


def _fade(x: np.ndarray, sample_rate: int, seconds: float = 0.01) -> np.ndarray:
    """Short fades so no kind starts with a click (a click is itself cough-like)."""
    k = min(int(seconds * sample_rate), x.size // 2)
    ramp = np.linspace(0.0, 1.0, k)
    x[:k] *= ramp
    x[x.size - k:] *= ramp[::-1]
    return x


def _tone(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    return np.sin(2 * np.pi * rng.uniform(80, 3800) * t + rng.uniform(0, 2 * np.pi))


def _sweep(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    f0, f1 = rng.uniform(60, 3800, size=2)
    t = np.arange(n) / sample_rate
    duration = n / sample_rate
    if rng.random() < 0.5:
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * duration))
    else:
        k = np.log(f1 / f0) / duration
        phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    return np.sin(phase)


def _chords(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """A few chords (triads with decaying harmonics) under attack/decay envelopes."""
    out = np.zeros(n)
    bounds = np.linspace(0, n, rng.integers(1, 5) + 1).astype(int)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        t = np.arange(stop - start) / sample_rate
        root = rng.integers(45, 72)
        third = 4 if rng.random() < 0.5 else 3
        for note in (root, root + third, root + 7, root + 12 * int(rng.random() < 0.5)):
            freq = 440.0 * 2 ** ((note - 69) / 12)
            for harmonic in range(1, 5):
                if freq * harmonic < sample_rate / 2:
                    out[start:stop] += np.sin(2 * np.pi * freq * harmonic * t) / harmonic**1.5
        attack = np.minimum(t / rng.uniform(0.005, 0.08), 1.0)
        out[start:stop] *= attack * np.exp(-t * rng.uniform(0.5, 4.0))
    return out


def _drums(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Kick, snare and hi-hat hits on a 16th-note grid at a random tempo."""
    out = np.zeros(n)
    step = int(sample_rate * 60 / rng.uniform(80, 160) / 4)
    hit_len = int(0.25 * sample_rate)
    t = np.arange(hit_len) / sample_rate
    kick = np.sin(2 * np.pi * (50 * t + 100 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 18)
    snare = (0.6 * rng.standard_normal(hit_len) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 25)
    hat = np.diff(rng.standard_normal(hit_len + 1)) * 0.3 * np.exp(-t * 80)
    voices = [(kick, rng.random(16) < 0.3), (snare, rng.random(16) < 0.2), (hat, rng.random(16) < 0.6)]
    for position in range(0, n, step):
        beat = (position // step) % 16
        for sound, pattern in voices:
            if pattern[beat]:
                stop = min(position + hit_len, n)
                out[position:stop] += sound[: stop - position]
    return out


def _fit(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Crop or zero-pad to exactly n samples, at a random offset."""
    if x.size >= n:
        start = rng.integers(x.size - n + 1)
        return x[start:start + n]
    start = rng.integers(n - x.size + 1)
    return np.pad(x, (start, n - x.size - start))


def _one(kind: str, rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    if kind == "speech":
        x = _fit(_speech(rng, sample_rate), n, rng)
    elif kind == "white_noise":
        x = rng.standard_normal(n)
    elif kind == "pink_noise":
        x = _pink(rng, n)
    elif kind == "brown_noise":
        x = _brown(rng, n)
    elif kind == "tone":
        x = _tone(rng, n, sample_rate)
    elif kind == "sweep":
        x = _sweep(rng, n, sample_rate)
    elif kind == "silence":
        return (rng.standard_normal(n) * 10 ** rng.uniform(-4.0, -2.5)).astype(np.float32)
    elif kind == "chord":
        x = _chords(rng, n, sample_rate)
    elif kind == "drums":
        x = _drums(rng, n, sample_rate)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    x = _fade(np.asarray(x, dtype=float), sample_rate)
    peak = np.max(np.abs(x))
    gain = rng.uniform(0.05, 0.9)
    return (x * (gain / peak) if peak > 0 else x).astype(np.float32)


def available_kinds() -> tuple[str, ...]:
    """KINDS, without speech (and with a warning) when espeak-ng is not installed."""
    if shutil.which("espeak-ng") is None:
        warnings.warn("espeak-ng not found: generating non-cough audio without speech "
                      "(install it, e.g. `apt-get install espeak-ng`, to include speech)", RuntimeWarning, stacklevel=3)
        return tuple(k for k in KINDS if k != "speech")
    return KINDS


def generate_non_cough(
    n: int, seed: int, sample_rate: int = 16000, seconds: tuple[float, float] = (1.0, 3.0)
) -> list[tuple[str, np.ndarray]]:
    """`n` (kind, float32 waveform) pairs, kinds taken in turn so every kind appears once n >= len(kinds).

    Item i uses its own generator seeded by (seed, i), so the output is deterministic and a longer run
    starts with the same items as a shorter one.
    """
    kinds = available_kinds()
    items = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = kinds[i % len(kinds)]
        length = int(round(rng.uniform(*seconds) * sample_rate))
        items.append((kind, _one(kind, rng, length, sample_rate)))
    return items

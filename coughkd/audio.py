"""Turn whatever a user hands us (a file, an array, Gradio's microphone tuple) into clean 16 kHz mono float32.

Every way a recording can be unusable ends in an `AudioError` whose message can be shown to the user as is,
so the app, the CLI and the training data loader never see a decoder traceback.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
MIN_SECONDS = 0.3
MAX_SECONDS = 600.0
SILENCE_DBFS = -75.0
CLIP_LEVEL = 0.99
CLIP_FRACTION = 1e-3
NARROW_BAND_RATE = 16000
FFMPEG_TIMEOUT_S = 120

# libsndfile logs "data : <declared> (should be <actual>)" when a WAV-like file ends before its header says it does.
_SHORT_DATA = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")
# Streaming writers put these placeholders in the header instead of the real size; they are not truncation.
_SIZE_PLACEHOLDERS = {0, 0x7FFFFFFF, 0xFFFFFFFF}


class AudioError(ValueError):
    """The input cannot be used as a recording; the message is meant for the end user."""


@dataclass
class Audio:
    """A decoded recording, ready for the front end."""

    waveform: np.ndarray
    sample_rate: int
    original_sample_rate: int
    duration_s: float
    warnings: list[str] = field(default_factory=list)


def load_audio(source: str | Path | np.ndarray | tuple[int, np.ndarray], sample_rate: int | None = None) -> Audio:
    """Decode, mix to mono, resample to 16 kHz and peak-normalise; raise AudioError for unusable input.

    `source` is a file path, an array (n,) or (n, channels) at `sample_rate` (default 16 kHz), or Gradio's
    microphone value `(sample_rate, array)`. Float arrays are taken to be full scale at +-1.
    """
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("expected a (sample_rate, samples) pair from the microphone")
        rate, samples = source
        name = "the recording"
        data, rate = _to_float(np.asarray(samples), name), int(rate)
        data = _mix_to_mono(data, name)
    elif isinstance(source, np.ndarray):
        name = "the recording"
        rate = SAMPLE_RATE if sample_rate is None else int(sample_rate)
        data = _mix_to_mono(_to_float(source, name), name)
    elif isinstance(source, (str, Path)):
        name = Path(source).name
        data, rate = _decode_file(Path(source))
        data = _mix_to_mono(data, name)
    else:
        raise AudioError(f"cannot read audio from a {type(source).__name__}; give a file path or an array")
    return _condition(data, rate, name)


def _to_float(samples: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM to float at full scale +-1, because the silence and clipping checks are in dBFS."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    if samples.dtype.kind == "i":
        return (samples / float(2 ** (8 * samples.dtype.itemsize - 1))).astype(np.float32)
    if samples.dtype.kind == "u":
        half = float(2 ** (8 * samples.dtype.itemsize - 1))
        return ((samples - half) / half).astype(np.float32)
    raise AudioError(f"{name}: samples of type {samples.dtype} are not audio")


def _mix_to_mono(data: np.ndarray, name: str) -> np.ndarray:
    """Average the channels; a 2-D array is (samples, channels) unless its first axis is clearly the channel axis."""
    if data.ndim == 1:
        return data
    if data.ndim != 2:
        raise AudioError(f"{name}: expected samples shaped (n,) or (n, channels), got {data.shape}")
    if data.shape[0] < data.shape[1] and data.shape[0] <= 8:
        data = data.T
    return data.mean(axis=1, dtype=np.float32)


def _decode_file(path: Path) -> tuple[np.ndarray, int]:
    """Decode by content, not by extension: soundfile first, then ffmpeg for containers libsndfile lacks."""
    if not path.is_file():
        raise AudioError(f"{path.name}: file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: the file is empty")
    try:
        return _decode_soundfile(path)
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as error:
        if shutil.which("ffmpeg") is None:
            raise AudioError(f"{path.name}: not a readable audio file (unknown format, or damaged)") from error
    return _decode_ffmpeg(path)


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    info = sf.info(str(path), verbose=True)
    if info.samplerate <= 0:
        raise ValueError("no sample rate")
    if info.frames / info.samplerate > MAX_SECONDS:
        raise AudioError(_too_long(path.name, info.frames / info.samplerate))
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    short = _SHORT_DATA.search(info.extra_info)
    declared_short = short and int(short[1]) > int(short[2]) and int(short[1]) not in _SIZE_PLACEHOLDERS
    if declared_short or (0 < len(data) < 0.99 * info.frames):
        raise AudioError(f"{path.name}: the file is truncated (it ends before its header says it should)")
    return data, rate


def _decode_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    """Let ffmpeg decode to float WAV on a pipe; any decoder error means a damaged or truncated file."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-t", str(MAX_SECONDS + 1.0),
               "-vn", "-f", "wav", "-c:a", "pcm_f32le", "-"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as error:
        raise AudioError(f"{path.name}: decoding took too long; the file may be damaged") from error
    if result.returncode != 0 or not result.stdout:
        raise AudioError(f"{path.name}: not a readable audio file (unknown format, or damaged)")
    if result.stderr.strip():
        raise AudioError(f"{path.name}: the file is damaged or truncated (the decoder reported errors)")
    try:
        data, rate = sf.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
    except sf.SoundFileError as error:
        raise AudioError(f"{path.name}: not a readable audio file (unknown format, or damaged)") from error
    return data, rate


def _too_long(name: str, seconds: float) -> str:
    return f"{name}: the recording is {seconds / 60:.1f} minutes long; the limit is {MAX_SECONDS / 60:.0f} minutes"


def _condition(data: np.ndarray, rate: int, name: str) -> Audio:
    """Validate, then resample and normalise; the checks run on the original samples so dBFS means what it says."""
    if rate <= 0:
        raise AudioError(f"{name}: invalid sample rate {rate}")
    if data.size == 0:
        raise AudioError(f"{name}: the recording is empty")
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: the recording contains invalid samples (NaN or infinity)")
    seconds = data.size / rate
    if seconds < MIN_SECONDS:
        raise AudioError(f"{name}: the recording is {seconds:.2f} s long; at least {MIN_SECONDS} s is needed")
    if seconds > MAX_SECONDS:
        raise AudioError(_too_long(name, seconds))
    rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))
    if rms == 0.0:
        raise AudioError(f"{name}: the recording is silent (every sample is zero)")
    level = 20.0 * np.log10(rms)
    if level < SILENCE_DBFS:
        raise AudioError(f"{name}: the recording is silent (level {level:.0f} dBFS); check the microphone")
    warnings = []
    if np.mean(np.abs(data) >= CLIP_LEVEL) > CLIP_FRACTION:
        warnings.append("the recording is clipped (too loud for the microphone); results may be less reliable")
    if rate < NARROW_BAND_RATE:
        warnings.append(f"narrow-band audio ({rate} Hz, e.g. a telephone line); high frequencies are missing")
    if rate != SAMPLE_RATE:
        data = soxr.resample(data, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    waveform = (data / np.max(np.abs(data))).astype(np.float32, copy=False)
    return Audio(waveform=waveform, sample_rate=SAMPLE_RATE, original_sample_rate=rate,
                 duration_s=waveform.size / SAMPLE_RATE, warnings=warnings)

"""Test recordings in the formats phones and browsers produce, encoded with PyAV (the runtime's own FFmpeg), so no
system encoder is needed: Chrome/Android's WebM/Opus, Firefox's Ogg/Opus, iPhone's M4A/AAC, old Android's 3GP/AMR-NB,
and MP3, WAV and FLAC files.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# name -> (container, codec, sample rate, suffix): what the device writes, at the rate it writes it
FORMATS = {
    "webm": ("webm", "libopus", 48000, ".webm"),
    "ogg": ("ogg", "libopus", 48000, ".ogg"),
    "m4a": ("ipod", "aac", 44100, ".m4a"),
    "3gp": ("3gp", "libopencore_amrnb", 8000, ".3gp"),
    "mp3": ("mp3", "libmp3lame", 44100, ".mp3"),
    "wav": ("wav", "pcm_s16le", 48000, ".wav"),
    "flac": ("flac", "flac", 48000, ".flac"),
}


def resample(waveform: np.ndarray, rate: int, to: int) -> np.ndarray:
    """Linear interpolation: good enough for test audio, and no dependency beyond numpy."""
    if rate == to:
        return waveform
    times = np.arange(int(len(waveform) * to / rate)) / to
    return np.interp(times, np.arange(len(waveform)) / rate, waveform).astype(np.float32)


def encode(waveform: np.ndarray, rate: int, name: str, out_dir: Path, stem: str = "clip") -> Path:
    """Write mono float audio (full scale +-1) as format `name`; returns the file."""
    container_format, codec, codec_rate, suffix = FORMATS[name]
    path = Path(out_dir) / f"{stem}{suffix}"
    samples = np.clip(resample(np.asarray(waveform, np.float32), rate, codec_rate), -1.0, 1.0)
    pcm = (samples * 32767).astype(np.int16)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=codec_rate, layout="mono")
        if codec == "libopencore_amrnb":
            stream.bit_rate = 12200
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, len(pcm), frame_size):
            block = pcm[start:start + frame_size]
            if len(block) < frame_size and stream.codec_context.frame_size:
                block = np.pad(block, (0, frame_size - len(block)))
            frame = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
            frame.sample_rate = codec_rate
            frame.pts, frame.time_base = start, Fraction(1, codec_rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path

"""Turn whatever a user hands us (a file, an array, Gradio's microphone tuple) into clean 16 kHz mono float32.

Every way a recording can be unusable ends in an `AudioError` whose message can be shown to the user as is,
so the app, the CLI and the training data loader never see a decoder traceback.

Files are decoded in this process by PyAV (the FFmpeg libraries its wheels ship), one packet at a time: each
decoded frame is mixed to mono, checked and resampled to 16 kHz before the next is read, so only the 16 kHz result
grows. Nothing the file's header claims is trusted for limits: the sample rate and channel count are checked before
decoding and on every frame, decoding stops as soon as the audio actually decoded passes 10 minutes, the samples
decoded over all channels are capped, and so is the wall time per file. The header's length only serves to tell a
truncated file. Only audio demuxers and decoders on an allow-list run (video is never decoded), no subprocess is
started, and FFmpeg's messages are caught per call, never printed.

Peak memory: decoding one input raises the process's peak resident memory by less than `DECODE_MEMORY_MB` (150 MB)
whatever the input claims or contains: the 16 kHz result (at most 38 MB, for 10 minutes), held twice while its
blocks are joined, one decoded frame and its conversions, and FFmpeg's buffers. The one exception is a container's
own index (MP4 sample tables, Matroska cues), which FFmpeg keeps whole and which grows with the size of the file.
tests/test_decode_limits.py measures the hostile inputs (at most about 80 MB, for 9 minutes of audio).
"""
from __future__ import annotations

import errno
import math
import os
import stat
import struct
import time
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import BinaryIO

import av
import av.logging
import numpy as np
import soxr

SAMPLE_RATE = 16000
MIN_SECONDS = 0.3
MAX_SECONDS = 600.0
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384000
MAX_CHANNELS = 8
# Channels x rate x time one file may decode to: 10 minutes of 8 channels at 48 kHz, or of stereo at 192 kHz.
MAX_DECODED_SAMPLES = 8 * 48000 * int(MAX_SECONDS)
DECODE_TIMEOUT_S = 60.0
DECODE_MEMORY_MB = 150
SILENCE_DBFS = -75.0
CLIP_LEVEL = 0.99
CLIP_FRACTION = 1e-3
NARROW_BAND_RATE = 16000

# FFmpeg demuxers that may open a file (a name matches FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2" by its first part).
FORMATS = ("wav", "w64", "aiff", "caf", "au", "flac", "mp3", "ogg", "matroska", "mov", "aac", "amr", "wv")
# Decoders that may run, FFmpeg's PCM ones ("pcm_s16le", "pcm_f32be", "pcm_alaw", ...) included. FFmpeg itself
# refuses any other while it probes the file, so not even a video stream's decoder is opened.
DECODERS = frozenset({"flac", "mp3float", "mp3", "vorbis", "opus", "libopus", "aac", "alac", "amrnb", "amrwb",
                      "libopencore_amrnb", "libopencore_amrwb", "wavpack", "adpcm_ms", "adpcm_ima_wav", "gsm_ms",
                      *(name for name in av.codecs_available if name.startswith("pcm_"))})
_OPEN_OPTIONS = {"format_whitelist": ",".join(FORMATS), "codec_whitelist": ",".join(sorted(DECODERS))}
# A WAV or AIFF header that says its samples run past the end of the file means a truncated file; streaming
# writers put these placeholders there instead of the real size, which is not truncation.
_SIZE_PLACEHOLDERS = {0, 0x7FFFFFFF, 0xFFFFFFFF}
_CHUNKED_HEADERS = {(b"RIFF", b"WAVE"): ("<", b"data"), (b"RIFX", b"WAVE"): (">", b"data"),
                    (b"FORM", b"AIFF"): (">", b"SSND"), (b"FORM", b"AIFC"): (">", b"SSND")}
_MAX_HEADER_CHUNKS = 64
# The header's length only says "truncated" when the decoded audio falls short of it by more than this.
_LENGTH_SLACK = 0.01
_LENGTH_SLACK_S = 0.1
# Packets the decoder may reject (skipped, with a warning) before the file counts as damaged: more than one and
# more than this fraction of them.
_BAD_PACKET_FRACTION = 0.01
# Arrays go through the same checks in blocks of this many samples, so the checks' temporaries stay small.
_ARRAY_BLOCK = 1 << 20

# FFmpeg's errors go to the `av.logging.Capture` around each decode (one per thread); a captured message is never
# printed. Repeats are kept so that a message first logged by one thread is still seen by another.
av.logging.set_level(av.logging.ERROR)
av.logging.set_skip_repeated(False)


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

    `source` is a file path (decoded by content, whatever its extension), an array (n,) or (n, channels) whose
    `sample_rate` must be given, or Gradio's microphone value `(sample_rate, array)`. Float arrays are taken to be
    full scale at +-1.
    """
    name = "the recording"
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("expected a (sample_rate, samples) pair from the microphone")
        rate, samples = source
        return _array_audio(np.asarray(samples), _check_rate(rate, name), name)
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError(f"{name}: an array of samples needs its sample rate; pass sample_rate= with it")
        return _array_audio(source, _check_rate(sample_rate, name), name)
    if isinstance(source, (str, Path)):
        return _decode_file(Path(source))
    raise AudioError(f"cannot read audio from a {type(source).__name__}; give a file path or an array")


def _check_rate(rate: object, name: str) -> int:
    """A sample rate is a whole number of samples per second within what the front end can use."""
    if (isinstance(rate, bool) or not isinstance(rate, Real) or not math.isfinite(rate) or rate != int(rate)
            or rate <= 0):
        raise AudioError(f"{name}: invalid sample rate {rate!r}; it must be a whole number of samples per second")
    rate = int(rate)
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(f"{name}: the sample rate {rate} Hz is too low for sound analysis "
                         f"(at least {MIN_SAMPLE_RATE} Hz is needed)")
    if rate > MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: the sample rate {rate} Hz is above the {MAX_SAMPLE_RATE} Hz supported")
    return rate


def _array_audio(samples: np.ndarray, rate: int, name: str) -> Audio:
    """Arrays are already in memory, so only their shape and length are checked before they are conditioned."""
    if samples.ndim not in (1, 2):
        raise AudioError(f"{name}: expected samples shaped (n,) or (n, channels), got {samples.shape}")
    if samples.size == 0:
        raise AudioError(f"{name}: the recording is empty (it holds no samples)")
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1] and samples.shape[0] <= MAX_CHANNELS:
        samples = samples.T  # (channels, n): the first axis is clearly the channel axis
    if len(samples) > MAX_SECONDS * rate:
        raise AudioError(f"{name}: the recording is {_duration(len(samples) / rate)} long; "
                         f"the limit is {MAX_SECONDS / 60:.0f} minutes")
    data = _to_float(samples, name)
    mono = data if data.ndim == 1 else data.mean(axis=1, dtype=np.float32)
    conditioner = _Conditioner(rate, name, borrowed=True)
    for start in range(0, len(mono), _ARRAY_BLOCK):
        conditioner.add(mono[start:start + _ARRAY_BLOCK])
    return conditioner.finish()


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


class _Conditioner:
    """Checks and resamples mono blocks as they arrive, so that a long input is never held at its own rate.

    The level, clipping and length checks run on the original samples (after the mono mix), so dBFS means what it
    says; the output is the 16 kHz waveform, peak-normalised. `borrowed`: the blocks are views of an array the
    caller keeps, left as they are until `finish` writes the one new waveform from them (a decoded frame is copied
    at once instead: a view of it would keep FFmpeg's whole frame buffer alive).
    """

    def __init__(self, rate: int, name: str, borrowed: bool = False) -> None:
        self.rate, self.name, self.borrowed = rate, name, borrowed
        self.count = 0
        self.sum_squares = 0.0
        self.clipped = 0
        self.peak = 0.0  # of the original samples: the output's own peak when nothing is resampled
        self.warnings: list[str] = []
        self.blocks: list[np.ndarray] = []
        self.resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(
            rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def add(self, block: np.ndarray) -> None:
        # The float32 dot product is finite exactly when every sample is (short of overflow, redone in float64), and
        # is digits enough for a level in dB; the float64 copy it replaces was over a third of load_audio's time.
        squares = float(np.dot(block, block))
        if not math.isfinite(squares):
            if not np.isfinite(block).all():
                raise AudioError(f"{self.name}: the recording contains invalid samples (NaN or infinity)")
            wide = block.astype(np.float64)
            squares = float(np.dot(wide, wide))
        self.count += block.size
        if self.count > MAX_SECONDS * self.rate:
            raise AudioError(f"{self.name}: the recording is longer than {MAX_SECONDS / 60:.0f} minutes; "
                             f"the limit is {MAX_SECONDS / 60:.0f} minutes")
        self.sum_squares += squares
        # Two reductions decide most blocks; only a block that reaches the clip level is counted sample by sample.
        peak = _peak(block)
        self.peak = max(self.peak, peak)
        if peak >= CLIP_LEVEL:
            self.clipped += int(np.count_nonzero(np.abs(block) >= CLIP_LEVEL))
        if self.resampler is not None:
            self.blocks.append(self.resampler.resample_chunk(block))
        else:
            self.blocks.append(block if self.borrowed else block.copy())

    def finish(self) -> Audio:
        name, seconds = self.name, self.count / self.rate
        if self.count == 0:
            raise AudioError(f"{name}: the recording is empty (it holds no samples)")
        if seconds < MIN_SECONDS:
            raise AudioError(f"{name}: the recording is {math.floor(seconds * 1000) / 1000:.3f} s long; "
                             f"at least {MIN_SECONDS} s is needed")
        rms = math.sqrt(self.sum_squares / self.count)
        if rms == 0.0:
            raise AudioError(f"{name}: the recording is silent (every sample is zero)")
        level = 20.0 * math.log10(rms)
        if level < SILENCE_DBFS:
            raise AudioError(f"{name}: the recording is silent (level {level:.0f} dBFS); check the microphone")
        warnings = list(self.warnings)
        if self.clipped / self.count > CLIP_FRACTION:
            warnings.append("the recording is clipped (too loud for the microphone); results may be less reliable")
        if self.rate < NARROW_BAND_RATE:
            warnings.append(f"narrow-band audio ({self.rate} Hz, e.g. a telephone line); high frequencies are missing")
        if self.resampler is not None:
            self.blocks.append(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        # Resampling moves the peak; without it the samples are the ones add() saw.
        peak = self.peak if self.resampler is None else max(map(_peak, self.blocks))
        if peak == 0.0:
            raise AudioError(f"{name}: the recording is silent (nothing is left at {SAMPLE_RATE} Hz)")
        if len(self.blocks) == 1 and self.borrowed and self.resampler is None:
            waveform = self.blocks[0] / peak  # the one new array, written in one pass
        else:
            # One block that is not borrowed is already a copy of its own, so it is the result; more blocks (borrowed
            # or not) are joined into a new array, the one moment the 16 kHz result is held twice.
            waveform = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
            waveform /= peak
        self.blocks.clear()
        return Audio(waveform=waveform, sample_rate=SAMPLE_RATE, original_sample_rate=self.rate,
                     duration_s=waveform.size / SAMPLE_RATE, warnings=warnings)


def _peak(block: np.ndarray) -> float:
    """max |block| (0 for an empty block), from two reductions and no |block| temporary."""
    return max(float(block.max()), -float(block.min())) if block.size else 0.0


def _duration(seconds: float) -> str:
    """A length for a message, rounded down so that it never reads as the limit it exceeds or falls short of."""
    if seconds < 60:
        return f"{math.floor(seconds * 10) / 10:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {math.floor(seconds % 60 * 10) / 10:.1f} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def _decode_file(path: Path) -> Audio:
    """Open the file ourselves (no FFmpeg URL or "-" for stdin) and refuse anything but a non-empty regular file."""
    name = path.name or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO must not block the open
    except OSError as error:
        raise AudioError(f"{name}: {_open_error(error)}") from error
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise AudioError(f"{name}: this is a directory, not an audio file")
        raise AudioError(f"{name}: not a regular file (a device, pipe or socket cannot be read as audio)")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size == 0:
            raise AudioError(f"{name}: the file is empty")
        end = _header_data_end(handle)
        if end is not None and end > info.st_size:
            raise AudioError(f"{name}: the file is truncated (it ends before its header says it should)")
        with av.logging.Capture(local=True) as logs:
            return _decode_container(handle, name, logs)


def _open_error(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "file not found"
    if error.errno == errno.ELOOP:
        return "the path is a loop of symbolic links"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.ENXIO:
        return "not a regular file (a device, pipe or socket cannot be read as audio)"
    return f"cannot be opened ({error.strerror})"


def _header_data_end(handle: BinaryIO) -> int | None:
    """Where a WAV or AIFF header says the samples end; None for other files and for placeholder sizes.

    FFmpeg trims the length a WAV header declares to the file's size, so it cannot see that the file is cut short.
    """
    try:
        head = handle.read(12)
        layout = _CHUNKED_HEADERS.get((head[:4], head[8:12]))
        if layout is None:
            return None
        endian, data_id = layout
        offset = 12
        for _ in range(_MAX_HEADER_CHUNKS):
            handle.seek(offset)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            (size,) = struct.unpack(endian + "I", chunk[4:])
            if chunk[:4] == data_id:
                return None if size in _SIZE_PLACEHOLDERS else offset + 8 + size
            offset += 8 + size + (size & 1)
        return None
    finally:
        handle.seek(0)


def _decode_container(handle: BinaryIO, name: str, logs: list[tuple[int, str, str]]) -> Audio:
    """Open the file with FFmpeg's allowed demuxers only and decode its first audio stream."""
    try:
        container = av.open(handle, container_options=_OPEN_OPTIONS)
    except av.FFmpegError as error:
        refused = [log_name for _, log_name, message in logs if message.startswith("Format not on whitelist")]
        if refused:
            raise AudioError(f"{name}: {refused[0]} files are not supported; use an audio file (WAV, FLAC, MP3, "
                             f"Ogg, Opus, WebM, M4A, ...)") from error
        raise AudioError(f"{name}: not a readable audio file (unknown format, or damaged)") from error
    with container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise AudioError(f"{name}: the file holds no audio")
        decoder = stream.codec_context
        if decoder.name not in DECODERS:
            raise AudioError(f"{name}: audio coded as {decoder.name} is not supported")
        conditioner = _Conditioner(_check_rate(decoder.sample_rate, name), name)
        _check_channels(decoder.channels, name)
        decoder.thread_count = 1  # also keeps every log message on this thread, where it is captured
        try:
            packets, bad = _decode_stream(container, stream, conditioner, logs)
        except av.FFmpegError as error:
            raise AudioError(f"{name}: the file is damaged or truncated (the decoder reported errors)") from error
        if bad > max(1, _BAD_PACKET_FRACTION * packets):
            raise AudioError(f"{name}: the file is damaged ({bad} of its {packets} blocks of audio cannot be decoded)")
        if bad:
            conditioner.warnings.append(f"part of the file could not be decoded ({bad} of {packets} blocks skipped); "
                                        f"results may be less reliable")
        declared = _declared_seconds(container, stream)
        decoded_s = conditioner.count / conditioner.rate
        if declared is not None and decoded_s < declared * (1 - _LENGTH_SLACK) - _LENGTH_SLACK_S:
            raise AudioError(f"{name}: the file is truncated or its header is wrong (it holds "
                             f"{_duration(decoded_s)} of audio; its header says {_duration(declared)})")
        return conditioner.finish()


def _decode_stream(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                   conditioner: _Conditioner, logs: list[tuple[int, str, str]]) -> tuple[int, int]:
    """Feed every decoded frame to `conditioner`; returns (packets, packets the decoder rejected or logged errors on).

    A rejected packet is skipped, as FFmpeg's own tools do: `cat a.mp3 b.mp3` puts b's ID3 tag in the stream.
    An error of the demuxer itself ends decoding (an FFmpegError for the caller).
    """
    name = conditioner.name
    deadline = time.monotonic() + DECODE_TIMEOUT_S
    packets = bad = decoded = 0
    seen = len(logs)
    for packet in container.demux(stream):
        packets += 1
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            frames = []
            bad += 1
        else:
            bad += int(len(logs) > seen)
        seen = len(logs)
        for frame in frames:
            channels = frame.layout.nb_channels
            _check_channels(channels, name)
            if frame.sample_rate != conditioner.rate:
                raise AudioError(f"{name}: the sample rate changes part-way through the file "
                                 f"({conditioner.rate} Hz, then {frame.sample_rate} Hz)")
            decoded += frame.samples * channels
            if decoded > MAX_DECODED_SAMPLES:
                raise AudioError(f"{name}: too much audio data to decode ({channels} channels at "
                                 f"{frame.sample_rate} Hz); mix it down or resample it to 48 kHz first")
            conditioner.add(_mono(frame, name))
        if time.monotonic() > deadline:
            raise AudioError(f"{name}: decoding took longer than {DECODE_TIMEOUT_S:.0f} s; the file may be damaged")
    return packets, bad


def _check_channels(channels: int, name: str) -> None:
    if channels > MAX_CHANNELS:
        raise AudioError(f"{name}: {channels} audio channels; at most {MAX_CHANNELS} are supported")


def _declared_seconds(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    """The length the file's header (or FFmpeg's estimate from it) claims: only ever used to detect truncation."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _mono(frame: av.AudioFrame, name: str) -> np.ndarray:
    """One decoded frame as mono float32 at full scale +-1: the mean of its channels, as for arrays."""
    samples = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        samples = samples.reshape(-1, channels).T
    samples = _to_float(samples, name)
    return samples[0] if channels == 1 else samples.mean(axis=0, dtype=np.float32)

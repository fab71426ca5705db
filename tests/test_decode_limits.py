"""Decoding whatever a file claims: hostile inputs get a clear message or their real length, within bounded memory.

Every hostile file is generated here. Peak memory is measured, not timed: `load_audio` runs in a fresh Python
process that reports how far its peak resident memory rose over the process with coughkd.audio imported. Linux's
VmHWM is that peak; it is reset to the current size first (ru_maxrss cannot be: a child starts with its parent's).
"""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from coughkd import audio as audio_module
from coughkd.audio import DECODE_MEMORY_MB, SAMPLE_RATE, AudioError, load_audio

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "assets" / "examples"
DATASET_CLIPS = ["00096021-2cb2-4098-b906-4878a5e225a3.mp3", "002f642a-8406-49c0-bf19-310ad1c342de.mp3"]
UNDECODABLE = "098d66e5-bda6-4e99-b787-ab890046c44b.mp3"
TOO_LONG = "the recording is longer than 10 minutes; the limit is 10 minutes"
MEASURE = """
import json, re, sys
from coughkd.audio import AudioError, load_audio
def kib(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read())[1])
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # the peak (VmHWM) restarts from the current resident size
before = kib("VmRSS")
try:
    audio = load_audio(sys.argv[1])
    result = {"duration_s": audio.duration_s, "warnings": audio.warnings}
except AudioError as error:
    result = {"error": str(error)}
result["extra_mb"] = (kib("VmHWM") - before) / 1024
print(json.dumps(result))
"""


def decode_in_child(path: Path) -> dict:
    """load_audio(path) in a fresh process: its result, how much it raised peak memory, and a silent stderr."""
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=True)
    assert done.stderr == ""
    result = json.loads(done.stdout)
    print(f"{path.name}: {result}")
    assert result["extra_mb"] < DECODE_MEMORY_MB, result
    return result


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def tone_and_noise(tmp_path: Path, name: str, seconds: float, rate: int = 48000, *codec: str) -> Path:
    """A sine over noise, encoded by the system's ffmpeg (independent of the FFmpeg inside PyAV)."""
    path = tmp_path / name
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
           "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:a=0.05:r={rate}", "-filter_complex", "amix", *codec, str(path))
    return path


def write_flac_of_zeros(path: Path, rate: int, channels: int, seconds: int) -> Path:
    block = np.zeros((rate, channels), dtype=np.int16)
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16", format="FLAC") as flac:
        for _ in range(seconds):
            flac.write(block)
    return path


def write_gzip_of_zeros(path: Path, mebibytes: int) -> Path:
    """A valid gzip of `mebibytes` MiB of zeros: one deflate block for 1 MiB, repeated (a full flush makes each
    block stand alone), so 4 GiB of zeros take 4 MB and a second to write."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    zeros, crc = bytes(1 << 26), 0
    for _ in range(mebibytes >> 6):
        crc = zlib.crc32(zeros, crc)
    with open(path, "wb") as handle:
        handle.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
        for _ in range(mebibytes):
            handle.write(block)
        handle.write(deflate.flush())
        handle.write(struct.pack("<II", crc, (mebibytes << 20) & 0xFFFFFFFF))
    return path


def mp3_claiming(source: Path, target: Path, seconds: float, rate: int = 48000) -> Path:
    """Rewrite the frame count of the mp3's Xing/Info header so that it claims `seconds`."""
    data = bytearray(source.read_bytes())
    at = max(data.find(b"Xing"), data.find(b"Info"))
    assert at > 0 and int.from_bytes(data[at + 4:at + 8], "big") & 1, "no Xing frame count"
    data[at + 8:at + 12] = int(seconds * rate / 1152).to_bytes(4, "big")
    target.write_bytes(data)
    return target


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def ogg_claiming(source: Path, target: Path, seconds: float) -> Path:
    """Set the granule position of the last Ogg page (where the length is read from) to `seconds` at 48 kHz."""
    data = bytearray(source.read_bytes())
    last = data.rfind(b"OggS")
    segments = data[last + 26]
    size = 27 + segments + sum(data[last + 27:last + 27 + segments])
    data[last + 6:last + 14] = struct.pack("<q", int(seconds * 48000))
    data[last + 22:last + 26] = bytes(4)
    data[last + 22:last + 26] = struct.pack("<I", _ogg_crc(bytes(data[last:last + size])))
    target.write_bytes(data)
    return target


def old_soundfile_path(path: Path) -> np.ndarray:
    """What load_audio returned before PyAV: libsndfile's decode, channel mean, soxr HQ to 16 kHz, peak-normalised."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return mono / np.max(np.abs(mono))


@pytest.fixture(scope="module")
def minute_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tone_and_noise(tmp_path_factory.mktemp("mp3"), "minute.mp3", 60)


@pytest.fixture(scope="module")
def short_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tone_and_noise(tmp_path_factory.mktemp("mp3"), "short.mp3", 19)


@pytest.mark.slow
def test_flac_of_8_channels_at_655350_hz(tmp_path: Path) -> None:
    """3.5 MB that libsndfile would have read into 12 GiB: refused from its sample rate before any decoding."""
    path = write_flac_of_zeros(tmp_path / "bomb.flac", 655350, 8, 599)
    assert path.stat().st_size < 5_000_000
    result = decode_in_child(path)
    assert result["error"] == "bomb.flac: the sample rate 655350 Hz is above the 384000 Hz supported"


@pytest.mark.slow
def test_flac_within_the_rate_limit_stops_at_the_sample_cap(tmp_path: Path) -> None:
    """8 channels at 384 kHz for 2 minutes is allowed by each limit alone; decoding stops at the cap on samples."""
    result = decode_in_child(write_flac_of_zeros(tmp_path / "dense.flac", 384000, 8, 120))
    assert result["error"] == ("dense.flac: too much audio data to decode (8 channels at 384000 Hz); "
                               "mix it down or resample it to 48 kHz first")


@pytest.mark.slow
def test_gzip_of_zeros_named_wav(tmp_path: Path) -> None:
    path = write_gzip_of_zeros(tmp_path / "zeros.wav", 4096)
    assert 3_000_000 < path.stat().st_size < 6_000_000
    assert decode_in_child(path)["error"] == "zeros.wav: not a readable audio file (unknown format, or damaged)"


def test_concatenated_mp3_is_decoded_whole(tmp_path: Path, short_mp3: Path) -> None:
    """`cat a.mp3 a.mp3`: the first header counts only a; all of both is decoded, the second tag is skipped."""
    single = load_audio(short_mp3).duration_s
    twice = tmp_path / "twice.mp3"
    twice.write_bytes(short_mp3.read_bytes() * 2)
    result = decode_in_child(twice)
    assert result["duration_s"] == pytest.approx(2 * single, abs=0.1)
    assert len(result["warnings"]) == 1
    assert re.fullmatch(r"part of the file could not be decoded \(1 of \d+ blocks skipped\); "
                        r"results may be less reliable", result["warnings"][0])


@pytest.mark.slow
def test_mp3_whose_header_says_1_minute_but_holds_20(tmp_path: Path, minute_mp3: Path) -> None:
    long = tmp_path / "twenty.mp3"
    long.write_bytes(minute_mp3.read_bytes() * 20)
    assert decode_in_child(long)["error"] == "twenty.mp3: " + TOO_LONG


@pytest.mark.slow
def test_mp3_whose_header_says_1_minute_but_holds_9(tmp_path: Path, minute_mp3: Path) -> None:
    """The largest result there is (9 minutes at 16 kHz) within the memory bound, and its real length."""
    nine = tmp_path / "nine.mp3"
    nine.write_bytes(minute_mp3.read_bytes() * 9)
    assert decode_in_child(nine)["duration_s"] == pytest.approx(9 * load_audio(minute_mp3).duration_s, abs=0.5)


@pytest.mark.parametrize("name", ["claims.mp3", "claims.opus"])
def test_short_file_whose_header_claims_3_hours(tmp_path: Path, short_mp3: Path, name: str) -> None:
    """Not "too long": 19 s are decoded, so the file is cut short or its header lies, and the message says which."""
    if name.endswith(".mp3"):
        path = mp3_claiming(short_mp3, tmp_path / name, 3 * 3600)
    else:
        ffmpeg("-i", str(short_mp3), str(tmp_path / "short.opus"))
        path = ogg_claiming(tmp_path / "short.opus", tmp_path / name, 3 * 3600)
    assert re.fullmatch(rf"{name}: the file is truncated or its header is wrong \(it holds 19.0 s of audio; "
                        r"its header says (2 h 59|3 h 0) min\)", decode_in_child(path)["error"])


@pytest.mark.slow
def test_hour_long_m4a(tmp_path: Path) -> None:
    """Stopped after 10 minutes of decoding, and said to be longer than that (not "10.0 minutes long")."""
    path = tmp_path / "hour.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=3600", "-b:a", "16k", str(path))
    assert decode_in_child(path)["error"] == "hour.m4a: " + TOO_LONG


def test_wav_with_streaming_placeholder_sizes_is_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "stream.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 32000), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[4:8] = data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(data)
    assert load_audio(path).duration_s == pytest.approx(2.0)


def test_same_waveform_as_the_old_soundfile_path(cough_data: Path) -> None:
    """The shipped model's scores must not move: PyAV's mp3 decode matches libsndfile's (mpg123) within float noise."""
    for path in [*sorted(EXAMPLES.glob("*.mp3")), *(cough_data / "raw" / name for name in DATASET_CLIPS)]:
        new, old = load_audio(path).waveform, old_soundfile_path(path)
        assert new.size == old.size, path.name
        assert np.max(np.abs(new - old)) < 1e-4, path.name


def test_decoder_errors_never_reach_stderr(tmp_path: Path, cough_data: Path) -> None:
    source = tmp_path / "noise.wav"
    sf.write(source, np.random.default_rng(0).uniform(-0.5, 0.5, 48000 * 5), 48000)
    for name in ("cut.flac", "cut.webm", "cut.mp3"):
        ffmpeg("-i", str(source), str(tmp_path / ("whole" + Path(name).suffix)))
        whole = (tmp_path / ("whole" + Path(name).suffix)).read_bytes()
        (tmp_path / name).write_bytes(whole[: len(whole) // 2])
        assert "truncated" in decode_in_child(tmp_path / name)["error"]
    assert "not a readable audio file" in decode_in_child(cough_data / "raw" / UNDECODABLE)["error"]


def test_rate_change_part_way(tmp_path: Path, short_mp3: Path) -> None:
    ffmpeg("-i", str(short_mp3), "-t", "3", str(tmp_path / "a48.mp3"))
    ffmpeg("-i", str(short_mp3), "-t", "3", "-ar", "44100", str(tmp_path / "a44.mp3"))
    (tmp_path / "mixed.mp3").write_bytes((tmp_path / "a48.mp3").read_bytes() + (tmp_path / "a44.mp3").read_bytes())
    with pytest.raises(AudioError, match=r"mixed.mp3: the sample rate changes part-way .*48000 Hz, then 44100 Hz"):
        load_audio(tmp_path / "mixed.mp3")


def test_video_is_never_decoded(tmp_path: Path) -> None:
    both, video, avi = tmp_path / "both.mp4", tmp_path / "video.mp4", tmp_path / "audio.avi"
    picture = ["-f", "lavfi", "-i", "testsrc=d=2:s=64x64", "-c:v", "mpeg4"]
    ffmpeg("-f", "lavfi", "-i", "sine=d=2", *picture, "-c:a", "aac", str(both))
    ffmpeg(*picture, str(video))
    ffmpeg("-f", "lavfi", "-i", "sine=d=2", "-c:a", "pcm_s16le", str(avi))
    assert load_audio(both).duration_s == pytest.approx(2.0, abs=0.05)
    with pytest.raises(AudioError, match="video.mp4: the file holds no audio"):
        load_audio(video)
    with pytest.raises(AudioError, match="audio.avi: avi files are not supported"):
        load_audio(avi)


def test_audio_codec_off_the_allow_list(tmp_path: Path) -> None:
    path = tmp_path / "broadcast.mp2"
    ffmpeg("-f", "lavfi", "-i", "sine=d=2", "-c:a", "mp2", str(path))
    with pytest.raises(AudioError, match="broadcast.mp2: audio coded as mp2 is not supported"):
        load_audio(path)


@pytest.mark.parametrize(("name", "codec"), [("a.aiff", []), ("a.caf", []), ("a.au", []), ("a.w64", []),
                                             ("a.wv", []), ("a.aac", []), ("alac.m4a", ["-c:a", "alac"]),
                                             ("alaw.wav", ["-c:a", "pcm_alaw"]), ("adpcm.wav", ["-c:a", "adpcm_ms"])])
def test_other_allowed_formats(tmp_path: Path, name: str, codec: list[str]) -> None:
    audio = load_audio(tone_and_noise(tmp_path, name, 2, 44100, *codec))
    assert audio.duration_s == pytest.approx(2.0, abs=0.05) and audio.original_sample_rate == 44100


def test_amr_in_3gp(tmp_path: Path) -> None:
    """Phones' AMR: the system's ffmpeg has no AMR encoder, so PyAV's own writes it."""
    path, rate = tmp_path / "phone.3gp", 8000
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libopencore_amrnb", rate=rate, layout="mono")
        stream.bit_rate = 12200
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    audio = load_audio(path)
    assert audio.duration_s == pytest.approx(2.0, abs=0.05) and audio.original_sample_rate == rate
    assert any("narrow-band" in w for w in audio.warnings)


def test_no_child_process_is_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WebM and M4A went to an ffmpeg subprocess, which outlived a killed app; now they decode in this process."""
    paths = [tone_and_noise(tmp_path, name, 2) for name in ("a.webm", "a.m4a")]

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_subprocess)
    for path in paths:
        assert load_audio(path).duration_s == pytest.approx(2.0, abs=0.05)


def test_cap_on_decoded_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf.write(tmp_path / "stereo.wav", np.full((96000, 2), 0.1, dtype=np.float32), 48000)
    monkeypatch.setattr(audio_module, "MAX_DECODED_SAMPLES", 100_000)
    with pytest.raises(AudioError, match=r"stereo.wav: too much audio data to decode \(2 channels at 48000 Hz\)"):
        load_audio(tmp_path / "stereo.wav")


def test_wall_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf.write(tmp_path / "slow.wav", np.full(32000, 0.1, dtype=np.float32), 16000)
    monkeypatch.setattr(audio_module, "DECODE_TIMEOUT_S", -1.0)
    with pytest.raises(AudioError, match="slow.wav: decoding took longer than .* s; the file may be damaged"):
        load_audio(tmp_path / "slow.wav")


def test_each_thread_sees_its_own_decoder_errors(tmp_path: Path) -> None:
    """FFmpeg's messages are caught per thread: a damaged file in one thread never fails a good one in another."""
    source = tmp_path / "noise.wav"
    sf.write(source, np.random.default_rng(1).uniform(-0.5, 0.5, 48000 * 3), 48000)
    ffmpeg("-i", str(source), str(tmp_path / "good.flac"))
    data = (tmp_path / "good.flac").read_bytes()
    (tmp_path / "bad.flac").write_bytes(data[: len(data) // 2])
    outcomes: dict[str, set[str]] = {"good.flac": set(), "bad.flac": set()}

    def decode(name: str) -> None:
        for _ in range(20):
            try:
                outcomes[name].add(f"{load_audio(tmp_path / name).duration_s:.2f}")
            except AudioError as error:
                outcomes[name].add(str(error).split(" (")[0])

    threads = [threading.Thread(target=decode, args=(name,)) for name in outcomes for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == {"good.flac": {"3.00"}, "bad.flac": {"bad.flac: the file is truncated or its header is wrong"}}

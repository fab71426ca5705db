"""load_audio: every supported input kind, and a clear AudioError for every kind of unusable input."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from coughkd.audio import SAMPLE_RATE, Audio, AudioError, load_audio

UNDECODABLE = ["098d66e5-bda6-4e99-b787-ab890046c44b.mp3", "a9ecaf03-40a5-4b43-aaf3-f076f84a69aa.mp3"]


def tone(seconds: float = 2.0, rate: int = 16000, amplitude: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def check_clean(audio: Audio, seconds: float, original_rate: int) -> None:
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.original_sample_rate == original_rate
    assert audio.waveform.dtype == np.float32 and audio.waveform.ndim == 1
    assert audio.duration_s == pytest.approx(seconds, abs=0.06)
    assert audio.waveform.size == pytest.approx(seconds * SAMPLE_RATE, abs=0.06 * SAMPLE_RATE)
    assert np.max(np.abs(audio.waveform)) == pytest.approx(1.0, abs=1e-6)


def ffmpeg_encode(tmp_path: Path, source: Path, name: str) -> Path:
    target = tmp_path / name
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), str(target)], check=True)
    return target


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(2.0, 44100), 44100, subtype="PCM_16")
    return path


def test_wav_file(wav: Path) -> None:
    check_clean(load_audio(wav), 2.0, 44100)
    check_clean(load_audio(str(wav)), 2.0, 44100)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("name", ["a.mp3", "a.ogg", "a.opus", "a.webm", "a.flac", "a.m4a"])
def test_compressed_formats(tmp_path: Path, wav: Path, name: str) -> None:
    audio = load_audio(ffmpeg_encode(tmp_path, wav, name))
    assert audio.duration_s == pytest.approx(2.0, abs=0.1)
    assert audio.original_sample_rate in (44100, 48000)
    assert audio.warnings == []


def test_wav_named_mp3_loads_by_content(tmp_path: Path, wav: Path) -> None:
    disguised = tmp_path / "really_a_wav.mp3"
    shutil.copy(wav, disguised)
    check_clean(load_audio(disguised), 2.0, 44100)


def test_text_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        load_audio(path)


def test_espeak_speech(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "cough detection test"], check=True)
    audio = load_audio(path)
    assert audio.original_sample_rate == sf.info(path).samplerate
    assert audio.duration_s == pytest.approx(sf.info(path).duration, abs=0.01)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_sox_stereo_24bit(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "24", str(path), "synth", "1.5",
                    "sine", "300", "sine", "500", "gain", "-6"], check=True)
    check_clean(load_audio(path), 1.5, 48000)


def test_gradio_microphone_tuple_stereo_48k() -> None:
    left = tone(3.0, 48000)
    stereo = (np.stack([left, 0.5 * left], axis=1) * 32767).astype(np.int16)
    audio = load_audio((48000, stereo))
    check_clean(audio, 3.0, 48000)
    mono = load_audio((48000, (left * 32767).astype(np.int16)))
    np.testing.assert_allclose(audio.waveform, mono.waveform, atol=1e-3)


def test_array_with_sample_rate() -> None:
    check_clean(load_audio(tone(1.0, 22050), sample_rate=22050), 1.0, 22050)
    check_clean(load_audio(tone(1.0, 16000), sample_rate=16000), 1.0, 16000)
    check_clean(load_audio(tone(1.0, 16000), sample_rate=16000.0), 1.0, 16000)
    channels_first = np.stack([tone(1.0), tone(1.0)])
    check_clean(load_audio(channels_first, sample_rate=16000), 1.0, 16000)


def test_array_input_is_left_as_given() -> None:
    """A 16 kHz float32 array is read in place, never normalised in place: the caller's samples stay theirs."""
    samples = 0.5 * tone(1.0, 16000).astype(np.float32)
    given = samples.copy()
    audio = load_audio(samples, sample_rate=16000)
    np.testing.assert_array_equal(samples, given)
    assert not np.shares_memory(audio.waveform, samples)
    np.testing.assert_array_equal(audio.waveform, given / np.abs(given).max())


def test_array_without_sample_rate_is_refused() -> None:
    """A 48 kHz array used to be taken for 16 kHz and scored three times too slow."""
    with pytest.raises(AudioError, match="needs its sample rate; pass sample_rate="):
        load_audio(tone(1.0, 48000))
    with pytest.raises(AudioError, match="invalid sample rate None"):
        load_audio((None, tone(1.0)))  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), 0, -16000, 16000.5, "16000", True])
def test_invalid_sample_rates(rate: object) -> None:
    with pytest.raises(AudioError, match="invalid sample rate"):
        load_audio(tone(1.0), sample_rate=rate)  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="invalid sample rate"):
        load_audio((rate, tone(1.0)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("rate", "message"), [(1, "1 Hz is too low"), (3999, "3999 Hz is too low"),
                                               (384001, "384001 Hz is above the 384000 Hz supported")])
def test_out_of_range_sample_rates(rate: int, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        load_audio(tone(1.0, 8000), sample_rate=rate)


def test_resampling_keeps_the_tone() -> None:
    audio = load_audio(tone(2.0, 48000, hz=1000.0), sample_rate=48000)
    spectrum = np.abs(np.fft.rfft(audio.waveform))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / audio.waveform.size
    assert peak_hz == pytest.approx(1000.0, abs=2.0)


def test_dataset_mp3s(cough_data: Path) -> None:
    phone = load_audio(cough_data / "raw" / "00096021-2cb2-4098-b906-4878a5e225a3.mp3")
    assert phone.original_sample_rate == 8000
    assert any("narrow-band" in w for w in phone.warnings)
    telegram = load_audio(cough_data / "raw" / "002f642a-8406-49c0-bf19-310ad1c342de.mp3")
    assert telegram.original_sample_rate == 48000
    assert not any("narrow-band" in w for w in telegram.warnings)


@pytest.mark.parametrize("name", UNDECODABLE)
def test_dataset_undecodable_mp3(cough_data: Path, name: str) -> None:
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(cough_data / "raw" / name)


def test_narrow_band_warning() -> None:
    audio = load_audio(tone(2.0, 8000), sample_rate=8000)
    check_clean(audio, 2.0, 8000)
    assert any("narrow-band" in w and "8000 Hz" in w for w in audio.warnings)


def test_clipped_audio_loads_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "clipped.wav"
    sf.write(path, np.clip(tone(2.0, 16000, amplitude=3.0), -1, 1), 16000, subtype="PCM_16")
    audio = load_audio(path)
    check_clean(audio, 2.0, 16000)
    assert any("clipped" in w for w in audio.warnings)
    assert load_audio(tone(2.0), sample_rate=16000).warnings == []


@pytest.mark.parametrize(("samples", "message"), [
    (np.zeros(0, dtype=np.float32), "empty"),
    (np.zeros((0, 2), dtype=np.float32), "empty"),
    (np.zeros(32000, dtype=np.float32), "silent"),
    (np.full(32000, 1e-5, dtype=np.float32) * np.sign(np.sin(np.arange(32000))), "silent"),
    (tone(0.2), "0.200 s long; at least 0.3 s"),
    (tone(0.3)[:-1], "0.299 s long; at least 0.3 s"),
    (np.where(np.arange(32000) == 500, np.nan, tone(2.0)).astype(np.float32), "NaN or infinity"),
    (np.where(np.arange(32000) == 500, np.inf, tone(2.0)).astype(np.float32), "NaN or infinity"),
    (np.array(["a", "b"] * 8000), "not audio"),
])
def test_unusable_arrays(samples: np.ndarray, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        load_audio(samples, sample_rate=16000)


def test_too_long_array() -> None:
    with pytest.raises(AudioError, match="10 min 1.0 s long; the limit is 10 minutes"):
        load_audio(np.zeros(601 * 4000, dtype=np.int16) + 1000, sample_rate=4000)


def test_too_long_file(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, np.full(4000 * 601, 0.1, dtype=np.float32), 4000)
    with pytest.raises(AudioError, match="long.wav: the recording is longer than 10 minutes; the limit is 10 minutes"):
        load_audio(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: the file is empty"):
        load_audio(tmp_path / "empty.wav")
    sf.write(tmp_path / "no_frames.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no_frames.wav: the recording is empty"):
        load_audio(tmp_path / "no_frames.wav")


def test_sample_rate_of_a_file_is_checked(tmp_path: Path) -> None:
    sf.write(tmp_path / "one_hz.wav", np.full(10, 0.5, dtype=np.float32), 1)
    with pytest.raises(AudioError, match="one_hz.wav: the sample rate 1 Hz is too low"):
        load_audio(tmp_path / "one_hz.wav")


def test_too_many_channels(tmp_path: Path) -> None:
    sf.write(tmp_path / "nine.wav", np.tile(tone(1.0)[:, None], (1, 9)), 16000)
    with pytest.raises(AudioError, match="nine.wav: 9 audio channels; at most 8"):
        load_audio(tmp_path / "nine.wav")


def test_paths_that_are_not_regular_files(tmp_path: Path) -> None:
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(AudioError, match="folder.wav: this is a directory"):
        load_audio(tmp_path / "folder.wav")
    with pytest.raises(AudioError, match="zero: not a regular file"):
        load_audio("/dev/zero")
    os.mkfifo(tmp_path / "pipe.wav")  # opening a FIFO for reading would wait for a writer forever
    with pytest.raises(AudioError, match="pipe.wav: not a regular file"):
        load_audio(tmp_path / "pipe.wav")
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(AudioError, match="a.wav: the path is a loop of symbolic links"):
        load_audio(tmp_path / "a.wav")


def test_dash_is_a_file_name_not_stdin(tmp_path: Path, wav: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AudioError, match="-: file not found"):
        load_audio("-")
    shutil.copy(wav, tmp_path / "-")
    check_clean(load_audio("-"), 2.0, 44100)


def test_truncated_wav(tmp_path: Path, wav: Path) -> None:
    data = wav.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioError, match="cut.wav: the file is truncated"):
        load_audio(tmp_path / "cut.wav")
    (tmp_path / "stub.wav").write_bytes(data[:30])
    with pytest.raises(AudioError, match="stub.wav: not a readable audio file"):
        load_audio(tmp_path / "stub.wav")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("name", ["cut.mp3", "cut.flac", "cut.webm", "cut.m4a"])
def test_truncated_compressed(tmp_path: Path, name: str) -> None:
    source = tmp_path / "noise.wav"
    sf.write(source, np.random.default_rng(0).uniform(-0.5, 0.5, 48000 * 5), 48000)
    whole = ffmpeg_encode(tmp_path, source, "whole" + Path(name).suffix)
    data = whole.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=f"{name}: the file is (truncated|damaged)|{name}: not a readable"):
        load_audio(tmp_path / name)


def test_bad_source_type() -> None:
    with pytest.raises(AudioError, match="cannot read audio from a dict"):
        load_audio({"path": "x.wav"})  # type: ignore[arg-type]

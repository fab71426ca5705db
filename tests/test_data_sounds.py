"""The cough / sound-type gate's datasets: every known trap in the Coswara, ESC-10 and Speech Commands READMEs,
on the real shared copies (skipped where absent) and on small fake layouts."""
from __future__ import annotations

import csv
import hashlib
import json
import struct
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training.lib.data import (
    COSWARA_KINDS,
    ESC10_FOLDS,
    SHARED,
    SOUND_TYPES,
    Recording,
    decode_all,
    group_split,
    load_coswara,
    load_esc10,
    load_speech_commands,
    split_by_fold,
)

UNKNOWN_LENGTH = 2**63 - 1  # what libsndfile reports for a FLAC whose STREAMINFO gives 0 (unknown) samples
GATE_TYPES = {
    "cough-heavy": "cough", "cough-shallow": "cough",
    "counting-normal": "speech", "counting-fast": "speech", "vowel-a": "speech", "vowel-e": "speech",
    "vowel-o": "speech", "breathing-deep": "breathing", "breathing-shallow": "breathing",
}


def _shared(name: str, marker: str) -> Path:
    root = SHARED / "data" / name
    if not (root / marker).exists():
        pytest.skip(f"dataset not found at {root}")
    return root


@pytest.fixture(scope="module")
def coswara_root() -> Path:
    return _shared("coswara-20200413", "20200413.csv")


@pytest.fixture(scope="module")
def esc10_root() -> Path:
    return _shared("esc10", "001 - Dog bark")


@pytest.fixture(scope="module")
def speech_root() -> Path:
    return _shared("speech-commands-30x10", "yes")


@pytest.fixture(scope="module")
def broken(coswara_root) -> dict[Path, str]:
    """Coswara's broken files found independently of the loader: header-only (no frames) or all zeros."""
    found = {}
    for path in sorted((coswara_root / "participants").glob("*/*.flac")):
        if sf.info(str(path)).frames in (0, UNKNOWN_LENGTH):
            found[path] = "header-only"
        elif not sf.read(str(path))[0].any():
            found[path] = "all-zero"
    return found


def _ratings(root: Path) -> dict[tuple[str, str], int]:
    ratings = {}
    for kind in COSWARA_KINDS:
        with open(root / "annotations" / f"{kind}_labels.csv", newline="") as fh:
            for name, quality in list(csv.reader(fh))[1:]:
                ratings[(name.strip().removesuffix(f"_{kind}"), kind)] = int(quality)
    return ratings


# --- Coswara, real --------------------------------------------------------------------------------------------

def test_real_coswara_loads_every_status_and_drops_bad_quality_by_sound(coswara_root):
    """Trap 2: QUALITY 0 files are excluded per sound; the one absent vowel-o is missing; nobody is left out."""
    recordings, report = load_coswara(coswara_root)
    ratings = _ratings(coswara_root)
    files = {(p.parent.name, p.stem) for p in (coswara_root / "participants").glob("*/*.flac")}
    assert report.found == len(files) == 449
    assert [p.relative_to(coswara_root).as_posix() for p in report.missing] == [
        "participants/9XJ2QSvS9CaIo5hSyRZcdst0K8P2/vowel-o.flac"]
    bad = Counter(kind for (person, kind) in files if ratings[(person, kind)] < 1)
    assert report.excluded == Counter({f"quality<1 ({kind})": n for kind, n in bad.items()})
    assert sum(bad.values()) == 87 and bad["counting-normal"] == 13
    assert len(recordings) == len(files) - sum(bad.values()) == 362
    assert all(r.get("quality") == ratings[(r.get("participant"), r.get("kind"))] >= 1 for r in recordings)
    assert {r.get("kind"): r.get("sound_type") for r in recordings} == GATE_TYPES
    statuses = {p.name: json.loads((p / "metadata.json").read_text())["covid_status"]
                for p in (coswara_root / "participants").iterdir()}
    everyone, _ = load_coswara(coswara_root, min_quality=0)
    assert {r.get("participant") for r in everyone} == set(statuses)
    assert {(r.get("covid_status"), r.label) for r in everyone} == {
        ("healthy", 0), ("resp_illness_not_identified", -1), ("no_resp_illness_exposed", -1)}
    meta = dict(recordings[0].meta)
    assert meta.keys() >= {"participant", "kind", "sound_type", "quality", "covid_status", "age", "gender",
                           "country", "device"}
    assert isinstance(meta["age"], int) and meta["device"] == "web"
    assert report.sound_types == dict(Counter(r.get("sound_type") for r in recordings))
    text = str(report)
    assert "excluded (quality<1 (counting-normal)): 13" in text and "sound type breathing:" in text
    assert "missing: participants/9XJ2QSvS9CaIo5hSyRZcdst0K8P2/vowel-o.flac" in text
    assert json.loads(json.dumps(report.as_dict()))["excluded"]["quality<1 (vowel-o)"] == bad["vowel-o"]


def test_real_coswara_broken_files_fail_in_decoding_each_reported_once(coswara_root, broken):
    """Trap 1: all-zero and header-only files, byte-identical across sounds and people, are undecodable, each
    reported once with its own path, none hidden as a conflicting duplicate or kept as a non-cough."""
    kinds = Counter(broken.values())
    assert kinds == {"all-zero": 54, "header-only": 10}
    copies = defaultdict(list)
    for path in broken:
        copies[hashlib.sha256(path.read_bytes()).hexdigest()].append(path)
    assert any(len({p.parent for p in group}) > 1 and len({GATE_TYPES[p.stem] for p in group}) > 1
               for group in copies.values()), "the trap: identical broken files under different people and sounds"

    recordings, report = load_coswara(coswara_root, min_quality=0)
    assert len(recordings) == 449 and report.duplicate_groups == 0 and not report.conflicting_groups
    good = [r for r in recordings if r.path not in broken][:3]
    chosen = [r for r in recordings if r.path in broken] + good
    decoded, failed = decode_all(chosen, progress=False, report=report)
    assert [r for r, _ in decoded] == good
    assert sorted(r.path for r, _ in failed) == sorted(p for p, _ in report.undecodable) == sorted(broken)
    assert not report.conflicting_groups and report.conflicting_files == 0 and report.duplicates_removed == 0
    assert sum(report.sound_types.values()) == sum(report.counts.values()) == 449 - len(broken)
    text = str(report)
    for rec, message in failed:
        assert message.startswith(f"{rec.path.name}: ")
        if broken[rec.path] == "all-zero":
            assert "silent" in message
        assert f"    {rec.path.relative_to(coswara_root).as_posix()}: " in text

    rated_good, _ = load_coswara(coswara_root)
    silent_but_rated = [r for r in rated_good if r.path in broken]
    assert len(silent_but_rated) == 4, "4 all-zero files carry QUALITY 2: only decoding catches them"
    decoded, failed = decode_all(silent_but_rated, progress=False)
    assert decoded == [] and len(failed) == 4


def test_real_coswara_header_only_files_are_reported_as_empty(coswara_root, broken):
    headers = [p for p, kind in broken.items() if kind == "header-only"]
    recordings = [r for r in load_coswara(coswara_root, min_quality=0)[0] if r.path in headers]
    _, failed = decode_all(recordings, progress=False)
    assert len(failed) == len(headers) and all("empty" in message for _, message in failed)


def test_real_coswara_group_split_keeps_each_person_in_one_split(coswara_root):
    """Trap 3: a person's nine sounds all land in one split; every split holds every sound type."""
    recordings, _ = load_coswara(coswara_root, min_quality=0)
    parts = group_split(recordings, "participant", seed=0)
    assert sorted(str(r.path) for p in parts.values() for r in p) == sorted(str(r.path) for r in recordings)
    home = defaultdict(set)
    for name, part in parts.items():
        for r in part:
            home[r.get("participant")].add(name)
    assert all(len(names) == 1 for names in home.values())
    nine = [p for p, n in Counter(r.get("participant") for r in recordings).items() if n == 9]
    assert len(nine) == 49
    people = Counter(next(iter(home[p])) for p in home)
    assert abs(people["train"] - 30) <= 3 and abs(people["val"] - 10) <= 3 and abs(people["test"] - 10) <= 3
    for part in parts.values():
        assert {r.get("sound_type") for r in part} == {"cough", "speech", "breathing"}
    assert group_split(recordings, "participant", seed=0) == parts
    assert group_split(recordings[::-1], "participant", seed=0) == {k: v[::-1] for k, v in parts.items()}
    assert group_split(recordings, "participant", seed=1)["test"] != parts["test"]


# --- ESC-10 and Speech Commands, real -------------------------------------------------------------------------

def test_real_esc10_is_all_other_and_splits_by_fold(esc10_root):
    recordings, report = load_esc10(esc10_root)
    assert report.found == len(recordings) == 318 and not report.excluded and not report.missing
    assert Counter(r.get("category") for r in recordings) == {
        "dog bark": 32, "rain": 32, "sea waves": 32, "baby cry": 32, "clock tick": 32, "person sneeze": 32,
        "helicopter": 32, "chainsaw": 32, "rooster": 30, "fire crackling": 32}
    assert {(r.source, r.label, r.get("sound_type")) for r in recordings} == {("esc10", -1, "other")}
    assert report.sound_types == {"other": 318}
    assert Counter(r.get("fold") for r in recordings) == {1: 79, 2: 79, 3: 80, 4: 80}
    sneeze = next(r for r in recordings if r.get("category") == "person sneeze")
    assert sneeze.get("sound_type") == "other" and sneeze.path.name.startswith(f"{sneeze.get('fold')}-")
    folds_of_clip = defaultdict(set)
    for r in recordings:
        folds_of_clip[r.get("clip")].add(r.get("fold"))
    assert all(len(folds) == 1 for folds in folds_of_clip.values())
    parts = split_by_fold(recordings)
    assert {name: sorted({r.get("fold") for r in part}) for name, part in parts.items()} == {
        name: list(folds) for name, folds in ESC10_FOLDS.items()}
    assert [len(parts[name]) for name in ("train", "val", "test")] == [158, 80, 80]


def test_real_speech_commands_group_by_speaker(speech_root):
    recordings, report = load_speech_commands(speech_root)
    assert report.found == len(recordings) == 300 and not report.excluded
    assert Counter(r.get("word") for r in recordings) == {w: 10 for w in {r.path.parent.name for r in recordings}}
    assert len({r.get("word") for r in recordings}) == 30
    assert {(r.source, r.label, r.get("sound_type")) for r in recordings} == {("speech-commands", -1, "speech")}
    assert all(r.path.name.startswith(f"{r.get('speaker')}_nohash_") for r in recordings)
    assert len({r.get("speaker") for r in recordings}) == 41
    parts = group_split(recordings, "speaker", seed=0)
    speakers = {name: {r.get("speaker") for r in part} for name, part in parts.items()}
    assert all(speakers.values())
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    assert all(abs(len(parts[n]) - f * 300) <= 12 for n, f in zip(("train", "val", "test"), (0.6, 0.2, 0.2)))
    assert group_split(recordings, "speaker", seed=0) == parts


def test_real_non_cough_clips_decode_including_the_odd_ones(esc10_root, speech_root):
    """ESC-10 clips are not all 5 s and many are mostly digital silence; Speech Commands has clips under 1 s
    and one at -74 dBFS: all are real audio and must decode."""
    esc, _ = load_esc10(esc10_root)
    words, _ = load_speech_commands(speech_root)
    seconds = {esc10_root / "010 - Fire crackling" / "4-164661-B.ogg": 3.644,
               esc10_root / "010 - Fire crackling" / "1-17808-B.ogg": 7.24,
               esc10_root / "001 - Dog bark" / "1-100032-A.ogg": 5.001,
               speech_root / "two" / "51055bda_nohash_4.wav": 1.0}
    shortest = min(words, key=lambda r: sf.info(str(r.path)).frames)
    seconds[shortest.path] = sf.info(str(shortest.path)).duration
    assert seconds[shortest.path] < 0.8
    padded = sf.read(str(esc10_root / "001 - Dog bark" / "1-100032-A.ogg"))[0]
    assert np.mean(padded == 0) > 0.9
    decoded, failed = decode_all([r for r in esc + words if r.path in seconds], progress=False)
    assert failed == []
    assert {rec.path: round(waveform.size / 16000, 2) for rec, waveform in decoded} == {
        path: round(s, 2) for path, s in seconds.items()}


# --- fake layouts ---------------------------------------------------------------------------------------------

def tone(seed: int, seconds: float = 0.5, rate: int = 48000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int = 48000, fmt: str = "FLAC") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, format=fmt, subtype="PCM_16" if fmt != "OGG" else None)
    return path


def header_only_flac(path: Path, rate: int = 16000) -> Path:
    """`fLaC` + a STREAMINFO block that declares 0 (unknown) samples and no audio frames, like Coswara's."""
    packed = (rate << 44) | (0 << 41) | (15 << 36)
    body = struct.pack(">HH", 4096, 4096) + bytes(6) + packed.to_bytes(8, "big") + bytes(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"fLaC" + bytes([0x80]) + len(body).to_bytes(3, "big") + body)
    return path


def write_rows(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


KINDS = ("cough-heavy", "cough-shallow", "counting-normal", "breathing-deep")


@pytest.fixture
def fake_coswara(tmp_path) -> Path:
    """P0 plain; P1's cough-heavy all zeros, byte-identical to P2's counting-normal, and a header-only cough-shallow;
    P0's breathing-deep is a copy of its cough-heavy (one COVID label, two sound types); P2 has no metadata.json
    and a cough-shallow copied from its cough-heavy; P1's breathing-deep has no annotation; P3 is in the CSV only."""
    people = tmp_path / "participants"
    for i, person in enumerate(("P0", "P1", "P2")):
        for j, kind in enumerate(KINDS):
            write(people / person / f"{kind}.flac", tone(10 * i + j))
    zeros = write(people / "P1" / "cough-heavy.flac", np.zeros(48000, np.float32))
    (people / "P2" / "counting-normal.flac").write_bytes(zeros.read_bytes())
    header_only_flac(people / "P1" / "cough-shallow.flac")
    (people / "P2" / "cough-shallow.flac").write_bytes((people / "P2" / "cough-heavy.flac").read_bytes())
    (people / "P0" / "breathing-deep.flac").write_bytes((people / "P0" / "cough-heavy.flac").read_bytes())
    for person, status in (("P0", "healthy"), ("P1", "positive_mild")):
        (people / person / "metadata.json").write_text(json.dumps(
            {"id": person, "a": 30, "covid_status": status, "g": "female", "l_c": "India", "dT": "web"}))
    write_rows(tmp_path / "20200413.csv", ["id", "l_c", "a", "covid_status", "g", "dT"],
               [["P0", "India", "30", "healthy", "female", "web"],
                ["P2", "India", "41", "resp_illness_not_identified", "male", "web"],
                ["P3", "India", "", "healthy", "male", "web"]])
    ratings = {("P0", "counting-normal"): 0, ("P0", "breathing-deep"): 1}
    for kind in KINDS:
        rows = [[f"{p}_{kind}", ratings.get((p, kind), 2)] for p in ("P0", "P1", "P2")
                if (p, kind) != ("P1", "breathing-deep")]
        write_rows(tmp_path / "annotations" / f"{kind}_labels.csv", ["FILENAME", " QUALITY"], rows)
    return tmp_path


def test_fake_coswara_quality_metadata_and_missing(fake_coswara):
    recordings, report = load_coswara(fake_coswara, kinds=KINDS)
    assert report.found == 12
    assert [p.relative_to(fake_coswara).as_posix() for p in report.missing] == [
        f"participants/P3/{kind}.flac" for kind in KINDS]
    assert report.excluded == Counter({"quality<1 (counting-normal)": 1, "no quality annotation (breathing-deep)": 1})
    assert {(r.get("participant"), r.get("kind")) for r in recordings} == {
        ("P0", "cough-heavy"), ("P0", "cough-shallow"), ("P0", "breathing-deep"),
        ("P1", "cough-heavy"), ("P1", "cough-shallow"), ("P1", "counting-normal"),
        ("P2", "cough-heavy"), ("P2", "cough-shallow"), ("P2", "counting-normal"), ("P2", "breathing-deep")}
    assert {r.get("participant"): r.label for r in recordings} == {"P0": 0, "P1": 1, "P2": -1}
    p2 = next(r for r in recordings if r.get("participant") == "P2")
    assert (p2.get("covid_status"), p2.get("age"), p2.get("gender")) == ("resp_illness_not_identified", 41, "male")
    assert dict(next(r for r in recordings if r.get("participant") == "P0").meta).keys() == {
        "participant", "kind", "sound_type", "quality", "covid_status", "age", "gender", "country", "device"}
    assert report.duplicate_groups == 0, "identical files are left for decode_all to judge"
    assert report.sound_types == {"cough": 6, "speech": 2, "breathing": 2}
    everything, report0 = load_coswara(fake_coswara, kinds=KINDS, min_quality=0)
    assert len(everything) == 11 and report0.excluded == Counter({"no quality annotation (breathing-deep)": 1})
    assert len(load_coswara(fake_coswara, kinds=KINDS, min_quality=2)[0]) == 9


def test_fake_coswara_decoding_reports_broken_copies_then_deduplicates(fake_coswara):
    recordings, report = load_coswara(fake_coswara, kinds=KINDS)
    decoded, failed = decode_all(recordings, progress=False, report=report)
    people = fake_coswara / "participants"
    broken = [people / "P1" / "cough-heavy.flac", people / "P1" / "cough-shallow.flac",
              people / "P2" / "counting-normal.flac"]
    assert sorted(r.path for r, _ in failed) == sorted(p for p, _ in report.undecodable) == sorted(broken)
    assert {r.path.name: m for r, m in failed if r.get("kind") != "cough-shallow"} == {
        "cough-heavy.flac": "cough-heavy.flac: the recording is silent (every sample is zero)",
        "counting-normal.flac": "counting-normal.flac: the recording is silent (every sample is zero)"}
    assert [r.path.relative_to(people).as_posix() for r, _ in decoded] == [
        "P0/cough-shallow.flac", "P1/counting-normal.flac", "P2/cough-heavy.flac", "P2/breathing-deep.flac"]
    assert report.duplicate_groups == 2 and report.duplicates_removed == 1
    assert report.conflicting_groups == [recordings[0].sha256] and report.conflicting_files == 2
    assert report.counts == {("coswara", -1): 2, ("coswara", 0): 1, ("coswara", 1): 1}
    assert report.sound_types == {"cough": 2, "speech": 1, "breathing": 1}
    text = str(report)
    assert "    participants/P1/cough-heavy.flac: the recording is silent (every sample is zero)" in text
    assert "    participants/P2/counting-normal.flac: the recording is silent" in text
    assert "    participants/P1/cough-shallow.flac: " in text
    assert "conflicting duplicate groups dropped: 1 (2 files)" in text and "sound type speech: 1" in text
    as_dict = json.loads(json.dumps(report.as_dict()))
    assert as_dict["sound_types"] == report.sound_types and len(as_dict["undecodable"]) == 3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fmt", ["FLAC", "WAV"])
def test_fake_header_only_files_are_reported_as_empty(tmp_path, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    if fmt == "FLAC":
        header_only_flac(path)
    else:
        write(path, np.zeros(0, np.float32), fmt="WAV")
    _, failed = decode_all([Recording(path, -1, "coswara", "0" * 64)], progress=False)
    assert len(failed) == 1 and "empty" in failed[0][1]


def test_fake_coswara_refuses_unknown_sounds_and_mislabelled_annotations(fake_coswara):
    with pytest.raises(ValueError, match="unknown Coswara sound"):
        load_coswara(fake_coswara, kinds=("cough",))
    write_rows(fake_coswara / "annotations" / "cough-heavy_labels.csv", ["FILENAME", "QUALITY"], [["P0_vowel-a", 2]])
    with pytest.raises(ValueError, match="is not <id>_cough-heavy"):
        load_coswara(fake_coswara, kinds=KINDS)


def test_fake_esc10_layout(tmp_path):
    write(tmp_path / "001 - Dog bark" / "1-100-A.ogg", tone(1, 1.0, 44100), 44100, "OGG")
    write(tmp_path / "001 - Dog bark" / "2-200-B.ogg", tone(2, 1.0, 44100), 44100, "OGG")
    write(tmp_path / "006 - Person sneeze" / "4-300-A.ogg", tone(3, 1.0, 44100), 44100, "OGG")
    (tmp_path / "001 - Dog bark" / "notes.txt").write_text("not a clip")
    (tmp_path / "README.txt").write_text("attribution")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc10.csv").write_text("filename,fold\n")
    recordings, report = load_esc10(tmp_path)
    assert report.found == 4 and report.excluded == Counter({"unexpected file name": 1})
    assert [dict(r.meta) for r in recordings] == [
        {"category": "dog bark", "clip": "100", "fold": 1, "sound_type": "other"},
        {"category": "dog bark", "clip": "200", "fold": 2, "sound_type": "other"},
        {"category": "person sneeze", "clip": "300", "fold": 4, "sound_type": "other"}]
    parts = split_by_fold(recordings)
    assert {name: [r.get("clip") for r in part] for name, part in parts.items()} == {
        "train": ["100", "200"], "val": [], "test": ["300"]}
    held_back = Recording(tmp_path / "5-9-A.ogg", -1, "esc10", "9" * 64, meta=(("fold", 5),))
    with pytest.raises(ValueError, match="fold 5 is in none of the splits"):
        split_by_fold(recordings + [held_back])
    assert split_by_fold(recordings, {"train": (1,), "test": (2, 4)})["test"] == recordings[1:]


def test_fake_speech_commands_layout(tmp_path):
    write(tmp_path / "yes" / "0a1b2c3d_nohash_0.wav", tone(1, 1.0, 16000), 16000, "WAV")
    write(tmp_path / "yes" / "0a1b2c3d_nohash_1.wav", tone(2, 1.0, 16000), 16000, "WAV")
    write(tmp_path / "no" / "ffffffff_nohash_0.wav", tone(3, 1.0, 16000), 16000, "WAV")
    write(tmp_path / "no" / "take two.wav", tone(4, 1.0, 16000), 16000, "WAV")
    write(tmp_path / "_background_noise_" / "white_noise.wav", tone(5, 1.0, 16000), 16000, "WAV")
    (tmp_path / "testing_list.txt").write_text("yes/0a1b2c3d_nohash_0.wav\n")
    recordings, report = load_speech_commands(tmp_path)
    assert report.found == 5
    assert report.excluded == Counter({"not a word (_background_noise_)": 1, "unexpected file name": 1})
    assert [(r.get("word"), r.get("speaker"), r.get("sound_type")) for r in recordings] == [
        ("no", "ffffffff", "speech"), ("yes", "0a1b2c3d", "speech"), ("yes", "0a1b2c3d", "speech")]
    assert report.sound_types == {"speech": 3} and report.counts == {("speech-commands", -1): 3}


# --- group_split ----------------------------------------------------------------------------------------------

def _rec(i: int, group: str, sound_type: str, sha: str | None = None) -> Recording:
    return Recording(Path(f"/x/{i}.wav"), -1, "fake", sha or f"{i:064x}",
                     meta=(("sound_type", sound_type), ("speaker", group)))


def test_group_split_stratifies_single_type_groups_and_is_seeded():
    rng = np.random.default_rng(0)
    recordings = [_rec(100 * g + k, f"s{g}", SOUND_TYPES[g % 4]) for g in range(200) for k in range(rng.integers(1, 4))]
    parts = group_split(recordings, "speaker", seed=5)
    totals = Counter(r.get("sound_type") for r in recordings)
    for name, fraction in zip(("train", "val", "test"), (0.6, 0.2, 0.2)):
        got = Counter(r.get("sound_type") for r in parts[name])
        for sound_type, n in totals.items():
            assert abs(got[sound_type] - fraction * n) <= 3, (name, sound_type)
    homes = defaultdict(set)
    for name, part in parts.items():
        for r in part:
            homes[r.get("speaker")].add(name)
    assert all(len(h) == 1 for h in homes.values())
    shuffled = [recordings[i] for i in rng.permutation(len(recordings))]
    assert {n: set(p) for n, p in group_split(shuffled, "speaker", seed=5).items()} == {
        n: set(p) for n, p in parts.items()}
    assert group_split(recordings, "speaker", seed=6) != parts
    assert {len(p) for p in group_split(recordings, "speaker", (1.0, 0.0, 0.0)).values()} == {len(recordings), 0}


def test_group_split_joins_groups_that_share_content_and_validates():
    recordings = [_rec(i, f"s{i}", "speech") for i in range(40)]
    recordings += [_rec(100, "a", "speech", sha="e" * 64), _rec(101, "b", "cough", sha="e" * 64),
                   _rec(102, "b", "cough")]
    parts = group_split(recordings, "speaker")
    home = {r.path.name: name for name, part in parts.items() for r in part}
    assert home["100.wav"] == home["101.wav"] == home["102.wav"]
    with pytest.raises(ValueError, match="no 'participant'"):
        group_split(recordings, "participant")
    with pytest.raises(ValueError, match="fractions"):
        group_split(recordings, "speaker", fractions=(0.7, 0.2, 0.2))

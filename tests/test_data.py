"""Data layer: every dataset trap has a test here, on the real shared data and on small fake layouts."""
from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from coughkd.audio import SAMPLE_RATE, AudioError, load_audio
from coughkd.features import telephone_band
from coughkd.model import sha256_file
from training.lib import data
from training.lib.data import LoadReport, Recording, decode_all, load_covid19_cough, split

UNDECODABLE = ("098d66e5-bda6-4e99-b787-ab890046c44b.mp3", "a9ecaf03-40a5-4b43-aaf3-f076f84a69aa.mp3")


def write_wav(path: Path, seed: int, seconds: float = 0.5, sample_rate: int = SAMPLE_RATE, fmt: str = "WAV") -> Path:
    """A short noisy tone; the seed makes each file's bytes distinct."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sample_rate, format=fmt)
    return path


def hf_fraction(x: np.ndarray, sample_rate: int = SAMPLE_RATE, cutoff: float = 4200.0) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(power[np.fft.rfftfreq(x.size, 1 / sample_rate) > cutoff].sum() / power.sum())


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def real(cough_data):
    return load_covid19_cough(cough_data)


# --- the real covid19-cough data --------------------------------------------------------------------------------

def test_real_dedup_matches_an_independent_count(cough_data, real):
    """Trap 2: ~115 byte-identical groups, those with disagreeing labels dropped whole."""
    recordings, report = real
    rows = json.loads((cough_data / "metadata.json").read_text())
    groups = defaultdict(list)
    for row in rows:
        digest = hashlib.sha256((cough_data / "raw" / row["filename"]).read_bytes()).hexdigest()
        groups[digest].append(bool(row["covid19"]))
    duplicated = {h: labels for h, labels in groups.items() if len(labels) > 1}
    conflicting = {h for h, labels in duplicated.items() if len(set(labels)) > 1}
    assert report.found == len(rows) == 1106
    assert report.missing == []
    assert report.duplicate_groups == len(duplicated) == 115
    assert set(report.conflicting_groups) == conflicting
    assert report.duplicates_removed == sum(len(groups[h]) - 1 for h in duplicated.keys() - conflicting)
    hashes = [r.sha256 for r in recordings]
    assert len(hashes) == len(set(hashes))
    assert not set(hashes) & conflicting
    assert len(recordings) == len(rows) - report.conflicting_files - report.duplicates_removed


def test_real_report_counts_sources_and_keeps_metadata(real):
    """Trap 1 and 5: per-(source, label) counts, PCR flag and the `kind` field survive loading."""
    recordings, report = real
    assert report.counts == dict(Counter((r.source, r.label) for r in recordings))
    assert set(report.counts) == {("call-center", 0), ("call-center", 1), ("telegram", 0), ("telegram", 1)}
    assert {r.get("kind") for r in recordings if r.source == "call-center" and r.label == 0} >= {"входящие"}
    assert any(r.verified for r in recordings) and not any(r.verified for r in recordings if r.label == 0)
    text = str(report)
    assert "conflicting duplicate groups dropped: 112" in text and "telegram label=1" in text
    assert json.loads(json.dumps(report.as_dict()))["counts"]["telegram/1"] == report.counts[("telegram", 1)]


def test_real_only_verified_positives(cough_data, real):
    recordings, _ = real
    verified, report = load_covid19_cough(cough_data, only_verified_positives=True)
    assert all(r.verified for r in verified if r.label == 1)
    dropped = sum(1 for r in recordings if r.label == 1 and not r.verified)
    assert dropped > 0 and report.excluded["unverified positive"] == dropped
    assert len(verified) == len(recordings) - dropped


def test_real_undecodable_files_are_reported_not_raised(cough_data, real):
    """Trap 3: the two 261-byte mp3s fail with a clear message; the batch goes on."""
    _, report = real
    paths = [cough_data / "raw" / name for name in UNDECODABLE]
    good = next(iter(real[0]))
    bad = [Recording(p, 0, "call-center", sha256_file(p)) for p in paths]
    # Both are copies of one file with conflicting labels, so loading already drops them before any decoding.
    assert {r.sha256 for r in bad} <= set(report.conflicting_groups)
    run_report = LoadReport("covid19-cough")
    decoded, failed = decode_all([bad[0], good, bad[1]], progress=False, report=run_report)
    assert [r for r, _ in decoded] == [good] and decoded[0][1].dtype == np.float32
    assert [r for r, _ in failed] == [bad[0], bad[1]]
    assert all(r.path.name in message and "readable" in message for r, message in failed)
    assert [p for p, _ in run_report.undecodable] == paths


def test_real_telegram_audio_is_band_limited_to_telephone_band(real):
    """Trap 1: after harmonisation a wide-band Telegram clip has no energy the call centre could not carry."""
    telegram = next(r for r in real[0] if r.source == "telegram")
    x = load_audio(telegram.path).waveform
    y = telephone_band(x, SAMPLE_RATE)
    assert hf_fraction(x) > 1e-3
    assert hf_fraction(y) < 1e-5
    assert y.shape == x.shape and y.dtype == np.float32


def test_real_split_is_grouped_stratified_and_deterministic(real):
    """Trap 4: no content hash in two splits; each (source, label) stratum keeps the 70/15/15 shares."""
    recordings, _ = real
    parts = split(recordings, seed=0)
    assert set(parts) == {"train", "val", "test"}
    assert sorted(map(str, (r.path for p in parts.values() for r in p))) == sorted(str(r.path) for r in recordings)
    seen = {name: {r.sha256 for r in part} for name, part in parts.items()}
    assert not (seen["train"] & seen["val"] or seen["train"] & seen["test"] or seen["val"] & seen["test"])
    strata = Counter((r.source, r.label) for r in recordings)
    for name, fraction in zip(("train", "val", "test"), (0.7, 0.15, 0.15)):
        got = Counter((r.source, r.label) for r in parts[name])
        for stratum, n in strata.items():
            assert abs(got[stratum] - fraction * n) <= 1.0, (name, stratum)
    assert split(recordings, seed=0) == parts
    assert split(recordings, seed=1)["test"] != parts["test"]


# --- fake layouts -----------------------------------------------------------------------------------------------

@pytest.fixture
def fake_covid19(tmp_path):
    """covid19-cough layout with each trap: a duplicate pair, a conflicting pair, a missing and a broken file."""
    raw = tmp_path / "raw"
    rows = []

    def add(name, seed, covid, source="telegram", verified=None, kind=None):
        path = raw / name
        if seed is not None:
            write_wav(path, seed)
        row = {"filename": name, "covid19": covid, "source": source, "comment": ""}
        if verified is not None:
            row["verified"] = verified
        if kind is not None:
            row["kind"] = kind
        rows.append(row)
        return path

    for i in range(6):
        add(f"neg{i}.mp3", i, False, kind="входящие" if i % 2 else None, source="call-center" if i < 3 else "telegram")
    add("pos-unverified.mp3", 10, True, verified=False)
    add("pos-verified.mp3", 11, True, verified=True, source="call-center")
    dup = add("dup-a.mp3", 12, True, verified=False)
    (raw / "dup-b.mp3").write_bytes(dup.read_bytes())
    rows.append({"filename": "dup-b.mp3", "covid19": True, "source": "telegram", "verified": True})
    clash = add("clash-a.mp3", 13, True, verified=True)
    (raw / "clash-b.mp3").write_bytes(clash.read_bytes())
    rows.append({"filename": "clash-b.mp3", "covid19": False, "source": "telegram"})
    add("gone.mp3", None, False)
    (raw / "broken.mp3").write_bytes(b"ID3\x04" + bytes(257))
    rows.append({"filename": "broken.mp3", "covid19": False, "source": "call-center", "kind": "другое"})
    (tmp_path / "metadata.json").write_text(json.dumps(rows, ensure_ascii=False))
    return tmp_path


def test_fake_covid19_dedup_conflicts_and_missing(fake_covid19):
    recordings, report = load_covid19_cough(fake_covid19)
    names = {r.path.name for r in recordings}
    assert report.found == 13 and [p.name for p in report.missing] == ["gone.mp3"]
    assert report.duplicate_groups == 2 and report.duplicates_removed == 1
    assert report.conflicting_groups == [sha256_file(fake_covid19 / "raw" / "clash-a.mp3")]
    assert report.conflicting_files == 2
    assert not names & {"clash-a.mp3", "clash-b.mp3"}
    assert names & {"dup-a.mp3", "dup-b.mp3"} == {"dup-a.mp3"}
    dup = next(r for r in recordings if r.path.name == "dup-a.mp3")
    assert dup.verified, "a duplicate group is PCR-verified if any copy is"
    assert next(r for r in recordings if r.path.name == "neg1.mp3").get("kind") == "входящие"
    assert report.counts == {("call-center", 0): 4, ("call-center", 1): 1, ("telegram", 0): 3, ("telegram", 1): 2}
    assert hash(dup) == hash(Recording(dup.path, dup.label, dup.source, dup.sha256, dup.verified, dup.meta))


def test_fake_covid19_only_verified_positives(fake_covid19):
    recordings, report = load_covid19_cough(fake_covid19, only_verified_positives=True)
    positives = sorted(r.path.name for r in recordings if r.label == 1)
    assert positives == ["dup-a.mp3", "pos-verified.mp3"]
    assert report.excluded["unverified positive"] == 1


def test_decode_all_skips_broken_files_and_uses_the_cache(fake_covid19, tmp_path, monkeypatch):
    recordings, report = load_covid19_cough(fake_covid19)
    cache = tmp_path / "cache"
    decoded, failed = decode_all(recordings, progress=False, cache_dir=cache, report=report)
    assert [r.path.name for r, _ in failed] == ["broken.mp3"]
    assert report.undecodable == [(fake_covid19 / "raw" / "broken.mp3", failed[0][1])]
    assert report.counts[("call-center", 0)] == 3
    assert len(decoded) == len(recordings) - 1
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{r.sha256}-{SAMPLE_RATE}.npz" for r, _ in decoded)

    def no_decoding(source, sample_rate=None):
        raise AudioError("decoder called although the cache holds this file")

    monkeypatch.setattr(data, "load_audio", no_decoding)
    again, failed_again = decode_all([r for r, _ in decoded], progress=False, cache_dir=cache)
    assert failed_again == []
    for (_, first), (_, second) in zip(decoded, again):
        np.testing.assert_array_equal(first, second)


def test_decode_all_recovers_from_a_corrupt_cache_entry(fake_covid19, tmp_path):
    recordings, _ = load_covid19_cough(fake_covid19)
    rec = next(r for r in recordings if r.path.name == "neg0.mp3")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{rec.sha256}-{SAMPLE_RATE}.npz").write_bytes(b"not a zip")
    decoded, failed = decode_all([rec], progress=False, cache_dir=cache)
    assert failed == [] and decoded[0][1].size == int(0.5 * SAMPLE_RATE)


def test_telephone_band_limits_wide_band_noise():
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32)
    assert hf_fraction(noise) > 0.4
    assert hf_fraction(telephone_band(noise, SAMPLE_RATE)) < 1e-5
    narrow = noise[:4000]
    np.testing.assert_array_equal(telephone_band(narrow, 8000), narrow)


def _recording(i: int, source: str, label: int, sha: str | None = None) -> Recording:
    return Recording(Path(f"/x/{i}.wav"), label, source, sha or f"{i:064x}")


def test_split_strata_groups_and_validation():
    recordings = [_recording(i, "a" if i % 3 else "b", int(i % 5 == 0)) for i in range(600)]
    recordings += [_recording(1000 + i, "a", 0, sha="f" * 64) for i in range(4)]
    parts = split(recordings, fractions=(0.6, 0.2, 0.2), seed=3)
    assert sum(len(p) for p in parts.values()) == len(recordings)
    homes = {name for name, part in parts.items() for r in part if r.sha256 == "f" * 64}
    assert len(homes) == 1
    strata = Counter((r.source, r.label) for r in recordings)
    for name, fraction in zip(("train", "val", "test"), (0.6, 0.2, 0.2)):
        got = Counter((r.source, r.label) for r in parts[name])
        for stratum, n in strata.items():
            assert abs(got[stratum] - fraction * n) <= 4, (name, stratum)
    assert split(recordings, fractions=(0.6, 0.2, 0.2), seed=3) == parts
    with pytest.raises(ValueError):
        split(recordings, fractions=(0.7, 0.2, 0.2))
    with pytest.raises(ValueError):
        split(recordings, fractions=(0.5, 0.5))


def test_split_of_one_stratum_is_independent_of_other_sources():
    """Adding a dataset must not reshuffle the splits of the data already there."""
    base = [_recording(i, "a", i % 2) for i in range(100)]
    extra = [_recording(500 + i, "z", i % 2) for i in range(50)]
    alone = split(base, seed=7)
    mixed = split(base + extra, seed=7)
    for name in alone:
        assert alone[name] == [r for r in mixed[name] if r.source == "a"]

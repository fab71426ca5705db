"""Datasets for training: loaders, the dataset traps, decoding, and leakage-safe splits.

Every loader returns `(recordings, LoadReport)` and handles the traps listed in the shared covid19-cough README
the same way for every dataset: exact duplicates collapse to one file and duplicates whose labels disagree are
dropped (trap 2), undecodable files are reported and skipped (trap 3), splits are grouped by content hash
(trap 4, there is no participant id) and stratified by (source, label) so the channel confound (trap 1) can be
measured per source, and the PCR `verified` flag is kept (trap 5).

The cough / sound-type gate's data (Coswara, ESC-10, Speech Commands) tags every recording with one of
SOUND_TYPES in `meta["sound_type"]`. Those loaders read no audio, so they cannot tell an all-zero or header-only
file from a real one: they keep byte-identical files apart, decoding reports each broken copy as undecodable,
and only then does `decode_all` collapse the identical files that did decode (or drop them, where their labels
or sound types disagree). Their splits are `group_split` (by participant or speaker) and, for ESC-10, its folds.
"""
from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from coughkd.audio import SAMPLE_RATE, AudioError, load_audio
from coughkd.model import SOUND_TYPES, sha256_file

SHARED = Path(__file__).resolve().parents[3] / "shared"
COVID19_COUGH = SHARED / "data" / "covid19-cough"
COSWARA = SHARED / "data" / "coswara-20200413"
ESC10 = SHARED / "data" / "esc10"
SPEECH_COMMANDS = SHARED / "data" / "speech-commands-30x10"
SPLITS = ("train", "val", "test")

MetaValue = str | int | float | bool | None


@dataclass(frozen=True)
class Recording:
    """One labelled audio file; frozen so it can key dicts and sets.

    `label` is the COVID-19 label: 1 positive, 0 negative, -1 where the dataset does not say (the gate's
    non-COVID data). `meta` is a sorted tuple of (key, value) pairs rather than a dict to keep the dataclass
    hashable. A `participant` entry, where a dataset has one, keeps a person's files in one split; a
    `sound_type` entry (one of SOUND_TYPES) is the gate's label.
    """

    path: Path
    label: int
    source: str
    sha256: str
    verified: bool = False
    meta: tuple[tuple[str, MetaValue], ...] = ()

    def get(self, key: str, default: MetaValue = None) -> MetaValue:
        return dict(self.meta).get(key, default)


@dataclass
class LoadReport:
    """What a loader found and threw away, so a run's data handling can be audited from its log.

    `sound_types` counts the kept files per sound type, for the gate's datasets only (it stays empty, and out of
    `as_dict`, for the COVID-19 ones). With `root` set, `str()` names files relative to it: Coswara's file names
    (`cough-heavy.flac`) repeat in every participant's folder.
    """

    dataset: str
    found: int = 0
    missing: list[Path] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)
    duplicate_groups: int = 0
    duplicates_removed: int = 0
    conflicting_groups: list[str] = field(default_factory=list)
    conflicting_files: int = 0
    undecodable: list[tuple[Path, str]] = field(default_factory=list)
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    sound_types: dict[str, int] = field(default_factory=dict)
    root: Path | None = None

    def add_undecodable(self, failures: Iterable[tuple[Recording, str]]) -> None:
        """Record decode failures and take them out of the kept counts."""
        failures = list(failures)
        self.undecodable += [(rec.path, message) for rec, message in failures]
        self.forget(rec for rec, _ in failures)

    def forget(self, dropped: Iterable[Recording]) -> None:
        """Take dropped files out of the kept counts; a no-op for files dropped before the counts were set."""
        for rec in dropped:
            key = (rec.source, rec.label)
            if self.counts.get(key, 0) > 0:
                self.counts[key] -= 1
            sound_type = rec.get("sound_type")
            if self.sound_types.get(sound_type, 0) > 0:
                self.sound_types[sound_type] -= 1

    def _shown(self, path: Path) -> str:
        inside = self.root is not None and path.is_relative_to(self.root)
        return path.relative_to(self.root).as_posix() if inside else path.name

    def as_dict(self) -> dict:
        """JSON-friendly form, e.g. for the model manifest's `data` entry."""
        return {
            "dataset": self.dataset,
            "found": self.found,
            "missing": [str(p) for p in self.missing],
            "excluded": dict(self.excluded),
            "duplicate_groups": self.duplicate_groups,
            "duplicates_removed": self.duplicates_removed,
            "conflicting_groups": list(self.conflicting_groups),
            "conflicting_files": self.conflicting_files,
            "undecodable": [[str(p), m] for p, m in self.undecodable],
            "counts": {f"{s}/{label}": n for (s, label), n in sorted(self.counts.items())},
        } | ({"sound_types": dict(self.sound_types)} if self.sound_types else {})

    def __str__(self) -> str:
        lines = [
            (f"{self.dataset}: {self.found} files found, {len(self.missing)} missing, "
             f"{sum(self.excluded.values())} excluded"),
            f"  groups of byte-identical files: {self.duplicate_groups}",
            f"  exact duplicates removed: {self.duplicates_removed}",
            f"  conflicting duplicate groups dropped: {len(self.conflicting_groups)} ({self.conflicting_files} files)",
            f"  undecodable: {len(self.undecodable)}",
        ]
        lines[1:1] = [f"    missing: {self._shown(p)}" for p in self.missing]
        lines += [f"    {m.replace(p.name, self._shown(p), 1) if m.startswith(p.name) else f'{self._shown(p)}: {m}'}"
                  for p, m in self.undecodable]
        lines += [f"  excluded ({reason}): {n}" for reason, n in sorted(self.excluded.items())]
        lines.append(f"  kept: {sum(self.counts.values())}")
        lines += [f"    {s} label={label}: {n}" for (s, label), n in sorted(self.counts.items())]
        lines += [f"    sound type {sound_type}: {n}" for sound_type, n in self.sound_types.items()]
        return "\n".join(lines)


def deduplicate(recordings: Iterable[Recording], report: LoadReport) -> list[Recording]:
    """Collapse byte-identical files; drop every file of a group whose labels or sound types disagree.

    A conflicting group cannot be given a true label, and keeping any member would put the same audio
    under both labels (or in train and test). A kept group is PCR-verified if any copy was.
    """
    groups: dict[str, list[Recording]] = defaultdict(list)
    for rec in recordings:
        groups[rec.sha256].append(rec)
    kept = []
    for sha, members in groups.items():
        report.duplicate_groups += int(len(members) > 1)
        if len({(r.label, r.get("sound_type")) for r in members}) > 1:
            report.conflicting_groups.append(sha)
            report.conflicting_files += len(members)
            report.forget(members)
            continue
        first = min(members, key=lambda r: str(r.path))
        verified = any(r.verified for r in members)
        kept.append(replace(first, verified=verified))
        report.duplicates_removed += len(members) - 1
        report.forget(r for r in members if r is not first)
    return kept


def _meta(**items: MetaValue) -> tuple[tuple[str, MetaValue], ...]:
    return tuple(sorted((k, v) for k, v in items.items() if v is not None and v != ""))


def _finish(
    recordings: list[Recording], report: LoadReport, only_verified_positives: bool
) -> tuple[list[Recording], LoadReport]:
    kept = deduplicate(recordings, report)
    if only_verified_positives:
        unverified = [r for r in kept if r.label == 1 and not r.verified]
        if unverified:
            report.excluded["unverified positive"] += len(unverified)
        kept = [r for r in kept if r.label == 0 or r.verified]
    return _count(kept, report)


def _count(kept: list[Recording], report: LoadReport) -> tuple[list[Recording], LoadReport]:
    """Set the report's kept counts per (source, label) and per sound type."""
    report.counts = dict(sorted(Counter((r.source, r.label) for r in kept).items()))
    sound_types = Counter(r.get("sound_type") for r in kept)
    report.sound_types = {t: sound_types[t] for t in SOUND_TYPES if sound_types[t]}
    return kept, report


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        absent = [c for c in required if c not in columns]
        if absent:
            raise ValueError(f"{path}: missing column(s) {absent}; found {columns}")
        # Surplus fields land under the key None (as a list); they belong to no column, so they are dropped.
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def load_covid19_cough(
    root: Path = COVID19_COUGH, only_verified_positives: bool = False
) -> tuple[list[Recording], LoadReport]:
    """The shared covid19-cough set: `metadata.json` + `raw/<uuid>.mp3`; source is call-center or telegram."""
    root = Path(root)
    report = LoadReport("covid19-cough")
    rows = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
    recordings = []
    for row in rows:
        path = root / "raw" / row["filename"]
        if not path.is_file():
            report.missing.append(path)
            continue
        report.found += 1
        meta = _meta(
            filename=row["filename"],
            kind=row.get("kind"),
            asymptomatic=row.get("asymptomatic"),
            comment=row.get("comment"),
        )
        label = int(bool(row["covid19"]))
        recordings.append(Recording(path, label, row["source"], sha256_file(path), bool(row.get("verified")), meta))
    return _finish(recordings, report, only_verified_positives)


COSWARA_LABELS = {"positive_mild": 1, "positive_moderate": 1, "positive_asymp": 1, "healthy": 0}
COSWARA_SOUND_TYPES = {
    "cough-heavy": "cough",
    "cough-shallow": "cough",
    "counting-normal": "speech",
    "counting-fast": "speech",
    "vowel-a": "speech",
    "vowel-e": "speech",
    "vowel-o": "speech",
    "breathing-deep": "breathing",
    "breathing-shallow": "breathing",
}
COSWARA_KINDS = tuple(COSWARA_SOUND_TYPES)


def load_coswara(
    root: Path = COSWARA, kinds: Sequence[str] = COSWARA_KINDS, min_quality: int = 1
) -> tuple[list[Recording], LoadReport]:
    """Coswara's own layout: `participants/<id>/<sound>.flac` + `metadata.json`, `annotations/<sound>_labels.csv`.

    Every participant's files are loaded whatever their COVID-19 status, because the gate needs them all:
    `label` is 1 for positive_*, 0 for healthy and -1 for anything less clear (recovered, exposed, other
    respiratory illness). The gate's label is `sound_type`: the two coughs are "cough", counting and the
    sustained vowels "speech" (voice), the two breathing sounds "breathing". Listeners rated every file's
    QUALITY (2 excellent, 1 good, 0 bad: silent, noise only or the wrong sound, so a quality-0 "cough" may hold
    none); files below `min_quality`, and files nobody rated, are excluded and counted per sound. Files that are
    all zeros or only a header are not detected here (nothing is decoded): `decode_all` reports them.
    Participants come from the `participants/` folders and the batch CSV (`<date>.csv`), which also stands in
    for a missing `metadata.json`.
    """
    root = Path(root)
    unknown = [kind for kind in kinds if kind not in COSWARA_SOUND_TYPES]
    if unknown:
        raise ValueError(f"unknown Coswara sound(s) {unknown}; known: {list(COSWARA_SOUND_TYPES)}")
    report = LoadReport("coswara", root=root)
    quality = {kind: _coswara_quality(root / "annotations" / f"{kind}_labels.csv", kind) for kind in kinds}
    recordings = []
    for participant, info in _coswara_participants(root).items():
        status = str(info.get("covid_status") or "")
        for kind in kinds:
            path = root / "participants" / participant / f"{kind}.flac"
            if not path.is_file():
                report.missing.append(path)
                continue
            report.found += 1
            rating = quality[kind].get(participant)
            if rating is None:
                report.excluded[f"no quality annotation ({kind})"] += 1
                continue
            if rating < min_quality:
                report.excluded[f"quality<{min_quality} ({kind})"] += 1
                continue
            meta = _meta(participant=participant, kind=kind, sound_type=COSWARA_SOUND_TYPES[kind], quality=rating,
                         covid_status=status, age=_age(info.get("a")), gender=info.get("g"),
                         country=info.get("l_c"), device=info.get("dT"))
            label = COSWARA_LABELS.get(status, -1)
            recordings.append(Recording(path, label, "coswara", sha256_file(path), False, meta))
    return _count(recordings, report)


def _coswara_participants(root: Path) -> dict[str, dict]:
    """Each participant's metadata by id, from `participants/<id>/metadata.json`, else from the batch CSV."""
    rows = {row["id"]: row for path in sorted(root.glob("*.csv")) for row in _read_csv(path, ("id", "covid_status"))}
    folders = {p.name for p in (root / "participants").iterdir() if p.is_dir()}
    people = {}
    for participant in sorted(folders | rows.keys()):
        metadata = root / "participants" / participant / "metadata.json"
        people[participant] = (
            json.loads(metadata.read_text(encoding="utf-8")) if metadata.is_file() else rows.get(participant, {})
        )
    return people


def _coswara_quality(path: Path, kind: str) -> dict[str, int]:
    """QUALITY per participant from one sound's annotation CSV; a file rated twice keeps the worse rating."""
    quality: dict[str, int] = {}
    for row in _read_csv(path, ("FILENAME", "QUALITY")):
        participant, sep, sound = row["FILENAME"].rpartition("_")
        if not sep or sound != kind:
            raise ValueError(f"{path}: FILENAME {row['FILENAME']!r} is not <id>_{kind}")
        rating = int(row["QUALITY"])
        quality[participant] = min(rating, quality.get(participant, rating))
    return quality


def _age(value: object) -> int | None:
    """Age in years; metadata.json has a number, the CSV a string, both may be blank."""
    text = str(value if value is not None else "").strip()
    return int(text) if text.isdigit() else None


ESC10_CLASS = re.compile(r"(\d{3}) - (.+)")
ESC10_CLIP = re.compile(r"(\d+)-(\d+)-([A-Z])\.ogg")
ESC10_FOLDS = {"train": (1, 2), "val": (3,), "test": (4,)}


def load_esc10(root: Path = ESC10) -> tuple[list[Recording], LoadReport]:
    """ESC-10: `<class id> - <class name>/<fold>-<freesound id>-<take>.ogg`, every class "other" for the gate.

    Including "person sneeze": a sneeze is not a cough. `clip` is the Freesound id: the takes cut from one
    source recording share it and one fold, so splits go by fold (`split_by_fold`). Files in a class folder
    with any other name are excluded and counted.
    """
    root = Path(root)
    report = LoadReport("esc10", root=root)
    recordings = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        category = ESC10_CLASS.fullmatch(folder.name)
        if category is None:
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            report.found += 1
            clip = ESC10_CLIP.fullmatch(path.name)
            if clip is None:
                report.excluded["unexpected file name"] += 1
                continue
            meta = _meta(fold=int(clip[1]), clip=clip[2], category=category[2].lower(), sound_type="other")
            recordings.append(Recording(path, -1, "esc10", sha256_file(path), False, meta))
    return _count(recordings, report)


SPEECH_COMMANDS_CLIP = re.compile(r"([0-9a-f]{8})_nohash_(\d+)\.wav")


def load_speech_commands(root: Path = SPEECH_COMMANDS) -> tuple[list[Recording], LoadReport]:
    """Speech Commands: `<word>/<speaker hash>_nohash_<n>.wav`, one spoken word each, "speech" for the gate.

    `speaker` is the hash, which groups a speaker's clips (`group_split(..., "speaker")`). Folders whose name
    starts with "_" (the full release's `_background_noise_`) hold no speech and are excluded and counted, as
    are files named otherwise; the text files beside the word folders are ignored.
    """
    root = Path(root)
    report = LoadReport("speech-commands", root=root)
    recordings = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            report.found += 1
            clip = None if folder.name.startswith("_") else SPEECH_COMMANDS_CLIP.fullmatch(path.name)
            if folder.name.startswith("_"):
                report.excluded[f"not a word ({folder.name})"] += 1
            elif clip is None:
                report.excluded["unexpected file name"] += 1
            else:
                meta = _meta(speaker=clip[1], word=folder.name, sound_type="speech")
                recordings.append(Recording(path, -1, "speech-commands", sha256_file(path), False, meta))
    return _count(recordings, report)


def _cache_path(cache_dir: Path, rec: Recording) -> Path:
    return cache_dir / f"{rec.sha256}-{SAMPLE_RATE}.npz"


def _read_cache(path: Path) -> np.ndarray | None:
    try:
        with np.load(path) as data:
            return data["waveform"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _write_cache(path: Path, waveform: np.ndarray) -> None:
    """Write atomically so an interrupted run never leaves a truncated cache entry behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, waveform=waveform)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def decode_all(
    recordings: Sequence[Recording],
    progress: bool = True,
    cache_dir: Path | None = None,
    report: LoadReport | None = None,
) -> tuple[list[tuple[Recording, np.ndarray]], list[tuple[Recording, str]]]:
    """Decode every recording to 16 kHz float32 through `coughkd.audio.load_audio` (the runtime's own path).

    A file that cannot be decoded is returned with its error message instead of stopping the run (trap 3) and,
    given a `report`, recorded there. With `cache_dir`, waveforms are kept as `<sha256>-16000.npz` so later runs
    skip mp3 decoding; the key is the content hash, so renamed or duplicated files share an entry.
    Byte-identical files that decoded then go through `deduplicate` (a no-op after loaders that deduplicated
    already). The gate's loaders leave it to this point because their identical files are all-zero or
    header-only copies across sounds and participants: each copy fails here and is reported once as
    undecodable, where deduplicating first would have hidden them as one conflicting group.
    """
    decoded: list[tuple[Recording, np.ndarray]] = []
    failed: list[tuple[Recording, str]] = []
    for rec in tqdm(recordings, desc="decoding", unit="file", disable=not progress):
        cached = _cache_path(Path(cache_dir), rec) if cache_dir is not None else None
        waveform = _read_cache(cached) if cached is not None and cached.is_file() else None
        if waveform is None:
            try:
                waveform = load_audio(rec.path).waveform
            except AudioError as err:
                failed.append((rec, str(err)))
                continue
            if cached is not None:
                _write_cache(cached, waveform)
        decoded.append((rec, waveform))
    if report is not None:
        report.add_undecodable(failed)
    waveforms = {rec.sha256: waveform for rec, waveform in decoded}
    kept = deduplicate((rec for rec, _ in decoded), report if report is not None else LoadReport("decoded"))
    return [(rec, waveforms[rec.sha256]) for rec in kept], failed


def _leakage_groups(recordings: Sequence[Recording], key: str = "participant") -> list[list[int]]:
    """Indices of recordings that must share a split: same content hash or same `meta[key]` (union-find)."""
    parent = list(range(len(recordings)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[tuple[str, MetaValue], int] = {}
    for i, rec in enumerate(recordings):
        links = [("sha256", rec.sha256)]
        if rec.get(key) is not None:
            links.append((key, rec.get(key)))
        for link in links:
            j = first_with.setdefault(link, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(recordings)):
        groups[find(i)].append(i)
    return list(groups.values())


def split(
    recordings: Sequence[Recording], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, list[Recording]]:
    """Split into train/val/test, grouped by content hash (and participant, where known), stratified by
    (source, label), deterministic for a seed.

    Each stratum is shuffled with its own generator seeded from `seed` and the stratum's name, so adding a
    dataset does not reshuffle the others; groups then go, largest first, to the split furthest below its
    target share. Recordings keep their input order within a split.
    """
    _check_fractions(fractions)
    by_stratum: dict[tuple[str, int], list[list[int]]] = defaultdict(list)
    for members in _leakage_groups(recordings):
        counts = Counter((recordings[i].source, recordings[i].label) for i in members)
        by_stratum[counts.most_common(1)[0][0]].append(members)
    assignment: dict[int, int] = {}
    for (source, label), groups in sorted(by_stratum.items()):
        rng = np.random.default_rng([seed, zlib.crc32(f"{source}/{label}".encode())])
        groups = sorted(groups, key=lambda m: min(recordings[i].sha256 for i in m))
        shuffled = sorted((groups[k] for k in rng.permutation(len(groups))), key=len, reverse=True)
        targets = np.asarray(fractions, dtype=float) * sum(len(m) for m in shuffled)
        filled = np.zeros(len(SPLITS))
        for members in shuffled:
            k = int(np.argmax(targets - filled))
            filled[k] += len(members)
            assignment.update((i, k) for i in members)
    return {name: [r for i, r in enumerate(recordings) if assignment[i] == k] for k, name in enumerate(SPLITS)}


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != len(SPLITS) or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be {len(SPLITS)} non-negative numbers summing to 1, got {fractions}")


def group_split(
    recordings: Sequence[Recording], key: str, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, list[Recording]]:
    """Split the gate's data into train/val/test by `meta[key]` (participant, speaker), stratified by sound type.

    Files sharing a `key` value or a content hash form one group, so a person's sounds never sit on both sides.
    A Coswara group holds all of a person's sound types, so the shares per type are only as even as whole groups
    allow: groups go, largest first in a seeded shuffle, to the split whose per-type shortfall (each type
    weighted by 1 / its total) they fill most. Deterministic for a seed and independent of input order;
    recordings keep their input order within a split.
    """
    _check_fractions(fractions)
    unkeyed = [rec.path for rec in recordings if rec.get(key) is None]
    if unkeyed:
        raise ValueError(f"{len(unkeyed)} recording(s) have no {key!r} to group by, e.g. {unkeyed[0]}")
    types = sorted({rec.get("sound_type") for rec in recordings}, key=str)
    column = {sound_type: j for j, sound_type in enumerate(types)}

    def composition(members: list[int]) -> np.ndarray:
        return np.bincount([column[recordings[i].get("sound_type")] for i in members], minlength=len(types))

    groups = sorted(_leakage_groups(recordings, key), key=lambda m: min(recordings[i].sha256 for i in m))
    order = np.random.default_rng(seed).permutation(len(groups))
    shuffled = sorted((groups[k] for k in order), key=len, reverse=True)
    totals = sum((composition(m) for m in groups), np.zeros(len(types), dtype=int))
    shortfall = np.outer(np.asarray(fractions, dtype=float), totals)
    weights = 1.0 / np.maximum(totals, 1)
    assignment: dict[int, int] = {}
    for members in shuffled:
        counts = composition(members)
        k = int(np.argmax(shortfall @ (counts * weights)))
        shortfall[k] -= counts
        assignment.update((i, k) for i in members)
    return {name: [r for i, r in enumerate(recordings) if assignment[i] == k] for k, name in enumerate(SPLITS)}


def split_by_fold(
    recordings: Sequence[Recording], folds: dict[str, Sequence[int]] = ESC10_FOLDS
) -> dict[str, list[Recording]]:
    """ESC-10's split: whole folds, since the takes of one source recording share a fold.

    Fold 5 is held back outside the repository; a recording from a fold no split names raises rather than
    silently joining or leaving a split.
    """
    split_of = {fold: name for name, members in folds.items() for fold in members}
    parts: dict[str, list[Recording]] = {name: [] for name in folds}
    for rec in recordings:
        fold = rec.get("fold")
        if fold not in split_of:
            raise ValueError(f"{rec.path.name}: fold {fold} is in none of the splits {dict(folds)}")
        parts[split_of[fold]].append(rec)
    return parts

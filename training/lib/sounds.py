"""The sound-type gate's data: real recordings of coughs, speech, breathing and everyday sounds, their telephone
versions, cough recordings with other sounds around them, and the teacher's judgement of each as soft targets; the
whole set assembled (sound_set) and read by a gate as the runtime reads a clip (gate_probabilities).

What each sound type holds (coughkd.model.SOUND_TYPES), decided here for every source:
- cough: covid19-cough recordings, Coswara cough-heavy/-shallow; of AudioSet's classes Cough and Throat clearing
  (the tagger calls many phone coughs throat clearing, and induced coughs often start with one);
- speech: any voice: Coswara counting and sustained vowels, Speech Commands words, espeak-ng speech; AudioSet's
  speech, whispering, shouting, singing, humming and chatter classes;
- breathing: Coswara breathing-deep/-shallow; AudioSet's Breathing, Wheeze, Snoring, Gasp, Pant, Snort, Sniff, Sigh;
- other: everything else, sneezes (a sneeze is not a cough) and laughter among them: ESC-10's everyday sounds and
  the generated noise, tones and music-like clips.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
from torch import nn

from coughkd.audio import SAMPLE_RATE, load_audio
from coughkd.features import MAX_CLIP_SECONDS, TELEPHONE_RATE
from coughkd.model import SOUND_TYPES
from coughkd.predict import sigmoid, softmax
from training.lib.clips import ClipFeatures, ClipSet, PackedClips
from training.lib.data import (
    COSWARA,
    ESC10,
    ESC10_FOLDS,
    SPEECH_COMMANDS,
    Recording,
    decode_all,
    group_split,
    load_coswara,
    load_esc10,
    load_speech_commands,
    split_by_fold,
)

# AudioSet class indices (../shared/models/audioset_class_labels_indices.csv) of each named sound type.
TAG_CLASSES = {
    "cough": (47, 48),
    "speech": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 68, 70),
    "breathing": (26, 41, 42, 43, 44, 45, 46, 50),
}
MU = 255  # G.711 mu-law, the telephone codec of the call-centre recordings' networks
REAL = ("coswara", "esc10", "speech-commands", "covid19-cough")  # the data sets of real recordings
# Gate settings added after some recipes were recorded in a checkpoint, at the values those recipes had: what a
# recipe read back from a checkpoint is completed with (training.gate_crossval, training.gate_robustness, the card).
LATER_SETTINGS = {"speed_copies": 1.0, "n_non_cough_mixtures": 0, "sneeze_weight": 1.0, "quiet_padding": 1.0,
                  "pooling": "mean+max"}
# What a card row calls a recording of each loaded data set (training.lib.data sets these meta keys).
KIND = {"coswara": lambda rec: str(rec.get("kind")), "esc10": lambda rec: str(rec.get("category")),
        "speech-commands": lambda rec: "one word"}
# ... and the group it belongs to: clips of one group are never on both sides of a split or a fold.
GROUP = {"coswara": lambda rec: f"coswara:{rec.get('participant')}",
         "esc10": lambda rec: f"esc10:fold{rec.get('fold')}",
         "speech-commands": lambda rec: f"speech-commands:{rec.get('speaker')}"}


@dataclass
class SoundClips(PackedClips):
    """Clips for the gate, each with what it is and where it came from."""

    sound_type: np.ndarray  # (N,) index into SOUND_TYPES
    split: np.ndarray  # (N,) "train" | "val" | "test"
    dataset: np.ndarray  # (N,) one of REAL, "generated" or "mixture"
    kind: np.ndarray  # (N,) Coswara's sound, the ESC-10 class, "word", the covid19-cough source, the generated kind
    channel: np.ndarray  # (N,) "wideband", or "telephone" (call-centre audio, or made by `telephone`)
    group: np.ndarray  # (N,) who or what it came from ("coswara:<participant>", "esc10:fold<k>", ...): copies keep it


def teacher_distribution(tags: np.ndarray) -> np.ndarray:
    """(n, len(SOUND_TYPES)) probabilities from AudioSet logits (n, 527): each named type's strongest class (the
    tagger's outputs are independent sigmoids), "other" the chance that none of them is there, normalised."""
    probabilities = np.asarray(sigmoid(tags))
    named = {t: probabilities[:, list(TAG_CLASSES[t])].max(axis=1) for t in TAG_CLASSES}
    named["other"] = 1.0 - np.max(list(named.values()), axis=0)
    distribution = np.stack([named[t] for t in SOUND_TYPES], axis=1)
    return (distribution / distribution.sum(axis=1, keepdims=True)).astype(np.float32)


def mu_law(x: np.ndarray) -> np.ndarray:
    """An 8-bit G.711 mu-law round trip of audio at full scale +-1: the quantisation noise of a telephone line."""
    x = np.clip(x, -1.0, 1.0)
    code = np.round((np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU) + 1) / 2 * MU)
    y = code / MU * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


def telephone(waveform: np.ndarray) -> np.ndarray:
    """A 16 kHz recording as a call-centre line delivers it: 8 kHz, mu-law, then up through `load_audio` as the
    runtime decodes an 8 kHz file."""
    narrow = soxr.resample(np.asarray(waveform, dtype=np.float32), SAMPLE_RATE, TELEPHONE_RATE, quality="HQ")
    return load_audio(mu_law(narrow / max(float(np.abs(narrow).max()), 1e-9)), sample_rate=TELEPHONE_RATE).waveform


def from_recordings(decoded: Sequence[tuple[Recording, np.ndarray]], split_of: dict[str, str],
                    dataset: str) -> SoundClips:
    """Decoded recordings of one real data set (training.lib.data loaders set each one's `sound_type` and `kind`), cut
    to the longest piece the runtime scores at once."""
    longest = int(MAX_CLIP_SECONDS * SAMPLE_RATE)
    return SoundClips.build(
        [w[:longest] for _, w in decoded],
        sound_type=[SOUND_TYPES.index(str(rec.get("sound_type"))) for rec, _ in decoded],
        split=[split_of[rec.sha256] for rec, _ in decoded], dataset=[dataset] * len(decoded),
        kind=[KIND[dataset](rec) for rec, _ in decoded], channel=["wideband"] * len(decoded),
        group=[GROUP[dataset](rec) for rec, _ in decoded])


def from_clip_set(clips: ClipSet) -> SoundClips:
    """The COVID-19 student's clips, in their own splits: every data-set recording is a cough, generated audio is
    speech (espeak-ng) or other."""
    cough = clips.is_cough == 1
    kinds = np.array([s.removeprefix("generated:") for s in clips.source.astype(str)])
    types = np.where(cough, "cough", np.where(kinds == "speech", "speech", "other"))
    return SoundClips(clips.audio, clips.offsets, np.array([SOUND_TYPES.index(t) for t in types]), clips.split,
                      np.where(cough, "covid19-cough", "generated"), kinds,
                      np.where(kinds == "call-center", "telephone", "wideband"),
                      np.where(cough, np.char.add("covid19-cough:", clips.recording.astype(str)), "generated"))


def telephone_copies(sounds: SoundClips) -> SoundClips:
    """A telephone version of every wideband clip but the covid19-cough ones, in the same split: call-centre coughs
    are 8 kHz, so the gate must hear 8 kHz speech, breathing and everyday sounds too, or the line itself would say
    "cough"."""
    rows = np.flatnonzero((sounds.channel == "wideband") & (sounds.dataset != "covid19-cough"))
    copies = [telephone(sounds.waveform(i)) for i in rows]
    return SoundClips.build(copies, **{k: getattr(sounds, k)[rows] for k in SoundClips.per_clip() if k != "channel"},
                            channel=["telephone"] * len(rows))


def speed_copies(sounds: SoundClips, max_factor: float, seed: int) -> SoundClips:
    """A copy of every real wideband training clip played faster or slower (pitch and pace together, as a tape
    would) by a random factor within 1 / ``max_factor``..``max_factor``, at least 5% away from 1: fifty people's
    voices and sixteen sneezes are few, and the teacher tags each copy afresh, so the gate hears its judgement of
    voices and sneezes a little higher, lower, quicker or slower than any recorded. Tags and labels stay the clip's."""
    if max_factor <= 1.0:
        return sounds.subset(np.zeros(len(sounds), dtype=bool))
    rows = np.flatnonzero((sounds.split == "train") & (sounds.channel == "wideband") & np.isin(sounds.dataset, REAL))
    rng = np.random.default_rng([seed, 5])
    size = np.log(max_factor) - np.log(1.05)
    factors = np.exp(np.log(1.05) + rng.uniform(0, size, len(rows))) ** rng.choice([-1, 1], len(rows))
    copies = [soxr.resample(sounds.waveform(i), int(round(SAMPLE_RATE * f)), SAMPLE_RATE, quality="HQ")
              for i, f in zip(rows, factors)]
    return SoundClips.build(copies, **{k: getattr(sounds, k)[rows] for k in SoundClips.per_clip()})


def mixtures(sounds: SoundClips, n: int, split: str, seed: int, with_cough: bool = True) -> SoundClips:
    """Up to `n` cough recordings of one split (and no more than it has real coughs, so no cough is used much more
    than once) with speech or an everyday sound of the same line (wideband or telephone) before or after the cough,
    a short pause between: a person who talks before coughing still recorded coughs, and the gate must say so.

    ``with_cough=False``: the same made of two speech or everyday recordings and no cough (speech if either holds
    a voice, else other). Without them every joined-up clip the gate learnt from would be a cough, and "two sounds
    with a pause between" would be a cough's sign."""
    rng = np.random.default_rng([seed, sum(map(ord, split))] + ([] if with_cough else [1]))
    in_split = (sounds.split == split) & np.isin(sounds.dataset, REAL)
    coughs = np.flatnonzero(in_split & (sounds.sound_type == SOUND_TYPES.index("cough")))
    others = np.flatnonzero(in_split & np.isin(sounds.sound_type, [SOUND_TYPES.index(t) for t in ("speech", "other")]))
    firsts = coughs if with_cough else others
    waveforms, types, kinds, channels, groups = [], [], [], [], []
    for _ in range(min(n, len(firsts)) if len(others) else 0):
        first = int(rng.choice(firsts))
        same_line = others[(sounds.channel[others] == sounds.channel[first]) & (others != first)]
        if len(same_line) == 0:
            continue
        other = int(rng.choice(same_line))
        parts = [_piece(sounds.waveform(i), rng) * rng.uniform(0.5, 1.0) for i in (first, other)]
        pause = rng.standard_normal(int(rng.uniform(0.1, 0.5) * SAMPLE_RATE)).astype(np.float32) * 1e-3
        order = parts if rng.random() < 0.5 else parts[::-1]
        mixed = np.concatenate([order[0], pause, order[1]])
        waveforms.append(mixed / np.abs(mixed).max())
        pair = [SOUND_TYPES[sounds.sound_type[i]] for i in (first, other)]
        types.append(SOUND_TYPES.index("cough" if with_cough else "speech" if "speech" in pair else "other"))
        kinds.append(" + ".join(pair))
        channels.append(sounds.channel[first])
        groups.append(f"{sounds.group[first]} + {sounds.group[other]}")
    return SoundClips.build(waveforms, sound_type=np.array(types, dtype=int), split=[split] * len(waveforms),
                            dataset=["mixture"] * len(waveforms), kind=kinds, channel=channels, group=groups)


def _piece(waveform: np.ndarray, rng: np.random.Generator, seconds: float = 4.0) -> np.ndarray:
    """At most `seconds` of a waveform at a random offset, peak-normalised."""
    size = min(len(waveform), int(seconds * SAMPLE_RATE))
    start = int(rng.integers(0, len(waveform) - size + 1))
    piece = waveform[start:start + size]
    return piece / max(float(np.abs(piece).max()), 1e-9)


def real_sounds(config: dict) -> tuple[SoundClips, dict]:
    """Coswara, ESC-10 and Speech Commands decoded and split (participant / fold / speaker disjoint, seeded), with
    what each loader dropped and why."""
    cache = Path(config["audio_cache"])
    coswara, coswara_report = load_coswara(COSWARA, min_quality=config["min_quality"])
    esc, esc_report = load_esc10(ESC10)
    speech, speech_report = load_speech_commands(SPEECH_COMMANDS)
    if config["limit"]:
        rng = np.random.default_rng(config["seed"])
        coswara, esc, speech = ([r[i] for i in np.sort(rng.permutation(len(r))[:config["limit"]])]
                                for r in (coswara, esc, speech))
    splits = {
        "coswara": group_split(coswara, "participant", seed=config["seed"]),
        "esc10": split_by_fold(esc, ESC10_FOLDS),
        "speech-commands": group_split(speech, "speaker", seed=config["seed"]),
    }
    parts, reports = [], {}
    for dataset, recordings, report in (("coswara", coswara, coswara_report), ("esc10", esc, esc_report),
                                        ("speech-commands", speech, speech_report)):
        split_of = {r.sha256: name for name, members in splits[dataset].items() for r in members}
        chosen = [r for r in recordings if r.sha256 in split_of]
        decoded, _ = decode_all(chosen, cache_dir=cache, report=report)
        parts.append(from_recordings(decoded, split_of, dataset))
        reports[dataset] = report.as_dict()
        print(report)
    return SoundClips.concatenate(parts), reports


def recorded_sounds(clips: ClipSet, config: dict) -> tuple[SoundClips, dict]:
    """The run's clips and the real recordings, in their splits, with what the loaders dropped."""
    real, reports = real_sounds(config)
    return SoundClips.concatenate([from_clip_set(clips), real]), reports


def sound_set(clips: ClipSet, config: dict) -> tuple[SoundClips, dict]:
    """Everything the gate learns from and is measured on, in one set: the run's clips and the real recordings
    (recorded_sounds), and what is made of them (made_sounds)."""
    base, reports = recorded_sounds(clips, config)
    return made_sounds(base, config), reports


def made_sounds(base: SoundClips, config: dict) -> SoundClips:
    """``base`` with, split by split, what is made of it: the speed copies of its training clips, a telephone copy
    of each wideband clip and the mixtures, with and without a cough, of each split (training.gate's docstring says
    why). Each intermediate set is let go as soon as the next holds it: the audio is the step's largest part."""
    sped = SoundClips.concatenate([base, speed_copies(base, config["speed_copies"], config["seed"])])
    with_lines = SoundClips.concatenate([sped, telephone_copies(sped)])
    del sped
    counts = ((True, config["n_mixtures"]), (False, config["n_non_cough_mixtures"]))
    made = [mixtures(with_lines, n, split, config["seed"], with_cough)
            for with_cough, total in counts
            for split, n in (("train", total), ("val", total // 4), ("test", total // 4))]
    return SoundClips.concatenate([with_lines, *made])


@torch.no_grad()
def gate_probabilities(model: nn.Module, feats: list[ClipFeatures]) -> np.ndarray:
    """(n, len(SOUND_TYPES)) of whole clips, as the runtime reads a clip of up to 30 s (one call on its log-mel)."""
    model.eval()
    return np.stack([softmax(model(torch.from_numpy(f.log_mel[None])).numpy()[0]) for f in feats])

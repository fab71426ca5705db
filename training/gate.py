"""Step 4: distil the teacher's judgement of real sounds into the sound-type gate (cough / speech / breathing / other).

    python -m training.gate --run_dir=runs/latest          # after prepare (its clips.npz)

The gate's data (training.lib.sounds): the run's covid19-cough recordings and generated clips in their own splits, and
the real recordings of Coswara (every sound of 50 people, split by participant), ESC-10 (everyday sounds, split by
fold) and Speech Commands (words, split by speaker); a telephone copy of every wideband clip; cough recordings with
speech or an everyday sound around them, and speech and everyday sounds joined up the same way with no cough
(``n_non_cough_mixtures``); a copy of every real wideband training clip played faster or slower
(speed_copies). EfficientAT mn04 tags every clip and every event window once; its AudioSet tags become soft
sound-type targets, blended with the known label of each clip (``tag_weight``). The network
(students.SoundTypeCNN) learns from whole clips (up to ``max_seconds`` around their first event) and from event
windows, so both of the runtime's calls are trained (training.lib.gate_training); losses are balanced over sound
types, then over data sets, and ESC-10's sneezes, the everyday sound most like a cough, weigh more
(``sneeze_weight``). While it trains, a read-out of its embedding also learns all 527 AudioSet classes of the
tagger (GateTraining), and its inputs come at random levels, tilts and background noise (level_and_tilt,
background_noise), half the batches inside seconds of their own background (quiet_padding): real recordings come
from other microphones and rooms than these data sets, and often hold a cough in seconds of quiet. Why these settings:
docs/experiments.md. The gate's threshold is chosen on the validation clips
(training.lib.metrics.choose_gate_threshold). Writes ``sound_cnn.pt`` and ``sounds.json`` (every clip's data set,
kind, channel, split and sound type).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from coughkd.audio import SAMPLE_RATE
from coughkd.model import SOUND_TYPES
from training.lib.clips import ClipFeatures, ClipSet, features
from training.lib.configurator import configure
from training.lib.gate_training import train_member
from training.lib.metrics import choose_gate_threshold, gate_auc, gate_groups, gate_rates
from training.lib.sounds import (
    SoundClips,
    gate_probabilities,
    sound_set,
)
from training.models.students import GateEnsemble, count_parameters

# ---- config: plain values, override with --name=value -------------------------------------------------------------
run_dir = "runs/latest"
audio_cache = "runs/cache/audio"  # decoded 16 kHz waveforms keyed by content hash, shared by all runs
tag_cache = "runs/cache/efficientat_tags.npz"  # the teacher's AudioSet logits keyed by content hash ("": none)
min_quality = 1  # Coswara files its listeners rated below this (0 = bad: silent, noise only, wrong content) are out
speed_copies = 1.25  # > 1: each real wideband training clip also played up to this much faster or slower
n_mixtures = 400  # cough + speech/other recordings made for the training split (a quarter as many for val and test)
n_non_cough_mixtures = 0  # ... and speech/other + speech/other recordings, no cough in them
sneeze_weight = 16.0  # ESC-10's sneezes (and their copies) weigh this many times their share of the loss
# (16: the fewest wrong of 1, 4, 8 and 16 in the gate's cross-validation; docs/experiments.md)
tag_weight = 0.3  # target = (1 - w) * known label + w * the teacher's sound-type distribution
gain_db = 6.0  # training inputs at a random level within +-gain_db (level_and_tilt)
tilt_db = 6.0  # ... and a random spectral tilt within +-tilt_db across the band
noise_snr_min_db = 5.0  # half the training inputs with background noise at an SNR in [min, max] dB
noise_snr_max_db = 35.0  # (background_noise; max 0: off)
reverb_rt60_max_s = 0.0  # half the training inputs in a room with a reverberation time in [0.2 s, this] (0: off)
quiet_padding = 4.0  # half the training batches inside up to this many times their length of their own
# background, at most 10 s (quiet_padding; 1: off): half the validation mistakes under gate_robustness's changes,
# the fewer mostly coughs in quiet or digital silence; cross-validated AUC within noise (docs/experiments.md)
pooling = "mean+max"  # the networks' pooling over time, "mean+max", "max" or "active" (students.POOLINGS; max alone
# and active resist quiet around a cough but cost AUC in cross-validation, docs/experiments.md)
pitch_bins = 0  # half the training inputs shifted up or down by up to this many mel bins (pitch_and_speed; 0: off)
speed_max = 1.0  # ... and played faster or slower by up to this factor (1: off)
all_tags_weight = 1.0  # weight of the read-out of all the teacher's AudioSet classes (GateTraining; 0: off)
windows_per_clip = 2  # event windows per clip trained on (and tagged by the teacher)
max_seconds = 5.0  # whole-clip items are cut to this much around their first event (5 s: within noise
# of 10 s, cross-validated, for 15-25% less training; docs/experiments.md)
epochs = 30
members = 2  # gate networks trained from seeds seed, seed + 1, ...; the shipped gate is their mean (GateEnsemble)
limit = 0  # > 0: at most this many recordings of each real data set (smoke runs)
resume = False  # True: load run_dir/sound_cnn.pt instead of training (the sound set is still built, for evaluation)
batch_size = 32
learning_rate = 3e-3
weight_decay = 1e-2
seed = 0
# --------------------------------------------------------------------------------------------------------------------

def train_gate(sounds: SoundClips, feats: list[ClipFeatures], config: dict) -> dict:
    """Train ``members`` networks (seeds seed, seed + 1, ...) on the same split, choose the threshold of their mean
    on the validation clips; returns the checkpoint dict."""
    trained = [train_member(sounds, feats, {**config, "seed": config["seed"] + k}) for k in range(config["members"])]
    model = GateEnsemble([network for network, _, _ in trained]).eval()
    val = np.flatnonzero(sounds.split == "val")
    groups = gate_groups(sounds.subset(sounds.split == "val"))
    p_cough = gate_probabilities(model, [feats[i] for i in val])[:, 0]
    threshold = choose_gate_threshold(p_cough, groups)
    validation = {"rates": gate_rates(p_cough, groups, threshold), "auc": gate_auc(p_cough, groups)}
    members = [{k: v.detach().cpu().clone() for k, v in network.state_dict().items()} for network, _, _ in trained]
    return {"members": members, "parameters": count_parameters(model), "threshold": threshold,
            "history": [history for _, history, _ in trained], "items": trained[0][2], "validation": validation,
            "config": {k: v for k, v in config.items() if k != "run_dir"}}


def describe(sounds: SoundClips) -> list[dict]:
    """One row per clip: what sounds.json records of the set."""
    return [{"dataset": str(d), "kind": str(k), "channel": str(c), "split": str(s), "sound_type": SOUND_TYPES[t],
             "seconds": round(len(sounds.waveform(i)) / SAMPLE_RATE, 3)}
            for i, (d, k, c, s, t) in enumerate(zip(sounds.dataset, sounds.kind, sounds.channel, sounds.split,
                                                     sounds.sound_type))]


def run(*, run_dir: str = run_dir, audio_cache: str = audio_cache, tag_cache: str = tag_cache,
        min_quality: int = min_quality, speed_copies: float = speed_copies, n_mixtures: int = n_mixtures,
        n_non_cough_mixtures: int = n_non_cough_mixtures, sneeze_weight: float = sneeze_weight,
        tag_weight: float = tag_weight, all_tags_weight: float = all_tags_weight, gain_db: float = gain_db,
        tilt_db: float = tilt_db, noise_snr_min_db: float = noise_snr_min_db,
        noise_snr_max_db: float = noise_snr_max_db, reverb_rt60_max_s: float = reverb_rt60_max_s,
        quiet_padding: float = quiet_padding, pooling: str = pooling, pitch_bins: int = pitch_bins,
        speed_max: float = speed_max, windows_per_clip: int = windows_per_clip, max_seconds: float = max_seconds,
        epochs: int = epochs, members: int = members, limit: int = limit, resume: bool = resume,
        batch_size: int = batch_size, learning_rate: float = learning_rate, weight_decay: float = weight_decay,
        seed: int = seed, clips: ClipSet | None = None) -> tuple[dict, SoundClips, list[ClipFeatures]]:
    """``clips``: the run's ClipSet when the caller has it (reproduce). Returns (checkpoint, the sound set, its
    features) for evaluation."""
    config = {k: v for k, v in locals().items() if k != "clips"}
    run = Path(config["run_dir"])
    clips = ClipSet.load(run / "clips.npz") if clips is None else clips
    sounds, reports = sound_set(clips, config)
    feats = features(sounds)
    if config["resume"]:
        return torch.load(run / "sound_cnn.pt", map_location="cpu", weights_only=False), sounds, feats
    checkpoint = train_gate(sounds, feats, config)
    checkpoint["data"] = reports
    if PartialState().is_main_process:
        torch.save(checkpoint, run / "sound_cnn.pt")
        (run / "sounds.json").write_text(json.dumps(describe(sounds), indent=1))
        counts = {name: int((sounds.split == name).sum()) for name in ("train", "val", "test")}
        print(f"gate: {checkpoint['parameters']:,} parameters, {checkpoint['items']:,} training items, clips per "
              f"split {counts}, threshold {checkpoint['threshold']:.3f} -> {run / 'sound_cnn.pt'}")
        rates = ", ".join(f"{g} {k}/{n}" for g, (k, n) in checkpoint["validation"]["rates"].items())
        print(f"validation clips treated right: {rates}; cough-vs-rest AUC {checkpoint['validation']['auc']:.4f}")
    return checkpoint, sounds, feats


def main(argv: list[str]) -> tuple[dict, SoundClips, list[ClipFeatures]]:
    return run(**configure(globals(), argv))


if __name__ == "__main__":
    main(sys.argv[1:])

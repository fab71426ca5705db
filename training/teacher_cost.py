"""What the teacher step costs with wav2vec2-base on this machine's CPU, before a user commits to a full run.

    python -m training.teacher_cost                                   # 8 recordings, 2 threads
    python -m training.teacher_cost --finetune_epochs=3 --mode=frozen # and what fine-tuning would add

Builds the real wav2vec2-base architecture (``Wav2Vec2Config()`` defaults, 94M parameters) with random weights,
saved with ``save_pretrained`` to a temporary directory, so nothing is downloaded (random weights cost what the
pretrained ones do), and loads it as ``training.teacher`` does. Then it does the teacher step's per-clip work on a
seeded sample of covid19-cough recordings: decode, coughkd's front end (telephone band), and one forward pass over
the whole clip (``training.lib.teaching.teacher_outputs``), on ``threads`` CPU threads. Prints the time per clip, the
peak memory (``ru_maxrss`` of this process, the model built in a child process so its copy does not count) and the
expected time of the teacher step of a full run: ``recipe_clips`` x time per clip (the shipped recipe embeds 1,470
clips: 870 recordings, 2.5 s long on average, and 600 generated clips of 1-3 s). With ``finetune_epochs`` > 0 it also
times fine-tuning steps on 2 s crops (forward, backward and AdamW over ``batch_size`` crops, as
``training.lib.teaching.fine_tune``) and adds that many epochs over the recipe's 610 training and 131 validation crops.
"""
from __future__ import annotations

import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from coughkd.audio import SAMPLE_RATE, AudioError, load_audio
from coughkd.features import MAX_CLIP_SECONDS
from training.lib.clips import ClipFeatures, clip_features
from training.lib.configurator import configure
from training.lib.data import COVID19_COUGH
from training.lib.teaching import crop, teacher_outputs
from training.models.teachers import HFTeacher

# ---- config: plain values, override with --name=value -------------------------------------------------------------
data_root = str(COVID19_COUGH / "raw")
clips = 8  # recordings timed, drawn at random (seeded) from data_root
threads = 2
recipe_clips = 1470  # clips the teacher step embeds in the shipped recipe (870 recordings + 600 generated)
finetune_epochs = 0  # > 0: add this many fine-tuning epochs to the expected time
mode = "full"  # what is fine-tuned: "full" (every layer) or "frozen" (layer weights and head)
batch_size = 32  # crops per timed fine-tuning step (training.teacher's batch_size)
train_crops = 610  # the shipped recipe's training recordings, one 2 s crop each
val_crops = 131  # ... and validation recordings
seed = 0
# --------------------------------------------------------------------------------------------------------------------


def save_random_base(path: str) -> None:
    """wav2vec2-base's architecture with random weights, saved like a hub checkpoint."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(path)


def sample_clips(root: Path, n: int, seed: int) -> list[ClipFeatures]:
    """``n`` decodable recordings, drawn at random, as the teacher step gets them: at most 30 s (training.prepare),
    through the model's front end (training.lib.clips.features)."""
    paths = sorted(root.glob("*.mp3"))
    feats = []
    for i in np.random.default_rng(seed).permutation(len(paths)):
        try:
            waveform = load_audio(paths[i]).waveform[:int(MAX_CLIP_SECONDS * SAMPLE_RATE)]
        except AudioError:
            continue
        feats.append(clip_features(waveform))
        if len(feats) == n:
            return feats
    raise SystemExit(f"{root}: only {len(feats)} decodable recordings, {n} asked for")


def embedding_seconds(model: HFTeacher, feats: list[ClipFeatures]) -> list[float]:
    """Wall time of the teacher step's work on each clip, after one untimed warm-up clip."""
    teacher_outputs(model, feats[:1])
    seconds = []
    for f in feats:
        start = time.perf_counter()
        teacher_outputs(model, [f])
        seconds.append(time.perf_counter() - start)
    return seconds


def fine_tune_seconds(model: HFTeacher, feats: list[ClipFeatures], batch: int) -> tuple[float, float]:
    """(training, validation) seconds per 2 s crop: one AdamW step on ``batch`` crops after an untimed one (which
    allocates the optimiser's state), and one inference pass over them."""
    crops = torch.from_numpy(np.stack([crop(feats[i % len(feats)]) for i in range(batch)]))
    labels = (torch.arange(batch) % 2).float()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    for _ in range(2):  # the first pass warms up, the second is timed
        start = time.perf_counter()
        loss = F.binary_cross_entropy_with_logits(model(crops).covid_logit, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train = time.perf_counter() - start
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        model(crops)
    return train / batch, (time.perf_counter() - start) / batch


def peak_mib() -> float:
    """This process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(r: dict, config: dict) -> str:
    """The figures in words, as printed."""
    lines = [(f"wav2vec2-base teacher ({r['parameters'] / 1e6:.1f}M parameters, random weights, Wav2Vec2Config() "
              f"defaults) on {r['threads']} CPU threads:"),
             (f"  embedding {r['clips']} whole recordings ({r['mean_clip_seconds']:.1f} s of audio on average): "
              f"{r['seconds_per_clip']:.2f} s per clip ({r['seconds_per_clip'] / r['mean_clip_seconds']:.2f} s per "
              f"second of audio; fastest {r['fastest_seconds']:.2f} s, slowest {r['slowest_seconds']:.2f} s)")]
    memory = f"  peak memory: {r['peak_memory_mib']:,.0f} MiB embedding"
    tuned = ""
    if "epoch_minutes" in r:
        lines.append(f"  fine-tuning ({config['mode']}, batches of {config['batch_size']} crops of 2 s): "
                     f"{r['train_seconds_per_crop']:.2f} s per training crop, {r['val_seconds_per_crop']:.2f} s per "
                     f"validation crop: {r['epoch_minutes']:.1f} min per epoch ({config['train_crops']} + "
                     f"{config['val_crops']} crops)")
        memory += f", {r['finetune_peak_memory_mib']:,.0f} MiB with fine-tuning"
        tuned = f" + {config['finetune_epochs']} fine-tuning epochs {r['finetune_minutes']:.1f} min"
    lines.append(memory + " (ru_maxrss of this process)")
    lines.append(f"  expected teacher step of a full run on this CPU: {config['recipe_clips']:,} clips x "
                 f"{r['seconds_per_clip']:.2f} s = {r['embedding_minutes']:.1f} min{tuned}; "
                 f"{r['expected_minutes']:.1f} min in all")
    return "\n".join(lines)


def main(argv: list[str]) -> dict:
    config = configure(globals(), argv)
    torch.set_num_threads(config["threads"])
    feats = sample_clips(Path(config["data_root"]), config["clips"], config["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        builder = multiprocessing.get_context("spawn").Process(target=save_random_base, args=(tmp,))
        builder.start()
        builder.join()
        if builder.exitcode != 0:
            raise SystemExit(f"building wav2vec2-base failed (exit code {builder.exitcode})")
        model = HFTeacher(tmp, mode=config["mode"])
    seconds = embedding_seconds(model, feats)
    per_clip, audio = float(np.mean(seconds)), float(np.mean([len(f.waveform) for f in feats])) / SAMPLE_RATE
    result = {"parameters": sum(p.numel() for p in model.encoder.parameters()), "threads": config["threads"],
              "clips": len(seconds), "mean_clip_seconds": audio,
              "seconds_per_clip": per_clip, "fastest_seconds": min(seconds), "slowest_seconds": max(seconds),
              "embedding_minutes": config["recipe_clips"] * per_clip / 60, "peak_memory_mib": peak_mib()}
    if config["finetune_epochs"] > 0:
        train, val = fine_tune_seconds(model, feats, config["batch_size"])
        epoch = (config["train_crops"] * train + config["val_crops"] * val) / 60
        result.update(train_seconds_per_crop=train, val_seconds_per_crop=val, epoch_minutes=epoch,
                      finetune_minutes=config["finetune_epochs"] * epoch, finetune_peak_memory_mib=peak_mib())
    result["expected_minutes"] = result["embedding_minutes"] + result.get("finetune_minutes", 0.0)
    print(report(result, config))
    return result



if __name__ == "__main__":
    main(sys.argv[1:])

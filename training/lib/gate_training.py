"""How one sound-type gate network learns (training.gate trains the shipped ones, training.gate_crossval those of
its folds): its training items, the teacher's AudioSet tags of them, the loss, and the augmentations that make its
inputs sound like other microphones and rooms."""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from coughkd.audio import SAMPLE_RATE
from coughkd.features import HOP_LENGTH, LOG_OFFSET, WINDOW_FRAMES
from coughkd.model import SOUND_TYPES
from training.lib.clips import ClipFeatures, centred_slice
from training.lib.distillation import RandomCrops, SimilarLengths, spec_masks
from training.lib.sounds import SoundClips, teacher_distribution
from training.models.efficientat import N_CLASSES
from training.models.students import SoundTypeCNN
from training.models.teachers import build_teacher

MIN_SECONDS = 1.0  # shorter inputs are zero padded for the teacher, whose pooling wants a few frames
REVERB_RT60_MIN_S = 0.2  # a small furnished room
REVERB_DRR_DB = (0.0, 12.0)  # direct-to-reverberant ratios from arm's length to close to the microphone
SNEEZE = "person sneeze"  # the kind of ESC-10's sneezes and of their copies
QUIET_PADDING_FRAMES = int(10.0 * SAMPLE_RATE) // HOP_LENGTH + 1  # quiet_padding's longest example: 10 s


def items(feats: list[ClipFeatures], config: dict) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    """Training items: per clip, its log-mel (up to max_seconds around its first event) and up to windows_per_clip
    event windows. Returns (clip of each item, log-mels, the band-limited waveforms the teacher hears), each a view
    of the clip's features, not a copy."""
    rng = np.random.default_rng(config["seed"])
    samples = int(config["max_seconds"] * SAMPLE_RATE)
    owners, log_mels, waveforms = [], [], []
    for i, f in enumerate(feats):
        centre = int(f.centres[0])
        owners.append(i)
        log_mels.append(centred_slice(f.log_mel, centre // HOP_LENGTH, samples // HOP_LENGTH + 1))
        waveforms.append(centred_slice(f.waveform, centre, samples))
        for k in np.sort(rng.permutation(len(f.events))[:config["windows_per_clip"]]):
            owners.append(i)
            log_mels.append(centred_slice(f.log_mel, int(f.centres[k]) // HOP_LENGTH, WINDOW_FRAMES))
            waveforms.append(centred_slice(f.waveform, int(f.centres[k]), SAMPLE_RATE))
    return owners, log_mels, waveforms


@torch.no_grad()
def teacher_tags(waveforms: list[np.ndarray], cache: Path | None = None, batch_size: int = 32) -> np.ndarray:
    """(n, N_CLASSES) the EfficientAT tagger's AudioSet logits of each item, items of one length batched together
    (event windows are all 1 s, and most cut clips are max_seconds long). ``cache``: an .npz of logits keyed by each
    item's content hash, read first and extended, so a re-run or a resumed run tags only what is new."""
    shortest = int(MIN_SECONDS * SAMPLE_RATE)
    padded = [np.asarray(w, dtype=np.float32) if len(w) >= shortest else  # no copy of what is long enough
              np.pad(w, (0, shortest - len(w))).astype(np.float32) for w in waveforms]
    keys = [hashlib.blake2b(w.tobytes(), digest_size=16).hexdigest() for w in padded]
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            known = dict(zip(stored["keys"].tolist(), stored["tags"]))
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        device = PartialState().device  # a GPU where accelerate has one
        teacher = build_teacher("efficientat").eval().to(device)
        by_length: dict[int, list[int]] = {}
        for i in missing:
            by_length.setdefault(len(padded[i]), []).append(i)
        batches = [rows[k:k + batch_size] for rows in by_length.values() for k in range(0, len(rows), batch_size)]
        for rows in tqdm(batches, desc="teacher tags", unit="batch"):
            logits = teacher(torch.from_numpy(np.stack([padded[i] for i in rows])).to(device)).tags.cpu().numpy()
            known.update({keys[i]: row.astype(np.float16) for i, row in zip(rows, logits)})
        if cache is not None and PartialState().is_main_process:
            cache.parent.mkdir(parents=True, exist_ok=True)
            part = cache.with_name(f"{cache.stem}.{os.getpid()}.npz")  # whole or not at all, for concurrent runs
            np.savez(part, keys=np.array(list(known)), tags=np.stack(list(known.values())))
            os.replace(part, cache)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def tagged_items(feats: list[ClipFeatures], config: dict) -> tuple[list[int], list[np.ndarray], np.ndarray]:
    """`items` with the teacher's tags of each in place of the waveforms it heard: those are most of the items'
    memory and nothing after the teacher needs them."""
    owners, log_mels, waveforms = items(feats, config)
    return owners, log_mels, teacher_tags(waveforms, Path(config["tag_cache"]) if config["tag_cache"] else None)


def balanced_weights(types: np.ndarray, datasets: np.ndarray) -> np.ndarray:
    """Per-item weights (mean 1) under which every sound type carries the same total, split evenly between the data
    sets that hold it: breathing, from one data set, counts as much as cough, from four."""
    weights = np.zeros(len(types), dtype=np.float32)
    present = sorted(set(types.tolist()))
    for t in present:
        holders = sorted(set(datasets[types == t].tolist()))
        for d in holders:
            cell = (types == t) & (datasets == d)
            weights[cell] = len(types) / (len(present) * len(holders) * cell.sum())
    return weights


def loss_weights(types: np.ndarray, datasets: np.ndarray, kinds: np.ndarray, sneeze_weight: float) -> np.ndarray:
    """balanced_weights, with every sneeze's weight times ``sneeze_weight``: a sneeze is the everyday sound most like
    a cough, and ESC-10's nine other classes outweigh its few sneezes nine to one within their data set."""
    weights = balanced_weights(types, datasets)
    weights[kinds == SNEEZE] *= sneeze_weight
    return weights


def level_and_tilt(x: torch.Tensor, gain_db: float, tilt_db: float, generator: torch.Generator) -> torch.Tensor:
    """Each example's log-mel as another microphone would give it: a random gain within +-gain_db and a spectral
    tilt within +-tilt_db from the lowest to the highest mel band, floored where the front end floors silence."""
    if not gain_db and not tilt_db:
        return x
    batch, bins, _ = x.shape
    to_ln = math.log(10.0) / 10.0  # dB of power -> natural-log units of the log-mel
    gain = (torch.rand(batch, 1, 1, generator=generator) * 2 - 1) * gain_db * to_ln
    tilt = (torch.rand(batch, 1, 1, generator=generator) * 2 - 1) * tilt_db * to_ln
    ramp = torch.linspace(-0.5, 0.5, bins).view(1, -1, 1)
    return torch.clamp(x + (gain + tilt * ramp).to(x.device), min=math.log(LOG_OFFSET))


def on_half(changed: torch.Tensor, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """`changed` for a random half of the examples, `x` for the rest."""
    chosen = (torch.rand(x.shape[0], 1, 1, generator=generator) < 0.5).to(x.device)
    return torch.where(chosen, changed, x)


def reverberation(x: torch.Tensor, rt60_s: tuple[float, float], drr_db: tuple[float, float],
                  generator: torch.Generator) -> torch.Tensor:
    """Half the examples' log-mels as a room would give them: each band's power followed by an exponentially
    decaying tail (a reverberation time within ``rt60_s``, a direct-to-reverberant ratio within ``drr_db``). A phone
    a metre away in a bathroom smears a cough's burst over the following frames, which no training recording has."""
    if not rt60_s[1]:
        return x
    batch, bins, frames = x.shape
    rt60 = rt60_s[0] + torch.rand(batch, 1, generator=generator) * (rt60_s[1] - rt60_s[0])
    drr = drr_db[0] + torch.rand(batch, 1, generator=generator) * (drr_db[1] - drr_db[0])
    lags = torch.arange(1, int(rt60_s[1] * SAMPLE_RATE / HOP_LENGTH) + 1).view(1, -1)
    tail = 10 ** (-6.0 * lags * HOP_LENGTH / SAMPLE_RATE / rt60)  # power falls 60 dB in rt60 seconds
    tail = tail / tail.sum(dim=1, keepdim=True) * 10 ** (-drr / 10)
    kernel = torch.cat([torch.ones(batch, 1), tail], dim=1).to(x.device)  # the direct sound, then the room
    size = frames + kernel.shape[1]
    power = torch.exp(x)
    smeared = torch.fft.irfft(torch.fft.rfft(power, n=size) * torch.fft.rfft(kernel, n=size).unsqueeze(1), n=size)
    return on_half(torch.log(torch.clamp(smeared[..., :frames], min=0) + LOG_OFFSET), x, generator)


def pitch_and_speed(x: torch.Tensor, max_bins: int, max_rate: float, generator: torch.Generator) -> torch.Tensor:
    """Half the examples as another voice or another pace would give them: shifted by up to ``max_bins`` mel bins
    (the lowest or highest band repeated into the gap), and played up to ``max_rate`` times faster or slower (cut to
    the batch's length, or followed by silence). Sixteen training sneezes and fifty people's voices are few: a
    sneeze or a voice a little higher or quicker than all of them must still not be a cough."""
    if not max_bins and max_rate == 1.0:
        return x
    batch, bins, frames = x.shape
    shift = torch.randint(-max_bins, max_bins + 1, (batch, 1, 1), generator=generator).float()
    rate = torch.exp((torch.rand(batch, 1, 1, generator=generator) * 2 - 1) * math.log(max_rate))
    t_in = torch.arange(frames).view(1, 1, -1) * rate + torch.zeros(1, bins, 1)
    f_in = torch.arange(bins).view(1, -1, 1) - shift + torch.zeros(1, 1, frames)
    grid = torch.stack([2 * t_in / (frames - 1) - 1, 2 * f_in / (bins - 1) - 1], dim=-1).to(x.device)
    warped = F.grid_sample(x[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]
    warped = torch.where((t_in > frames - 1).to(x.device), math.log(LOG_OFFSET), warped)
    return on_half(warped, x, generator)


def background_noise(x: torch.Tensor, snr_db: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Half the examples' log-mels with a steady background noise added in the power domain, at a random
    signal-to-noise ratio within ``snr_db`` (against the example's mean power) and a random colour (white to
    brown or blue), flickering frame to frame as real noise does: most rooms and phones are not silent, and a gate
    that learnt "a cough is a burst in silence" refuses coughs in a noisy room."""
    if not snr_db[1]:
        return x
    batch, bins, frames = x.shape
    power = torch.exp(x)
    snr = snr_db[0] + torch.rand(batch, 1, 1, generator=generator) * (snr_db[1] - snr_db[0])
    colour = 10 ** ((torch.rand(batch, 1, 1, generator=generator) * 2 - 1) * 1.2 * torch.linspace(-0.5, 0.5, bins)
                    .view(1, -1, 1))
    level = power.mean(dim=(1, 2), keepdim=True) * 10 ** (-snr.to(x.device) / 10) / colour.mean(dim=1, keepdim=True)
    flicker = torch.exp(0.3 * torch.randn(batch, bins, frames, generator=generator))
    return on_half(torch.log(power + (level * colour.to(x.device) * flicker.to(x.device)) + LOG_OFFSET), x, generator)


def quiet_padding(x: torch.Tensor, max_factor: float, max_frames: int, generator: torch.Generator) -> torch.Tensor:
    """Half the batches as longer recordings of mostly room tone: each example at a random offset inside up to
    ``max_factor`` times its length (at most ``max_frames``), the frames around it its own quietest tenth's level
    per band, flickering as real noise does. A real recording often holds one or two coughs in several seconds of
    quiet, which the clip's mean pooling over time would otherwise hear mostly as background."""
    if max_factor <= 1.0 or torch.rand(1, generator=generator).item() < 0.5:
        return x
    batch, bins, frames = x.shape
    total = min(max_frames, int(frames * (1 + torch.rand(1, generator=generator).item() * (max_factor - 1))))
    if total <= frames:
        return x
    floor = torch.quantile(x, 0.1, dim=-1, keepdim=True)
    padded = floor + 0.3 * torch.randn(batch, bins, total, generator=generator).to(x.device)
    for b, offset in enumerate(torch.randint(0, total - frames + 1, (batch,), generator=generator).tolist()):
        padded[b, :, offset:offset + frames] = x[b]
    return padded


class GateTraining(nn.Module):
    """The gate and, while it trains, a linear read-out of all the teacher's AudioSet classes from the gate's
    embedding: the tagger's full judgement (a bark is not a cough, whatever the four types say) shapes the embedding,
    and only the gate is kept."""

    def __init__(self, gate: SoundTypeCNN) -> None:
        super().__init__()
        self.gate = gate
        self.tags = nn.Linear(gate.embedding_size, N_CLASSES)

    def forward(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.gate.embed(log_mel)
        return self.gate.head(self.gate.dropout(embedding)), self.tags(embedding)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean of -sum(target * log softmax(logits)): the distillation loss for a distribution target."""
    per_item = -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    return (per_item * weight).sum() / weight.sum().clamp(min=1e-8)


def train_member(sounds: SoundClips, feats: list[ClipFeatures], config: dict) -> tuple[SoundTypeCNN, list, int]:
    """Tag and train one gate network from ``config["seed"]`` (its event windows, initialisation, batches and
    augmentation); returns (the network, its loss per epoch, its training items)."""
    torch.manual_seed(config["seed"])
    accelerator = Accelerator()
    train = np.flatnonzero(sounds.split == "train")
    owners, log_mels, tags = tagged_items([feats[i] for i in train], config)
    owners = train[np.asarray(owners)]
    known = np.eye(len(SOUND_TYPES), dtype=np.float32)[sounds.sound_type[owners]]
    target = (1 - config["tag_weight"]) * known + config["tag_weight"] * teacher_distribution(tags)
    weight = loss_weights(sounds.sound_type[owners], sounds.dataset[owners], sounds.kind[owners],
                          config["sneeze_weight"])
    extra = {"target": target, "weight": weight, "tags": torch.sigmoid(torch.from_numpy(tags)).numpy()}
    loader = DataLoader(np.arange(len(owners)),
                        batch_sampler=SimilarLengths([x.shape[-1] for x in log_mels], config["batch_size"],
                                                     config["seed"]),
                        collate_fn=RandomCrops(log_mels, extra, config["seed"]))
    # Channels-last convolutions: the same sums, 1.7x faster steps on a CPU (80 real training batches, 2-vCPU EPYC).
    model = GateTraining(SoundTypeCNN(pooling=config["pooling"])).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config["learning_rate"],
                                                    total_steps=config["epochs"] * len(loader))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    generator = torch.Generator().manual_seed(config["seed"])
    history = []
    progress = tqdm(range(config["epochs"]), desc=f"distil gate (seed {config['seed']})",
                    disable=not accelerator.is_main_process)
    for epoch in progress:
        model.train()
        total = 0.0
        for x, batch in loader:
            x = pitch_and_speed(x, config["pitch_bins"], config["speed_max"], generator)
            x = level_and_tilt(x, config["gain_db"], config["tilt_db"], generator)
            x = reverberation(x, (REVERB_RT60_MIN_S, config["reverb_rt60_max_s"]), REVERB_DRR_DB, generator)
            x = background_noise(x, (config["noise_snr_min_db"], config["noise_snr_max_db"]), generator)
            x = quiet_padding(x, config["quiet_padding"], QUIET_PADDING_FRAMES, generator)
            logits, tag_logits = model(spec_masks(x, generator))
            loss = soft_cross_entropy(logits, batch["target"], batch["weight"])
            if config["all_tags_weight"]:
                loss = loss + config["all_tags_weight"] * F.binary_cross_entropy_with_logits(tag_logits, batch["tags"])
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) / len(loader)
        history.append({"epoch": epoch, "loss": total})
        progress.set_postfix(loss=f"{total:.3f}")
    return accelerator.unwrap_model(model).gate.to(memory_format=torch.contiguous_format), history, len(owners)

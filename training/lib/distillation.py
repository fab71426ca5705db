"""Distillation into a compact student: batches of whole clips, SpecAugment masks, the training loop, and the
student's logits on clips and event windows (the distill step, cross-validation and reproduce share them)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from coughkd.audio import SAMPLE_RATE
from coughkd.features import HOP_LENGTH, N_MELS
from training.lib.clips import ClipFeatures, ClipScores, ClipSet, centred_slices, clip_scores, features
from training.lib.losses import Distiller, DistillWeights, source_balanced_weights
from training.lib.metrics import per_source_auc, within_source_auc
from training.models.students import INPUTS, build_student, count_parameters, from_checkpoint, student_config

# Steps of each input kind per second of audio: crops are cut to the same duration whatever the family eats.
RATE = {"log_mel": SAMPLE_RATE / HOP_LENGTH, "waveform": SAMPLE_RATE}


def student_inputs(feats: list[ClipFeatures], family: str) -> list[np.ndarray]:
    """What the student family eats for each whole clip: the shared log-mel front end, or the band-limited
    waveform."""
    return [f.log_mel if INPUTS[family] == "log_mel" else f.waveform for f in feats]


def window_inputs(feats: list[ClipFeatures], family: str) -> list[np.ndarray]:
    """The 1 s event windows of each clip in the family's input kind (coughkd.predict slices them the same way)."""
    if INPUTS[family] == "log_mel":
        return [f.windows for f in feats]
    return [centred_slices(f.waveform, f.centres, SAMPLE_RATE) for f in feats]


# What a student checkpoint from before layer matching was distilled with: none (it has no such settings).
BEFORE_LAYER_MATCHING = {"layer_weight": 0.0, "layers": "4,8,12"}


def recipe(checkpoint: dict) -> dict:
    """A student checkpoint's distillation settings, layer matching's filled in as off where the checkpoint predates
    them."""
    return {**BEFORE_LAYER_MATCHING, **checkpoint["distill"]}


class SimilarLengths(Sampler):
    """Batches of clips of nearly the same duration, in a new random order every epoch, so that cropping a batch to
    its shortest clip throws little away: the COVID-19 signal of this data lies in whole-clip statistics, and
    training on short crops of clips loses much of it. Lengths are jittered by up to ``jitter`` (a fraction) so that
    batches differ between epochs."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, jitter: float = 0.03):
        self.lengths, self.batch_size, self.jitter = np.asarray(lengths, dtype=np.float64), batch_size, jitter
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = np.argsort(self.lengths * self.rng.uniform(1 - self.jitter, 1 + self.jitter, len(self.lengths)))
        batches = [order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        self.rng.shuffle(batches)
        return iter(batches)


class RandomCrops:
    """Collate: every clip of a batch cut to the batch's shortest length at a random offset, stacked with its
    targets (batches come from SimilarLengths, so the cut is small)."""

    def __init__(self, inputs: list[np.ndarray], targets: dict[str, np.ndarray], seed: int):
        self.inputs, self.targets = inputs, targets
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch: list[int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        length = min(self.inputs[i].shape[-1] for i in batch)
        crops = []
        for i in batch:
            start = int(self.rng.integers(0, self.inputs[i].shape[-1] - length + 1))
            crops.append(self.inputs[i][..., start:start + length])
        return (torch.from_numpy(np.stack(crops)),
                {k: torch.from_numpy(v[batch]) for k, v in self.targets.items()})


def spec_masks(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment-style masks for log-mel input: one band of up to an eighth of the mel bins and one span of up to
    0.1 s per example, set to the example's mean, so a few hundred recordings are harder to memorise."""
    batch, bins, frames = x.shape
    mean = x.mean(dim=(1, 2), keepdim=True)
    f0 = torch.randint(0, bins, (batch, 1, 1), generator=generator)
    fw = torch.randint(0, N_MELS // 8 + 1, (batch, 1, 1), generator=generator)
    t0 = torch.randint(0, frames, (batch, 1, 1), generator=generator)
    tw = torch.randint(0, round(0.1 * RATE["log_mel"]) + 1, (batch, 1, 1), generator=generator)
    f = torch.arange(bins).view(1, -1, 1)
    t = torch.arange(frames).view(1, 1, -1)
    mask = ((f >= f0) & (f < f0 + fw)) | ((t >= t0) & (t < t0 + tw))
    return torch.where(mask.to(x.device), mean, x)


@torch.no_grad()
def clip_logits(model: torch.nn.Module, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(covid, cough) logits of whole clips, one clip per call as at run time (lengths differ)."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(torch.from_numpy(x[None]).to(device)) for x in inputs]
    return (np.array([float(c[0]) for c, _ in out], dtype=np.float32),
            np.array([float(k[0]) for _, k in out], dtype=np.float32))


@torch.no_grad()
def member_logits(model: torch.nn.Module, inputs: list[np.ndarray]) -> np.ndarray:
    """(clips, members) COVID-19 logits of each member of the student's head on whole clips, one clip per call
    (their mean is what ``clip_logits`` and the exported model give)."""
    model.eval()
    device = next(model.parameters()).device
    return np.stack([model.members(torch.from_numpy(x[None]).to(device))[0][0].cpu().numpy() for x in inputs])


@torch.no_grad()
def window_logits(model: torch.nn.Module, windows: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clip, the (covid, cough) logits of its event windows (one batch per clip)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for w in windows:
        covid, cough = model(torch.from_numpy(w).to(device))
        out.append((covid.cpu().numpy(), cough.cpu().numpy()))
    return out


def layer_targets(teacher: dict[str, np.ndarray], config: dict, train: np.ndarray) -> np.ndarray | None:
    """(clips, layers, hidden) the chosen teacher layers' time-pooled states, standardised per layer and dimension
    on the training clips so the L1 term weighs every layer and dimension alike whatever their scale; None when
    layer matching is off."""
    if config["layer_weight"] <= 0:
        return None
    if "hidden_states" not in teacher:
        raise SystemExit("--layer_weight > 0 needs a teacher with hidden layers (a wav2vec2-family model); this "
                         "run's teacher cache has none")
    chosen = [int(k) for k in config["layers"].split(",")]
    available = teacher["hidden_states"].shape[1]
    if not chosen or min(chosen) < 0 or max(chosen) >= available:
        raise SystemExit(f"--layers={config['layers']}: the teacher has hidden states 0..{available - 1}")
    hidden = teacher["hidden_states"][:, chosen]
    mean, std = hidden[train].mean(axis=0), hidden[train].std(axis=0)
    return ((hidden - mean) / (std + 1e-6)).astype(np.float32)


def train_student(clips: ClipSet, teacher: dict[str, np.ndarray], config: dict,
                  feats: list[ClipFeatures] | None = None) -> dict:
    """Train one student; returns the checkpoint dict (last epoch) with its validation history."""
    torch.manual_seed(config["seed"])
    accelerator = Accelerator()
    feats = features(clips) if feats is None else feats
    inputs = student_inputs(feats, config["family"])
    train = np.flatnonzero(clips.split == "train")
    weights = np.zeros(len(clips), dtype=np.float32)
    weights[train] = source_balanced_weights(clips.source[train], clips.covid_label[train])
    targets = {"covid_label": clips.covid_label.astype(np.int64), "covid_weight": weights,
               "teacher_covid_logit": teacher["covid_logit"], "cough_target": teacher["cough_target"],
               "teacher_embedding": teacher["embedding"]}
    matched = layer_targets(teacher, config, train)
    if matched is not None:
        targets["teacher_layers"] = matched
    train_inputs = [inputs[i] for i in train]
    rate = RATE[INPUTS[config["family"]]]
    loader = DataLoader(np.arange(len(train)),
                        batch_sampler=SimilarLengths([x.shape[-1] / rate for x in train_inputs],
                                                     config["batch_size"], config["seed"], config["length_jitter"]),
                        collate_fn=RandomCrops(train_inputs, {k: v[train] for k, v in targets.items()}, config["seed"]))
    architecture = student_config(config["family"])
    model = build_student(config["family"], **architecture)
    distiller = Distiller(model, DistillWeights(config["hard_weight"], config["soft_weight"], config["temperature"],
                                                config["cough_weight"], config["embedding_weight"],
                                                config["layer_weight"]),
                          teacher["embedding"].shape[1], (0, 0) if matched is None else matched.shape[1:])
    labelled = train[clips.covid_label[train] >= 0]  # the clips the COVID-19 head learns from, whole and clean
    labelled_targets = {k: torch.from_numpy(v[labelled]) for k, v in targets.items()}
    model.fit_readout([inputs[i] for i in labelled], lambda logit: distiller.covid_loss(logit, labelled_targets))
    optimizer = torch.optim.AdamW([p for p in distiller.parameters() if p.requires_grad], lr=config["learning_rate"],
                                  weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config["learning_rate"],
                                                    total_steps=config["epochs"] * len(loader))
    distiller, optimizer, loader, scheduler = accelerator.prepare(distiller, optimizer, loader, scheduler)
    generator = torch.Generator().manual_seed(config["seed"])
    augment = config["spec_augment"] and INPUTS[config["family"]] == "log_mel"

    val = (clips.split == "val") & (clips.recording >= 0)
    val_clips, val_inputs = clips.subset(val), [inputs[i] for i in np.flatnonzero(val)]
    history = []
    progress = tqdm(range(config["epochs"]), desc=f"distil {config['family']}", disable=not accelerator.is_main_process)
    for epoch in progress:
        distiller.train()
        totals: dict[str, float] = {}
        for x, batch in loader:
            parts = distiller(spec_masks(x, generator) if augment else x, batch)
            optimizer.zero_grad()
            accelerator.backward(parts["total"])
            optimizer.step()
            scheduler.step()
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / len(loader)
        scores = clip_scores(val_clips, clip_logits(model, val_inputs)[0])
        val_auc = within_source_auc(scores.label, scores.probability, scores.source)
        history.append({"epoch": epoch, **totals, "val_auc": val_auc})
        progress.set_postfix(loss=f"{totals['total']:.3f}", val_auc=f"{val_auc:.3f}")
    state = {k: v.detach().cpu().clone() for k, v in accelerator.unwrap_model(distiller).student.state_dict().items()}
    return {"family": config["family"], "config": architecture, "state_dict": state,
            "parameters": count_parameters(model), "val_auc": history[-1]["val_auc"], "history": history,
            "distill": {k: v for k, v in config.items() if k not in ("run_dir", "family")}}


def student_clip_scores(clips: ClipSet, feats: list[ClipFeatures], checkpoint: dict, split: str) -> ClipScores:
    """A torch student's COVID-19 scores of one split's recordings, each from the whole recording."""
    model, family = from_checkpoint(checkpoint), checkpoint["family"]
    part = [feats[i] for i in np.flatnonzero(clips.split == split)]
    covid, _ = clip_logits(model, student_inputs(part, family))
    return clip_scores(clips.subset(clips.split == split), covid)


def member_aucs(clips: ClipSet, feats: list[ClipFeatures], checkpoint: dict, split: str) -> dict[str, dict[str, float]]:
    """Per-source AUC of each member of a student's COVID-19 head alone and of their mean (the shipped logit), so
    the card shows what each member adds."""
    family = checkpoint["family"]
    rows = np.flatnonzero((clips.split == split) & (clips.recording >= 0))
    inputs = student_inputs([feats[i] for i in rows], family)
    model = from_checkpoint(checkpoint)
    logits = member_logits(model, inputs)
    columns = dict(zip(model.member_names, logits.T))
    if logits.shape[1] > 1:
        columns["mean (shipped)"] = logits.mean(axis=1)
    labels, sources = clips.covid_label[rows], clips.source[rows]
    return {name: per_source_auc(labels, column, sources) for name, column in columns.items()}

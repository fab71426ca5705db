"""Running and fine-tuning a teacher: its outputs on whole clips (cached once by the teacher step), the cough
target, fixed-length crops and the fine-tuning loop (the teacher step and training.teacher_cost share them)."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from coughkd.audio import SAMPLE_RATE
from training.lib.clips import ClipFeatures, ClipSet, centred_slices
from training.models.teachers import Teacher, cough_score

MIN_SECONDS = 1.0  # shorter clips are zero padded: the teachers' pooling wants a few frames


CROP_SECONDS = 2.0


def padded(waveform: np.ndarray, seconds: float) -> np.ndarray:
    return np.pad(waveform, (0, max(0, int(seconds * SAMPLE_RATE) - len(waveform)))).astype(np.float32)


def crop(feature: ClipFeatures, seconds: float = CROP_SECONDS) -> np.ndarray:
    """A fixed-length crop around the clip's first event, so clips can be batched for fine-tuning."""
    centre = feature.centres[:1] if len(feature.centres) else np.array([0])
    return padded(centred_slices(feature.waveform, centre, int(seconds * SAMPLE_RATE))[0], seconds)


@torch.no_grad()
def teacher_outputs(model: Teacher, clips: list[ClipFeatures]) -> dict[str, np.ndarray]:
    """Embedding, COVID-19 logit, cough score (teachers with AudioSet tags) and time-pooled hidden layers
    (wav2vec2-family teachers) of each whole clip, one clip at a time (lengths differ)."""
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, list[np.ndarray]] = {"covid_logit": [], "embedding": [], "cough_score": [], "hidden_states": []}
    for clip in tqdm(clips, desc="teacher outputs", unit="clip"):
        result = model(torch.from_numpy(padded(clip.waveform, MIN_SECONDS)[None]).to(device))
        out["covid_logit"].append(result.covid_logit.cpu().numpy())
        out["embedding"].append(result.embedding.cpu().numpy())
        if result.tags is not None:
            out["cough_score"].append(cough_score(result.tags).cpu().numpy())
        if result.hidden is not None:
            out["hidden_states"].append(result.hidden.cpu().numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items() if v}


def cough_target(clips: ClipSet, outputs: dict[str, np.ndarray], tag_weight: float) -> np.ndarray:
    """Soft cough/not-cough target: what we know (every dataset clip is a cough, generated audio is not), blended
    with the AudioSet tagger's opinion where the teacher has tags."""
    known = clips.is_cough.astype(np.float32)
    if "cough_score" not in outputs:
        return known
    return (1 - tag_weight) * known + tag_weight * outputs["cough_score"]


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else math.nan


def fine_tune(teacher: Teacher, train_windows, train_labels, val_windows, val_labels, epochs: int = 3,
              lr: float = 1e-4, batch_size: int = 32, accelerator: Accelerator | None = None,
              progress: bool = True, train_weights=None,
              val_score: Callable[[np.ndarray], float] | None = None) -> dict:
    """Train the teacher's COVID logit with BCE on equal-length waveforms (N, samples) and labels (N,) in {0, 1}.

    ``train_weights`` (N,) weight each window's loss (e.g. to balance labels within each source, so the recording
    channel carries no label information). ``val_score`` maps the validation logits (in order) to the number to
    maximise, by default the window ROC-AUC; the teacher is left at its best epoch, since a large model fine-tuned
    on a few hundred recordings starts to overfit within a few epochs.
    Runs as is on one device or under ``accelerate launch`` on many. Returns the history:
    {"loss": mean training loss per epoch, "val_auc": validation ROC-AUC per epoch (nan if one class),
    "val_score": the selection score per epoch, "best_epoch": 0-based}.
    """
    if accelerator is None:
        # Layer drop and frozen tag heads leave parameters unused in some steps; DDP must be told.
        accelerator = Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if train_weights is None:
        train_weights = np.ones(len(train_labels), dtype=np.float32)

    def tensor(values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values), dtype=torch.float32)

    train_loader = DataLoader(TensorDataset(tensor(train_windows), tensor(train_labels), tensor(train_weights)),
                              batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(tensor(val_windows), tensor(val_labels)), batch_size=batch_size)
    optimizer = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=lr)
    model, optimizer, train_loader, val_loader = accelerator.prepare(teacher, optimizer, train_loader, val_loader)
    history: dict = {"loss": [], "val_auc": [], "val_score": []}
    best_state, best_score = None, -math.inf
    show = progress and accelerator.is_local_main_process
    for epoch in range(epochs):
        model.train()
        losses = []
        for x, y, w in tqdm(train_loader, desc=f"teacher epoch {epoch + 1}/{epochs}", disable=not show, leave=False):
            loss = (F.binary_cross_entropy_with_logits(model(x).covid_logit, y, reduction="none") * w).mean()
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            losses.append(accelerator.gather(loss.detach()).mean().item())
        model.eval()
        scores, labels = [], []
        with torch.no_grad():
            for x, y in val_loader:
                logit, y = accelerator.gather_for_metrics((model(x).covid_logit, y))
                scores.append(logit.float().cpu().numpy())
                labels.append(y.cpu().numpy())
        scores_, labels_ = np.concatenate(scores), np.concatenate(labels)
        history["loss"].append(float(np.mean(losses)))
        history["val_auc"].append(_auc(labels_, scores_))
        history["val_score"].append(val_score(scores_) if val_score is not None else history["val_auc"][-1])
        if history["val_score"][-1] > best_score:
            best_score, history["best_epoch"] = history["val_score"][-1], epoch
            best_state = {k: v.detach().clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        if show:
            loss, auc, score = history["loss"][-1], history["val_auc"][-1], history["val_score"][-1]
            tqdm.write(f"teacher epoch {epoch + 1}: loss {loss:.4f} val AUC {auc:.3f} val score {score:.3f}")
    if best_state is not None:
        accelerator.unwrap_model(model).load_state_dict(best_state)
    return history

"""Students: size budget, input contract, and a distillation step that actually learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coughkd.features import log_mel
from training.losses import Distiller, DistillWeights, soft_bce, source_balanced_weights
from training.models.students import STUDENTS, LogMelCNN, MfccStatistics, build_student, count_parameters

MAX_PARAMETERS = 100_000


def _inputs(family: str, seconds: float, batch: int = 2) -> torch.Tensor:
    samples = int(16000 * seconds)
    waveform = np.random.default_rng(0).standard_normal((batch, samples)).astype(np.float32) * 0.1
    return torch.from_numpy(log_mel(waveform) if family == "cnn" else waveform)


@pytest.mark.parametrize("family", sorted(STUDENTS))
def test_student_is_under_budget(family: str) -> None:
    n = count_parameters(build_student(family))
    assert n <= MAX_PARAMETERS, f"{family}: {n:,} parameters"


@pytest.mark.parametrize("family", sorted(STUDENTS))
@pytest.mark.parametrize("seconds", [0.5, 1.0, 30.0])
def test_student_takes_any_length(family: str, seconds: float) -> None:
    model = build_student(family).eval()
    covid, cough = model(_inputs(family, seconds))
    assert covid.shape == cough.shape == (2,)
    assert torch.isfinite(covid).all() and torch.isfinite(cough).all()


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown student family"):
        build_student("resnet")


def test_soft_bce_is_smallest_when_student_matches_teacher() -> None:
    teacher = torch.tensor([2.0])
    losses = [float(soft_bce(torch.tensor([s]), teacher, temperature=2.0)) for s in (-2.0, 0.0, 2.0, 4.0)]
    assert int(np.argmin(losses)) == 2


def _toy_batch(family: str, n: int = 32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Label = a loud 1 kHz tone present or not; the teacher knows it; half the rows are generated audio."""
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    label = rng.integers(0, 2, n)
    wave = rng.standard_normal((n, 16000)).astype(np.float32) * 0.05
    wave += (label[:, None] * 0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    x = torch.from_numpy(log_mel(wave) if family == "cnn" else wave)
    covid_label = np.where(np.arange(n) % 4 == 0, -1, label)
    sources = np.where(np.arange(n) % 2 == 0, "a", "b")
    batch = {
        "covid_label": torch.from_numpy(covid_label),
        "covid_weight": torch.from_numpy(source_balanced_weights(sources, covid_label)),
        "teacher_covid_logit": torch.from_numpy((label * 6.0 - 3.0).astype(np.float32)),
        "cough_target": torch.from_numpy(label.astype(np.float32)),
        "teacher_embedding": torch.from_numpy(rng.standard_normal((n, 16)).astype(np.float32)),
    }
    return x, batch


@pytest.mark.parametrize("family", sorted(STUDENTS))
def test_distillation_steps_lower_the_loss(family: str) -> None:
    torch.manual_seed(0)
    x, batch = _toy_batch(family)
    distiller = Distiller(build_student(family), DistillWeights(embedding=0.1), teacher_dim=16)
    optimizer = torch.optim.AdamW(distiller.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        parts = distiller(x, batch)
        optimizer.zero_grad()
        parts["total"].backward()
        optimizer.step()
        losses.append(float(parts["total"]))
    assert set(parts) == {"hard", "soft", "cough", "penalty", "embedding", "total"}
    assert losses[-1] < 0.7 * losses[0], losses


def test_unlabelled_rows_do_not_move_the_covid_losses() -> None:
    x, batch = _toy_batch("cnn", n=8)
    distiller = Distiller(build_student("cnn").eval(), DistillWeights(), teacher_dim=16).eval()
    before = distiller(x, batch)
    unlabelled = batch["covid_label"] < 0
    batch["teacher_covid_logit"] = torch.where(unlabelled, torch.tensor(100.0), batch["teacher_covid_logit"])
    after = distiller(x, batch)
    assert torch.allclose(before["soft"], after["soft"]) and torch.allclose(before["hard"], after["hard"])


def test_balanced_weights_make_the_channel_uninformative() -> None:
    sources = np.array(["call"] * 10 + ["telegram"] * 10 + ["generated"] * 3)
    labels = np.array([1] * 7 + [0] * 3 + [1] * 2 + [0] * 8 + [-1] * 3)
    w = source_balanced_weights(sources, labels)
    assert (w[labels < 0] == 0).all()
    for source in ("call", "telegram"):
        pos = w[(sources == source) & (labels == 1)].sum()
        neg = w[(sources == source) & (labels == 0)].sum()
        assert pos == pytest.approx(neg), source
    assert w[labels >= 0].mean() == pytest.approx(1.0)


def test_mfcc_statistics_match_librosa() -> None:
    """The one MFCC-statistics definition agrees with librosa's DCT and delta on the same log-mel."""
    import librosa
    import scipy.fft

    waveform = np.random.default_rng(3).standard_normal(16000 * 2).astype(np.float32) * 0.1
    mel = log_mel(waveform)
    mfcc = scipy.fft.dct(mel, type=2, norm="ortho", axis=0)[:20]
    delta = librosa.feature.delta(mfcc, width=5, mode="nearest")
    expected = np.concatenate([mfcc.mean(-1), mfcc.std(-1), delta.mean(-1), delta.std(-1)])
    got = MfccStatistics()(torch.from_numpy(mel)[None])[0].numpy()
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4), np.abs(got - expected).max()


def test_cnn_covid_logit_is_the_mean_of_its_members() -> None:
    model = LogMelCNN().eval()
    x = _inputs("cnn", 2.0)
    model.fit_standardiser(list(x.numpy()))
    members, cough, _ = model.members(x)
    covid, cough_again = model(x)
    assert members.shape == (2, 2)
    assert torch.allclose(covid, members.mean(-1)) and torch.allclose(cough, cough_again)
    assert LogMelCNN(mfcc_readout=False).members(x)[0].shape == (2, 1)


def test_standardiser_centres_the_readout_inputs_on_the_training_clips() -> None:
    model = LogMelCNN()
    clips = [log_mel(np.random.default_rng(i).standard_normal(16000 * (1 + i % 3)).astype(np.float32) * 0.1 * (i + 1))
             for i in range(6)]
    model.fit_standardiser(clips)
    with torch.no_grad():
        z = torch.cat([(model.mfcc(torch.from_numpy(c)[None]) - model.mfcc_mean) / model.mfcc_std for c in clips])
    assert torch.allclose(z.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(80), atol=1e-3)
    assert {"mfcc_mean", "mfcc_std"} <= set(model.state_dict())


def test_readout_penalty_is_l2_on_its_weights() -> None:
    model = LogMelCNN(readout_l2=0.5)
    with torch.no_grad():
        model.readout.weight.fill_(2.0)
    assert float(model.penalty()) == pytest.approx(0.5 * 80 * 4.0)
    assert float(LogMelCNN(mfcc_readout=False).penalty()) == 0.0


def test_each_member_learns_from_its_own_loss() -> None:
    """The read-out's gradient is that of its own hard + soft loss (+ penalty), as if trained alone, not of the mean."""
    x, batch = _toy_batch("cnn", n=8)
    model = LogMelCNN().eval()
    model.fit_standardiser(list(x.numpy()))
    weights = DistillWeights()
    Distiller(model, weights, teacher_dim=16)(x, batch)["total"].backward()
    from_distiller = model.readout.weight.grad.clone()

    model.zero_grad()
    readout = model.members(x)[0][:, 1]
    label, weight = batch["covid_label"].clamp(min=0).float(), batch["covid_weight"]
    hard = (torch.nn.functional.binary_cross_entropy_with_logits(readout, label, reduction="none") * weight).sum()
    soft = (soft_bce(readout, batch["teacher_covid_logit"], weights.temperature) * weight).sum()
    alone = (weights.hard * hard + weights.soft * soft) / weight.sum() + model.penalty()
    alone.backward()
    assert torch.allclose(from_distiller, model.readout.weight.grad, atol=1e-6)

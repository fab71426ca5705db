"""Students: size budget, input contract, and a distillation step that actually learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coughkd.features import log_mel
from training.lib.losses import Distiller, DistillWeights, soft_bce, source_balanced_weights
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
        losses.append(float(parts["total"].detach()))
    assert set(parts) == {"hard", "soft", "cough", "embedding", "total"}
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
    members, cough, _ = model.members(x)
    covid, cough_again = model(x)
    assert members.shape == (2, 2)
    assert torch.allclose(covid, members.mean(-1)) and torch.allclose(cough, cough_again)
    assert LogMelCNN(mfcc_readout=False).members(x)[0].shape == (2, 1)
    assert model.member_names == ("CNN head", "MFCC-statistics read-out")


@pytest.mark.parametrize("family, config", [("cnn", {}), ("cnn", {"mfcc_readout": False}), ("wav2vec", {})])
def test_every_member_has_a_name(family: str, config: dict) -> None:
    """The card and the cross-validation label members by these names, one per column of ``members``."""
    model = build_student(family, **config).eval()
    assert len(model.member_names) == model.members(_inputs(family, 1.0))[0].shape[1]


def _fitted_readout(weights: DistillWeights, readout_l2: float = 0.03,
                    ) -> tuple[LogMelCNN, Distiller, torch.Tensor, dict[str, torch.Tensor]]:
    """A CNN whose read-out is fitted on the labelled rows of the toy batch, as training.distill does."""
    x, batch = _toy_batch("cnn", n=32)
    labelled = batch["covid_label"] >= 0
    x, batch = x[labelled], {k: v[labelled] for k, v in batch.items()}
    model = LogMelCNN(readout_l2=readout_l2).eval()
    distiller = Distiller(model, weights, teacher_dim=16)
    model.fit_readout(list(x.numpy()), lambda logit: distiller.covid_loss(logit, batch))
    return model, distiller, x, batch


def _standardised_statistics(model: LogMelCNN, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (model.mfcc(x) - model.mfcc_mean) / model.mfcc_std


def test_readout_fit_standardises_the_statistics_of_the_training_clips() -> None:
    model, _, x, _ = _fitted_readout(DistillWeights())
    z = _standardised_statistics(model, x)
    assert torch.allclose(z.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(80), atol=1e-3)
    assert {"mfcc_mean", "mfcc_std"} <= set(model.state_dict())


def test_readout_fit_is_the_penalised_logistic_regression() -> None:
    """With hard labels only, the fitted read-out is scikit-learn's weighted L2 logistic regression on the same
    standardised statistics (its C = 1 / (2 * readout_l2 * sum of weights))."""
    from sklearn.linear_model import LogisticRegression

    model, _, x, batch = _fitted_readout(DistillWeights(hard=1.0, soft=0.0), readout_l2=0.01)
    weight = batch["covid_weight"].numpy().astype(np.float64)
    reference = LogisticRegression(C=1 / (2 * 0.01 * weight.sum()), tol=1e-10, max_iter=10_000)
    reference.fit(_standardised_statistics(model, x).numpy(), batch["covid_label"].numpy(), sample_weight=weight)
    assert np.allclose(model.readout.weight.numpy()[0], reference.coef_[0], atol=2e-3), \
        np.abs(model.readout.weight.numpy()[0] - reference.coef_[0]).max()
    assert float(model.readout.bias) == pytest.approx(float(reference.intercept_[0]), abs=2e-3)


def test_readout_fit_reaches_the_minimum_of_the_distillation_loss() -> None:
    """With the teacher's soft targets in the loss too (no closed form to compare), the objective's gradient
    vanishes at the fitted read-out."""
    model, distiller, x, batch = _fitted_readout(DistillWeights())
    weight, bias = (p.detach().clone().requires_grad_(True) for p in (model.readout.weight, model.readout.bias))
    z = _standardised_statistics(model, x)
    objective = distiller.covid_loss((z @ weight.T + bias).squeeze(-1), batch) + 0.03 * weight.pow(2).sum()
    objective.backward()
    assert float(weight.grad.abs().max()) < 1e-4 and float(bias.grad.abs()) < 1e-4


def test_sgd_trains_the_cnn_and_leaves_the_fitted_readout_alone() -> None:
    """After ``fit_readout`` the read-out is frozen; the CNN head's gradient is that of its own hard + soft loss,
    as if trained alone, not of the members' mean."""
    model, distiller, x, batch = _fitted_readout(DistillWeights())
    fitted = model.readout.weight.detach().clone()
    distiller(x, batch)["total"].backward()
    assert model.readout.weight.grad is None and model.readout.bias.grad is None
    from_distiller = model.covid_head.weight.grad.clone()

    model.zero_grad()
    head = model.members(x)[0][:, 0]
    distiller.covid_loss(head, batch).backward()
    assert torch.allclose(from_distiller, model.covid_head.weight.grad, atol=1e-6)

    optimizer = torch.optim.AdamW([p for p in distiller.parameters() if p.requires_grad], lr=1e-2)
    distiller(x, batch)["total"].backward()
    optimizer.step()
    assert torch.equal(model.readout.weight, fitted)


def test_covid_loss_weighs_hard_and_soft_as_configured() -> None:
    x, batch = _toy_batch("cnn", n=8)
    logit = torch.linspace(-2, 2, 8)
    hard, soft = Distiller(LogMelCNN(), DistillWeights(), teacher_dim=16).covid_losses(logit, batch)
    loss = Distiller(LogMelCNN(), DistillWeights(hard=0.3, soft=0.7), teacher_dim=16).covid_loss(logit, batch)
    assert float(loss) == pytest.approx(0.3 * float(hard) + 0.7 * float(soft))

"""Teachers: the shared interface, HF wav2vec2-family teachers on tiny random models, and the EfficientAT teacher."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from accelerate import Accelerator
from transformers import (
    Data2VecAudioConfig,
    Data2VecAudioModel,
    HubertConfig,
    HubertModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    WavLMConfig,
    WavLMModel,
)

from training.lib.teaching import fine_tune
from training.models.efficientat import EfficientATMel
from training.models.teachers import (
    EfficientATTeacher,
    HFTeacher,
    Teacher,
    TeacherOutput,
    Upsample2x,
    build_teacher,
    cough_score,
)

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
        "conv_dim": (32, 32), "conv_stride": (10, 8), "conv_kernel": (10, 8), "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2}
FAMILIES = {
    "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model, {}),
    "hubert": (HubertConfig, HubertModel, {}),
    "wavlm": (WavLMConfig, WavLMModel, {"num_buckets": 32, "max_bucket_distance": 64}),
    "data2vec-audio": (Data2VecAudioConfig, Data2VecAudioModel,
                       {"num_conv_pos_embeddings": 2, "conv_pos_kernel_size": 5}),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def tiny_model_dir(request, tmp_path_factory) -> tuple[str, Path]:
    """A randomly initialised, tiny encoder of one family, saved like a hub checkpoint."""
    config_cls, model_cls, extra = FAMILIES[request.param]
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp(request.param)
    model_cls(config_cls(**{**TINY, **extra})).save_pretrained(path)
    return request.param, path


def toy_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable 1 s windows: label 1 = a 440 Hz tone in noise, label 0 = noise alone."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    t = np.arange(16000) / 16000
    windows = 0.3 * rng.standard_normal((n, 16000)) + labels[:, None] * np.sin(2 * np.pi * 440 * t)
    return windows.astype(np.float32), labels.astype(np.float32)


@pytest.mark.parametrize("mode", ["full", "frozen"])
def test_hf_teacher_loads_any_family_and_gives_the_interface(tiny_model_dir, mode):
    family, path = tiny_model_dir
    teacher = build_teacher(str(path), mode=mode)
    assert isinstance(teacher, HFTeacher) and isinstance(teacher, Teacher)
    assert type(teacher.encoder).__name__ == FAMILIES[family][1].__name__
    assert teacher.sample_rate == 16000 and teacher.embed_dim == 32
    out = teacher(torch.randn(3, 16000))
    assert isinstance(out, TeacherOutput)
    assert out.embedding.shape == (3, 32) and out.covid_logit.shape == (3,) and out.tags is None
    assert out.hidden.shape == (3, 2 + 1, 32)  # the input embeddings and each layer, pooled over time


def test_hidden_layers_are_the_encoders_own_states_pooled_over_time(tiny_model_dir):
    _, path = tiny_model_dir
    teacher = build_teacher(str(path), mode="frozen").eval()
    with torch.no_grad():
        teacher.layer_weights.copy_(torch.tensor([0.0, 1.0, -1.0]))
        x = torch.randn(2, 16000)
        out = teacher(x)
        states = teacher.encoder(teacher._normalise(x), output_hidden_states=True).hidden_states
    for k, state in enumerate(states):
        assert torch.allclose(out.hidden[:, k], state.mean(dim=1), atol=1e-5)
    weights = torch.softmax(teacher.layer_weights, dim=0)
    assert torch.allclose(out.embedding, sum(w * s.mean(dim=1) for w, s in zip(weights, states)), atol=1e-5)


def test_frozen_mode_trains_only_head_and_layer_weights(tiny_model_dir):
    _, path = tiny_model_dir
    teacher = build_teacher(str(path), mode="frozen")
    trainable = {name for name, p in teacher.named_parameters() if p.requires_grad}
    assert trainable == {"layer_weights", "covid_head.weight", "covid_head.bias"}
    assert teacher.layer_weights.shape == (2 + 1,)  # every transformer layer plus the input embeddings
    teacher.train()
    assert not teacher.encoder.training and teacher.covid_head.training


@pytest.mark.slow
@pytest.mark.parametrize("mode, lr", [("full", 3e-3), ("frozen", 3e-2)])
def test_fine_tune_lowers_the_loss_and_respects_frozen_encoder(tiny_model_dir, mode, lr):
    _, path = tiny_model_dir
    windows, labels = toy_task(16, seed=0)
    val_windows, val_labels = toy_task(8, seed=1)
    torch.manual_seed(0)
    teacher = build_teacher(str(path), mode=mode)
    encoder_before = {k: v.clone() for k, v in teacher.encoder.state_dict().items()}
    history = fine_tune(teacher, windows, labels, val_windows, val_labels, epochs=3, lr=lr, batch_size=8,
                        accelerator=Accelerator(cpu=True), progress=False)
    assert len(history["loss"]) == len(history["val_auc"]) == 3
    assert history["loss"][-1] < history["loss"][0], history
    encoder_after = teacher.encoder.state_dict()
    unchanged = all(torch.equal(encoder_before[k], encoder_after[k]) for k in encoder_before)
    assert unchanged == (mode == "frozen")


def test_input_normalisation_follows_the_feature_extractor(tmp_path: Path):
    Wav2Vec2Model(Wav2Vec2Config(**TINY)).save_pretrained(tmp_path)
    teacher = build_teacher(str(tmp_path)).eval()
    assert teacher.normalize  # no preprocessor config: Wav2Vec2FeatureExtractor's default
    x = torch.randn(2, 16000)
    with torch.no_grad():
        assert torch.allclose(teacher(x).embedding, teacher(5 * x + 0.1).embedding, atol=1e-4)
    Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(tmp_path)
    assert not build_teacher(str(tmp_path)).normalize


def test_hf_teacher_rejects_unknown_mode(tmp_path: Path):
    Wav2Vec2Model(Wav2Vec2Config(**TINY)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="mode"):
        HFTeacher(str(tmp_path), mode="partial")


def test_upsampler_reproduces_band_limited_signals():
    t16, t32 = np.arange(16000) / 16000, np.arange(32000) / 32000
    up = Upsample2x()
    for freq in (100.0, 1000.0, 5000.0, 7000.0):
        y = up(torch.from_numpy(np.sin(2 * np.pi * freq * t16)).float()[None])[0].numpy()
        assert y.shape == (32000,)
        assert np.abs(y[400:-400] - np.sin(2 * np.pi * freq * t32)[400:-400]).max() < 2e-3


def test_cough_score_rule():
    tags = torch.full((4, 527), -8.0)
    tags[0, 47] = 4.0  # clear cough
    tags[1, 48] = 4.0  # throat clearing counts as cough-like
    tags[2, [47, 0]] = 4.0  # cough-like but as likely speech
    score = cough_score(tags)
    assert score.shape == (4,)
    assert score[0] > 0.95 and score[1] > 0.95
    assert score[2] < 0.1 and score[3] < 0.01  # [3]: nothing heard


@pytest.fixture(scope="module")
def efficientat_teacher(shared_models: Path) -> EfficientATTeacher:
    return EfficientATTeacher().eval()


@pytest.fixture(scope="module")
def cough_16k(cough_data: Path) -> np.ndarray:
    """The first decodable wide-band (Telegram) recording, at 16 kHz."""
    meta = sorted(json.loads((cough_data / "metadata.json").read_text()), key=lambda r: r["filename"])
    for row in meta:
        if row["source"] == "telegram":
            audio, sr = sf.read(cough_data / "raw" / row["filename"], dtype="float32", always_2d=True)
            return soxr.resample(audio.mean(axis=1), sr, 16000).astype(np.float32)
    raise AssertionError("no telegram recording")


def test_efficientat_teacher_shapes(efficientat_teacher: EfficientATTeacher):
    out = efficientat_teacher(torch.randn(2, 16000) * 0.1)
    assert efficientat_teacher.sample_rate == 16000 and efficientat_teacher.embed_dim == 384
    assert out.embedding.shape == (2, 384) and out.covid_logit.shape == (2,) and out.tags.shape == (2, 527)


def test_efficientat_teacher_agrees_with_mn04_on_offline_resampled_audio(efficientat_teacher, cough_16k):
    """The in-model upsampler must give mn04 what soxr's 16 -> 32 kHz resampling gives it."""
    waveform_32k = soxr.resample(cough_16k, 16000, 32000).astype(np.float32)
    with torch.no_grad():
        out = efficientat_teacher(torch.from_numpy(cough_16k)[None])
        tags, embedding = efficientat_teacher.mn04(EfficientATMel()(torch.from_numpy(waveform_32k)[None]))
    assert (torch.sigmoid(out.tags) - torch.sigmoid(tags)).abs().max() < 0.02
    assert torch.cosine_similarity(out.embedding, embedding).item() > 0.999
    assert int(out.tags.argmax()) == int(tags.argmax()) == 47  # Cough
    assert cough_score(out.tags).item() > 0.3


@pytest.mark.slow
def test_efficientat_fine_tune_runs_and_keeps_the_tagger_head(shared_models: Path):
    teacher = EfficientATTeacher()
    head_before = {k: v.clone() for k, v in teacher.mn04.classifier.state_dict().items()}
    stem_before = teacher.mn04.features[0][0].weight.clone()
    windows, labels = toy_task(16, seed=0)
    history = fine_tune(teacher, windows, labels, windows[:8], labels[:8], epochs=2, lr=1e-3, batch_size=8,
                        progress=False)
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    assert 0.0 <= history["val_auc"][-1] <= 1.0
    assert all(torch.equal(v, teacher.mn04.classifier.state_dict()[k]) for k, v in head_before.items())
    assert not torch.equal(stem_before, teacher.mn04.features[0][0].weight)

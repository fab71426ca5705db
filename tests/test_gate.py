"""The sound-type gate's data, targets, loss, threshold and report (training.sounds, training.gate, evaluate)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from coughkd.audio import SAMPLE_RATE
from coughkd.features import HOP_LENGTH, N_MELS, WINDOW_FRAMES
from coughkd.model import SOUND_TYPES
from training.lib.clips import ClipSet, clip_features
from training.lib.gate_training import balanced_weights, items, loss_weights, soft_cross_entropy
from training.lib.metrics import (
    GATE_BARS,
    choose_gate_threshold,
    gate_groups,
    gate_report,
    gate_tables,
    wilson_interval,
)
from training.lib.sounds import (
    SoundClips,
    from_clip_set,
    mixtures,
    mu_law,
    speed_copies,
    teacher_distribution,
    telephone,
    telephone_copies,
)
from training.models.students import Screener, SoundTypeCNN, build_student, count_parameters

CLASSES = {"Speech": 0, "Sigh": 26, "Breathing": 41, "Cough": 47, "Throat clearing": 48, "Sneeze": 49,
           "Laughter": 16, "Dog": 74}


def tags(**present: float) -> np.ndarray:
    """AudioSet logits (1, 527): the named classes at the given probability, everything else at 0.001."""
    p = np.full((1, 527), 1e-3)
    for name, value in present.items():
        p[0, CLASSES[name.replace("_", " ")]] = value
    return np.log(p / (1 - p))


def test_teacher_distribution_maps_audioset_to_sound_types() -> None:
    assert SOUND_TYPES == ("cough", "speech", "breathing", "other")
    for name, expected in (("Cough", "cough"), ("Throat_clearing", "cough"), ("Speech", "speech"),
                           ("Breathing", "breathing"), ("Sigh", "breathing"),
                           ("Sneeze", "other"), ("Laughter", "other"), ("Dog", "other")):
        d = teacher_distribution(tags(**{name: 0.95}))[0]
        assert SOUND_TYPES[int(np.argmax(d))] == expected, name
        assert d.sum() == pytest.approx(1.0, abs=1e-6)
    both = teacher_distribution(tags(Cough=0.9, Speech=0.9))[0]
    assert both[0] == pytest.approx(both[1]) and both[3] < 0.1  # a cough with speech over it: both, not "other"
    silence = teacher_distribution(tags())[0]
    assert silence[3] > 0.99


def test_mu_law_is_a_lossy_8_bit_round_trip() -> None:
    x = np.linspace(-1, 1, 10001, dtype=np.float32)
    y = mu_law(x)
    assert len(np.unique(y)) <= 256 and np.abs(y - x).max() < 0.025  # half of the coarsest step, near full scale
    quiet = x * 1e-3
    assert np.abs(mu_law(quiet) - quiet).max() < 2e-4  # steps 200 times finer near zero, as G.711 has


def test_telephone_copy_is_band_limited_and_same_length() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(32000) * 0.3).astype(np.float32)
    y = telephone(x)
    assert abs(len(y) - len(x)) <= 2 and np.abs(y).max() == pytest.approx(1.0)
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    assert spectrum[freqs > 4200].sum() < 1e-3 * spectrum.sum()


def sound_set() -> SoundClips:
    rng = np.random.default_rng(0)
    waves = [(rng.standard_normal(16000 * (1 + i % 3)) * 0.2).astype(np.float32) for i in range(12)]
    types = [0, 0, 1, 1, 2, 3] * 2
    return SoundClips.build(waves, sound_type=types, split=["train"] * 6 + ["test"] * 6,
                            dataset=["coswara", "coswara", "coswara", "speech-commands", "coswara", "esc10"] * 2,
                            kind=["cough-heavy", "cough-shallow", "counting-normal", "word", "breathing-deep",
                                  "dog bark"] * 2, channel=["wideband"] * 12, group=[f"g{i % 6}" for i in range(12)])


def test_telephone_copies_keep_what_each_clip_is() -> None:
    sounds = sound_set()
    copies = telephone_copies(sounds)
    assert len(copies) == len(sounds) and set(copies.channel) == {"telephone"}
    np.testing.assert_array_equal(copies.sound_type, sounds.sound_type)
    np.testing.assert_array_equal(copies.split, sounds.split)


def test_mixtures_are_coughs_of_one_split_and_one_line() -> None:
    sounds = sound_set()
    made = mixtures(sounds, 20, "test", seed=0)
    coughs = int(((sounds.split == "test") & (sounds.sound_type == 0)).sum())
    assert len(made) == coughs == 2, "no more mixtures than the split has coughs"
    assert set(made.split) == {"test"} and set(made.dataset) == {"mixture"}
    assert set(made.sound_type) == {SOUND_TYPES.index("cough")}
    assert set(made.kind) <= {"cough + speech", "cough + other"}
    assert len(mixtures(sounds, 5, "val", seed=0)) == 0  # nothing in that split to mix


def test_non_cough_mixtures_join_speech_and_everyday_sounds_and_hold_no_cough() -> None:
    sounds = sound_set()
    made = mixtures(sounds, 20, "test", seed=0, with_cough=False)
    others = int(((sounds.split == "test") & np.isin(sounds.sound_type, [1, 3])).sum())
    assert len(made) == others == 3, "no more mixtures than the split has speech and everyday sounds"
    # One everyday sound in the split, and a clip is never joined to itself: each mixture holds a voice.
    assert set(made.kind) <= {"speech + speech", "speech + other", "other + speech"}
    assert all(len(set(g.split(" + "))) == 2 for g in made.group)
    assert set(made.sound_type) == {SOUND_TYPES.index("speech")}, "a voice in it: speech"
    assert all(len(made.waveform(i)) > 2 * 16000 for i in range(len(made)))  # both pieces and a pause
    np.testing.assert_array_equal(mixtures(sounds, 20, "test", seed=0).sound_type, [0, 0])  # cough ones unchanged


def test_speed_copies_are_real_wideband_training_clips_played_faster_or_slower_in_pitch_too() -> None:
    t = np.arange(16000 * 2) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    waves = [tone, tone, tone, tone]
    sounds = SoundClips.build(waves, sound_type=[1, 1, 1, 3], split=["train", "train", "val", "train"],
                              dataset=["coswara", "coswara", "coswara", "generated"], kind=["vowel-a"] * 3 + ["tone"],
                              channel=["wideband", "telephone", "wideband", "wideband"], group=["a", "a", "b", "c"])
    copies = speed_copies(sounds, 1.25, seed=0)
    assert len(copies) == 1, "only real, wideband, training clips are copied"
    assert copies.split.tolist() == ["train"] and copies.kind.tolist() == ["vowel-a"]
    assert copies.sound_type.tolist() == [1] and copies.channel.tolist() == ["wideband"]
    factor = len(tone) / len(copies.waveform(0))
    assert 1.05 <= max(factor, 1 / factor) <= 1.25 + 1e-3
    spectrum = np.abs(np.fft.rfft(copies.waveform(0)))
    peak = np.fft.rfftfreq(len(copies.waveform(0)), 1 / 16000)[np.argmax(spectrum)]
    assert peak == pytest.approx(1000 * factor, rel=0.01), "the pitch moves with the pace, as a tape played faster"
    assert len(speed_copies(sounds, 1.0, seed=0)) == 0, "off"
    again = speed_copies(sounds, 1.25, seed=0)
    np.testing.assert_array_equal(again.waveform(0), copies.waveform(0))


def test_gate_crossval_folds_hold_each_group_out_once_and_never_test_or_generated_clips() -> None:
    from training.gate_crossval import fold_of

    groups = ["esc10:fold1", "esc10:fold2", "esc10:fold3", "esc10:fold4", "coswara:a", "coswara:a", "coswara:b",
              "coswara:c", "speech-commands:x", "speech-commands:y", "covid19-cough:7", "generated"]
    datasets = [g.split(":")[0] for g in groups]
    splits = ["train", "train", "val", "test", "train", "train", "val", "train", "train", "val", "val", "train"]
    n = len(groups)
    sounds = SoundClips.build([np.zeros(10, np.float32)] * n, sound_type=[3] * n, split=splits, dataset=datasets,
                              kind=["k"] * n, channel=["wideband"] * n, group=groups)
    fold = fold_of(sounds, 3, seed=0)
    assert fold[:4].tolist() == [0, 1, 2, -1], "ESC-10 by its own folds; the test fold never"
    assert fold[4] == fold[5], "a participant's clips in one fold"
    assert fold[-1] == -1 and fold[-2] >= 0, "generated clips train in every fold; covid19-cough recordings are dealt"
    assert sorted(fold[4:8][[0, 2, 3]].tolist()) == [0, 1, 2], "three participants dealt to three folds"
    np.testing.assert_array_equal(fold_of(sounds, 3, seed=0), fold)


def test_gate_crossval_compares_two_recipes_on_the_same_held_out_clips_only(tmp_path) -> None:
    from types import SimpleNamespace

    from training.gate_crossval import against

    rng = np.random.default_rng(0)
    n = 60
    types = np.where(np.arange(n) % 3 == 0, 0, 1)  # a third coughs, the rest speech
    held = SimpleNamespace(p_cough=np.clip(0.5 + 0.4 * (types == 0) + 0.2 * rng.normal(size=n), 0, 1),
                           sound_type=types, dataset=np.array(["coswara"] * n), kind=np.array(["k"] * n),
                           channel=np.array(["wideband"] * n), group=np.array([f"coswara:{i % 12}" for i in range(n)]))
    worse = np.clip(held.p_cough + 0.3 * rng.normal(size=n), 0, 1)
    clips = [{"dataset": "coswara", "kind": "k", "channel": "wideband", "group": str(g), "sound_type": SOUND_TYPES[t],
              "p_cough": float(p)} for g, t, p in zip(held.group, types, worse)]
    report = tmp_path / "other.json"
    report.write_text(json.dumps({"wrong": 9, "clips": clips}))
    paired = against(held, report)
    assert paired["baseline_wrong"] == 9 and paired["auc_difference"] > 0
    assert paired["ci"][0] <= paired["auc_difference"] <= paired["ci"][1]
    report.write_text(json.dumps({"wrong": 9, "clips": clips[::-1]}))
    with pytest.raises(ValueError, match="other clips"):
        against(held, report)


def test_gate_crossval_reads_an_older_recipe_with_the_settings_added_since_at_their_old_values(tmp_path) -> None:
    from training.gate_crossval import settings
    from training.lib.sounds import LATER_SETTINGS

    (tmp_path / "run").mkdir()
    torch.save({"config": {"epochs": 30, "tag_weight": 0.3, "seed": 0}}, tmp_path / "run" / "sound_cnn.pt")
    run = f"--run_dir={tmp_path / 'run'}"
    config = settings([run, "--epochs=10"])
    assert config["epochs"] == 10 and config["tag_weight"] == 0.3
    assert {k: config[k] for k in LATER_SETTINGS} == LATER_SETTINGS
    assert settings([run, "--sneeze_weight=4"])["sneeze_weight"] == 4.0
    with pytest.raises(SystemExit, match="unknown setting"):
        settings([run, "--sneeze_wieght=4"])


def test_covid_clips_become_coughs_and_generated_audio_speech_or_other() -> None:
    clips = ClipSet.build([np.zeros(100, np.float32)] * 3, recording=[0, -1, -1], split=["train"] * 3,
                          covid_label=[1, -1, -1], source=["call-center", "generated:speech", "generated:tone"],
                          is_cough=[1, 0, 0])
    sounds = from_clip_set(clips)
    assert [SOUND_TYPES[t] for t in sounds.sound_type] == ["cough", "speech", "other"]
    assert sounds.dataset.tolist() == ["covid19-cough", "generated", "generated"]
    assert sounds.channel.tolist() == ["telephone", "wideband", "wideband"]


def test_balanced_weights_give_every_type_the_same_total() -> None:
    types = np.array([0] * 90 + [0] * 10 + [2] * 5)
    datasets = np.array(["covid19-cough"] * 90 + ["coswara"] * 10 + ["coswara"] * 5)
    w = balanced_weights(types, datasets)
    assert w.mean() == pytest.approx(1.0)
    assert w[types == 0].sum() == pytest.approx(w[types == 2].sum())
    assert w[:90].sum() == pytest.approx(w[90:100].sum())  # within a type, each data set counts alike


def test_loss_weights_weigh_sneezes_more_and_leave_every_other_item_balanced() -> None:
    types = np.array([0] * 6 + [3] * 10)
    datasets = np.array(["coswara"] * 6 + ["esc10"] * 10)
    kinds = np.array(["cough-heavy"] * 6 + ["dog bark"] * 8 + ["person sneeze"] * 2)
    balanced = balanced_weights(types, datasets)
    w = loss_weights(types, datasets, kinds, sneeze_weight=4.0)
    sneeze = kinds == "person sneeze"
    assert w[sneeze] == pytest.approx(4.0 * balanced[sneeze])
    assert w[~sneeze] == pytest.approx(balanced[~sneeze])
    assert loss_weights(types, datasets, kinds, sneeze_weight=1.0) == pytest.approx(balanced)


def test_training_items_are_the_clip_around_its_first_event_and_event_windows_as_views_not_copies() -> None:
    rng = np.random.default_rng(0)
    burst = lambda: rng.standard_normal(3200).astype(np.float32) * 0.5  # noqa: E731
    quiet = lambda seconds: rng.standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32) * 1e-3  # noqa: E731
    waveform = np.concatenate([quiet(6.0), burst(), quiet(1.0), burst(), quiet(1.0), burst(), quiet(6.0)])
    feats = [clip_features(waveform), clip_features(quiet(0.5))]
    assert len(feats[0].events) == 3
    owners, log_mels, waveforms = items(feats, {"seed": 0, "max_seconds": 4.0, "windows_per_clip": 2})
    # the clip and two of its three events; a clip with no burst, and the one event the runtime falls back on
    assert owners == [0, 0, 0, 1, 1] and len(feats[1].events) == 1
    first = int(feats[0].centres[0])
    assert waveforms[0].shape == (4 * SAMPLE_RATE,) and log_mels[0].shape[-1] == 4 * SAMPLE_RATE // HOP_LENGTH + 1
    assert np.array_equal(waveforms[0], feats[0].waveform[first - 2 * SAMPLE_RATE:first + 2 * SAMPLE_RATE])
    assert all(x.shape == (SAMPLE_RATE,) for x in waveforms[1:3]) and all(
        x.shape[-1] == WINDOW_FRAMES for x in log_mels[1:3])
    windows = [next(k for k in range(3) if np.array_equal(x, feats[0].windows[k])) for x in log_mels[1:3]]
    assert windows == sorted(set(windows))  # two different events, in time order
    for owner, x, w in zip(owners, log_mels, waveforms):  # nothing copied: the items hold no memory of their own
        assert np.shares_memory(x, feats[owner].log_mel) and np.shares_memory(w, feats[owner].waveform)


def test_soft_cross_entropy_is_lowest_at_the_target() -> None:
    target = torch.tensor([[0.7, 0.1, 0.1, 0.1]])
    weight = torch.ones(1)
    at_target = soft_cross_entropy(torch.log(target), target, weight)
    elsewhere = soft_cross_entropy(torch.log(torch.tensor([[0.1, 0.7, 0.1, 0.1]])), target, weight)
    assert at_target < elsewhere
    assert soft_cross_entropy(torch.zeros(2, 4), torch.eye(4)[:2], torch.zeros(2)) == 0  # no weight, no loss


def test_gate_threshold_keeps_every_group_above_its_bar_when_it_can() -> None:
    sounds = sound_set().subset(np.arange(12) < 6)
    groups = gate_groups(sounds)
    assert groups.tolist() == ["cough: coswara", "cough: coswara", "speech", "speech", "breathing", "other"]
    p = np.array([0.9, 0.8, 0.3, 0.1, 0.5, 0.2])
    t = choose_gate_threshold(p, groups)
    assert 0.5 < t <= 0.8
    made = SoundClips.build([np.zeros(10, np.float32)], sound_type=[0], split=["val"], dataset=["generated"],
                            kind=["tone"], channel=["wideband"], group=["generated"])
    assert gate_groups(made).tolist() == [""]  # made-up clips choose nothing


def test_wilson_interval() -> None:
    low, high = wilson_interval(95, 100)
    assert low < 0.95 < high and 0.88 < low and high < 0.98
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_gate_report_counts_and_tables() -> None:
    sounds = sound_set().subset(np.arange(12) >= 6)
    p = np.array([0.9, 0.4, 0.1, 0.6, 0.2, 0.1])
    predicted = ["cough", "speech", "speech", "cough", "breathing", "other"]
    report = gate_report(sounds, p, predicted, threshold=0.5)
    assert report["promises"]["cough: coswara"]["right"] == 1 and report["promises"]["cough: coswara"]["n"] == 2
    assert not report["promises"]["speech"]["held"] and report["promises"]["breathing"]["held"]
    assert report["promises"]["speech"]["bar"] == GATE_BARS["speech"]
    assert report["confusion"]["speech"]["cough"] == 1 and report["confusion"]["cough"]["speech"] == 1
    assert 0.0 <= report["roc"]["auc"] <= 1.0
    text = gate_tables(report)
    assert "| cough: coswara | accepted 50.0% (1/2)" in text and "**no**" in text


def test_screener_exports_the_students_logit_and_the_gates() -> None:
    torch.manual_seed(0)
    student, gate = build_student("cnn").eval(), SoundTypeCNN().eval()
    screener = Screener(student, gate).eval()
    waveform = torch.randn(2, 3 * 16000) * 0.1
    with torch.no_grad():
        covid, sound, window_covid, window_sound, energy = screener(waveform)
        x = screener.front_end(waveform)[0]
        torch.testing.assert_close(covid, student(x)[0])
        torch.testing.assert_close(sound, gate(x))
        # A window position's scores are the networks' on that stretch of the clip's log-mel, up to the edges the
        # stretch alone would not see (the convolutions' context): close, not equal.
        stretch = x[..., 8 * 5: 8 * 5 + 104]
        assert (window_covid[:, 5] - student(stretch)[0]).abs().max() < 1.0
    assert covid.shape == (2,) and sound.shape == (2, len(SOUND_TYPES)) and energy.shape == (2, 300)
    assert window_covid.shape == (2, window_sound.shape[-1]) and window_sound.shape[:2] == (2, len(SOUND_TYPES))
    assert count_parameters(gate) < 30_000


@pytest.mark.parametrize("pooling", ["mean+max", "max", "active"])
def test_gate_ensemble_is_the_mean_of_its_members_and_round_trips_through_a_checkpoint(pooling: str) -> None:
    from training.models.students import GateEnsemble, gate_from_checkpoint

    torch.manual_seed(0)
    members = [SoundTypeCNN(pooling=pooling).eval(), SoundTypeCNN(pooling=pooling).eval()]
    ensemble = GateEnsemble(members).eval()
    x = torch.randn(2, N_MELS, 301)
    with torch.no_grad():
        torch.testing.assert_close(ensemble(x), (members[0](x) + members[1](x)) / 2)
        clip, windows = ensemble.clip_and_window_logits(x)
        torch.testing.assert_close(clip, ensemble(x), msg="the clip's logits are forward's, in eval mode")
        parts = [m.clip_and_window_logits(x)[1] for m in members]
        torch.testing.assert_close(windows, (parts[0] + parts[1]) / 2)
        assert not torch.allclose(members[0](x), members[1](x)), "two seeds, two networks: the mean is not vacuous"
        config = {} if pooling == "mean+max" else {"config": {"pooling": pooling}}  # older checkpoints: mean+max
        loaded = gate_from_checkpoint({"members": [m.state_dict() for m in members], **config})
        torch.testing.assert_close(loaded(x), ensemble(x))
    assert not loaded.training and count_parameters(ensemble) == 2 * count_parameters(members[0])


def test_max_pooling_hears_a_short_sound_alike_in_a_long_quiet_recording() -> None:
    from training.models.students import sliding_pool, time_pool

    x = torch.rand(2, 8, 20)
    longer = torch.cat([x, torch.zeros(2, 8, 200)], dim=-1)  # feature frames of quiet: below the sound's
    torch.testing.assert_close(time_pool(longer, "max"), time_pool(x, "max"))
    assert not torch.allclose(time_pool(longer), time_pool(x)), "the mean beside it is diluted"
    assert time_pool(x).shape == (2, 16) and time_pool(x, "max").shape == (2, 8)
    windows = sliding_pool(x, 6, "max")
    torch.testing.assert_close(windows[..., 3], x[..., 3:9].amax(dim=-1))
    torch.testing.assert_close(sliding_pool(x, 6)[:, 8:], windows), "the max half of mean+max is the same"
    with pytest.raises(ValueError, match="unknown pooling"):
        SoundTypeCNN(pooling="mean")


def test_the_active_span_runs_from_the_first_to_the_last_loud_frame_and_is_all_active_pooling_hears() -> None:
    from training.models.students import ACTIVE_DB, active_span, feature_frames_mask, sliding_pool, time_pool

    silence = float(np.log(1e-6))
    x = torch.full((2, N_MELS, 100), silence)
    x[0, :, 20:30] = 0.0  # a sound, a pause of faint room tone 20 dB below it, the sound again
    x[0, :, 30:50] = -20.0 * np.log(10.0) / 10.0
    x[0, :, 50:60] = 0.0
    x[1, :, 40:45] = -(ACTIVE_DB + 1.0) * np.log(10.0) / 10.0  # below the bar: what is loudest decides, not a level
    x[1, :, 45:47] = 0.0
    span = active_span(x)[:, 0]
    assert span[0].nonzero().flatten().tolist() == list(range(20, 60)), "the pause inside the span stays in it"
    assert span[1].nonzero().flatten().tolist() == [45, 46]
    torch.manual_seed(0)
    gate = SoundTypeCNN(pooling="active").eval()
    for frames in (9, 64, 101, 250):
        log_mel = torch.randn(1, N_MELS, frames)
        assert feature_frames_mask(active_span(log_mel)).shape[-1] == gate.frames(log_mel).shape[-1]
    end = torch.full((1, N_MELS, 51), silence)
    end[..., -1] = 0.0  # a click in the last frame, which the pools drop: then every feature frame counts
    assert feature_frames_mask(active_span(end)).flatten().tolist() == [1.0] * 6
    assert torch.isfinite(gate(end)).all()
    longer = torch.cat([torch.full((1, N_MELS, 200), silence), torch.randn(1, N_MELS, 200),
                        torch.full((1, N_MELS, 200), silence)], dim=-1)
    other_quiet = longer.clone()  # other quiet, still far below the sound, away from it (beyond the network's reach)
    other_quiet[..., :100] += torch.rand(1, N_MELS, 100) * 3
    other_quiet[..., -100:] += torch.rand(1, N_MELS, 100) * 3
    every_frame = SoundTypeCNN(pooling="mean+max").eval()
    every_frame.load_state_dict(gate.state_dict())  # the same network, pooled over every frame
    with torch.no_grad():
        torch.testing.assert_close(gate.embed(other_quiet), gate.embed(longer))
        assert not torch.allclose(every_frame.embed(other_quiet), every_frame.embed(longer))
    features, mask = torch.rand(1, 4, 12), torch.zeros(1, 1, 12)
    mask[..., 3:7] = 1.0
    torch.testing.assert_close(time_pool(features, "active", mask),
                               torch.cat([features[..., 3:7].mean(-1), features[..., 3:7].amax(-1)], dim=-1))
    windows = sliding_pool(features, 6, "active", mask)
    torch.testing.assert_close(windows[..., 1], time_pool(features[..., 1:7], "active", mask[..., 1:7]))
    assert windows[..., 8].abs().max() == 0, "a window past the span hears nothing"


@pytest.mark.parametrize("pooling", ["mean+max", "max", "active"])
def test_side_by_side_gate_gives_the_ensembles_logits_in_one_pass(pooling: str) -> None:
    from training.models.students import GateEnsemble, SideBySide

    torch.manual_seed(0)
    members = [SoundTypeCNN(pooling=pooling), SoundTypeCNN(pooling=pooling), SoundTypeCNN(pooling=pooling)]
    for member in members:  # batch-norm statistics and affines of their own, or the test could not see them mixed
        for module in member.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.normal_(0.0, 0.2)
    ensemble = GateEnsemble(members).eval()
    fused = SideBySide(ensemble)
    x = torch.randn(2, N_MELS, 301)
    x[1, :, 200:] = np.log(1e-6)  # digital silence after the sound: "active" pools over less of the second clip
    with torch.no_grad():
        for got, expected in zip(fused.clip_and_window_logits(x), ensemble.clip_and_window_logits(x)):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        moved = copy.deepcopy(ensemble)
        moved.members[2].blocks[3].layers[4].running_mean.add_(1.0)
        assert not torch.allclose(SideBySide(moved).clip_and_window_logits(x)[0], fused.clip_and_window_logits(x)[0])
    convolutions = [m for m in fused.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == sum(isinstance(m, torch.nn.Conv2d) for m in members[0].modules())
    assert count_parameters(fused) < count_parameters(ensemble) + 1_000  # the same weights, once


def test_cough_parts_cut_speech_and_other_but_keep_breathing() -> None:
    from coughkd import Event
    from training.crossval import CUT_TYPES, cough_parts

    x = np.arange(4 * 16000, dtype=np.float32)
    events = [Event(0.0, 1.0), Event(1.0, 2.0), Event(2.0, 3.0), Event(3.0, 4.0)]
    kept = cough_parts(x, events, ["cough", "speech", "breathing", "other"])
    assert set(CUT_TYPES) == {"speech", "other"}
    np.testing.assert_array_equal(kept, np.concatenate([x[:16000], x[32000:48000]]))
    assert cough_parts(x, events, ["speech", "speech", "other", "breathing"]) is x  # no cough event: keep it all
    assert cough_parts(x, events, ["cough", "breathing", "cough", "cough"]) is x  # nothing to cut
    assert cough_parts(x, [Event(0.0, 0.1), Event(0.1, 4.0)], ["cough", "speech"]) is x  # 0.1 s left: too little


class _CountingTagger(torch.nn.Module):
    """Stands in for EfficientAT: AudioSet logits from the waveform's mean, counting the clips it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, waveform: torch.Tensor):
        self.seen += len(waveform)
        return type("Out", (), {"tags": waveform.mean(dim=1, keepdim=True).expand(-1, 527) * 10})()


def test_teacher_tags_are_cached_by_content_and_only_new_clips_are_tagged(tmp_path, monkeypatch) -> None:
    from training.lib import gate_training as gate

    tagger = _CountingTagger()
    monkeypatch.setattr(gate, "build_teacher", lambda name: tagger)
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (16000, 16000, 24000)]
    cache = tmp_path / "tags.npz"
    first = gate.teacher_tags(clips, cache)
    assert tagger.seen == 3 and first.shape == (3, 527) and cache.exists()
    again = gate.teacher_tags([clips[2], clips[0], np.ones(8000, np.float32)], cache)
    assert tagger.seen == 4, "only the new clip is tagged"
    np.testing.assert_allclose(again[:2], first[[2, 0]], atol=1e-2)  # stored as float16
    assert gate.teacher_tags(clips, None).shape == (3, 527) and tagger.seen == 7


def test_the_audioset_read_out_trains_the_gates_embedding_and_is_not_kept() -> None:
    from training.lib.gate_training import GateTraining

    torch.manual_seed(0)
    gate = SoundTypeCNN()
    training = GateTraining(gate)
    x = torch.randn(8, N_MELS, 101)
    logits, tag_logits = training(x)
    assert logits.shape == (8, len(SOUND_TYPES)) and tag_logits.shape == (8, 527)
    target = torch.rand(8, 527)
    optimizer = torch.optim.Adam(training.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(training(x)[1], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.01
    assert gate.input_norm.weight.grad is not None, "the read-out's loss reaches the gate's own layers"
    assert count_parameters(gate) == 25_220 and not any(p.shape[0] == 527 for p in gate.parameters())


def test_channels_last_training_computes_the_same_losses_and_gradients() -> None:
    """train_member trains in channels-last memory for speed: it must be the same network, the same sums (in
    float64, where the float32 rounding of either layout, about 1% of the largest gradient, is out of the way)."""
    from training.lib.gate_training import GateTraining

    torch.manual_seed(0)
    plain = GateTraining(SoundTypeCNN()).train().double()
    fast = GateTraining(SoundTypeCNN()).train().double()
    fast.load_state_dict(plain.state_dict())
    fast = fast.to(memory_format=torch.channels_last)
    assert fast.gate.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(4, N_MELS, 203, dtype=torch.float64)
    for model in (plain, fast):
        torch.manual_seed(1)  # the same dropout draws
        logits, tags = model(x)
        (logits.square().sum() + tags.sum()).backward()
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-9, atol=1e-9), name
    back = fast.gate.to(memory_format=torch.contiguous_format)
    assert all(p.is_contiguous() for p in back.parameters())


def test_level_and_tilt_shift_each_example_within_its_bounds_and_keep_the_floor() -> None:
    import math

    from coughkd.features import LOG_OFFSET
    from training.lib.gate_training import level_and_tilt

    x = torch.full((64, N_MELS, 10), -2.0)
    x[:, :, 0] = math.log(LOG_OFFSET)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(level_and_tilt(x, 0.0, 0.0, generator), x)
    y = level_and_tilt(x, 6.0, 0.0, generator)
    shift = (y[:, :, 1:] - x[:, :, 1:]) / (math.log(10) / 10)  # in dB
    assert shift.abs().max() <= 6.0 + 1e-4 and shift.std() > 1.0, "a gain of its own per example, within 6 dB"
    assert torch.allclose(shift, shift[:, :1, :1].expand_as(shift), atol=1e-4), "a gain moves every band alike"
    assert y.min() >= math.log(LOG_OFFSET) - 1e-6
    tilted = level_and_tilt(x, 0.0, 6.0, generator)[:, :, 1]
    spread = (tilted[:, -1] - tilted[:, 0]) / (math.log(10) / 10)
    assert spread.abs().max() <= 6.0 + 1e-4 and spread.abs().max() > 1.0, "top band against bottom: the tilt"


def test_background_noise_fills_the_quiet_frames_at_the_drawn_snr_and_leaves_half_the_batch_alone() -> None:
    from training.lib.gate_training import background_noise

    x = torch.full((200, N_MELS, 50), -13.8)  # silence at the front end's floor...
    x[:, :, 20:25] = 0.0  # ... around a burst
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(background_noise(x, (0.0, 0.0), generator), x), "max 0: off"
    y = background_noise(x, (10.0, 30.0), generator)
    changed = (y != x).flatten(1).any(dim=1)
    assert 0.35 < changed.float().mean() < 0.65, "about half the examples"
    noisy = y[changed]
    quiet = noisy[:, :, :20].exp().mean(dim=(1, 2))
    snr = 10 * torch.log10(x[changed].exp().mean(dim=(1, 2)) / quiet)
    assert snr.min() > 8.0 and snr.max() < 32.0, "the noise's level follows the drawn SNR (flicker aside)"
    assert (noisy[:, :, 20:25] >= 0.0).all(), "noise adds power, it never removes any"


def test_quiet_padding_sets_each_example_whole_inside_its_own_background_in_half_the_batches() -> None:
    from training.lib.gate_training import quiet_padding

    generator = torch.Generator().manual_seed(0)
    x = torch.full((8, N_MELS, 50), -10.0) + torch.linspace(0.0, 2.0, N_MELS).view(1, -1, 1)  # a coloured floor...
    x[:, :, 20:30] = 0.0  # ... around a burst
    assert torch.equal(quiet_padding(x, 1.0, 500, generator), x), "factor 1: off"
    shapes = [quiet_padding(x, 4.0, 120, generator).shape for _ in range(200)]
    padded = [s for s in shapes if s[-1] > 50]
    assert 0.35 < len(padded) / len(shapes) < 0.65, "about half the batches"
    assert max(s[-1] for s in padded) == 120 and min(s[-1] for s in padded) < 100, "a drawn length, capped"
    while (y := quiet_padding(x, 4.0, 500, generator)).shape[-1] < 150:  # enough added frames to average
        pass
    offsets = set()
    for b in range(len(x)):
        burst = np.flatnonzero((y[b] == 0.0).all(dim=0).numpy())
        assert len(burst) == 10, "the burst is there once, whole"
        offset = int(burst[0]) - 20
        assert torch.equal(y[b, :, offset:offset + 50], x[b]), "the example itself is unchanged"
        offsets.add(offset)
        around = torch.cat([y[b, :, :offset], y[b, :, offset + 50:]], dim=-1)
        assert torch.allclose(around.mean(dim=-1), x[b, :, 0], atol=0.15), "the added frames: its floor, per band"
        assert 0.2 < float(around.std(dim=-1).mean()) < 0.4, "which flickers"
    assert len(offsets) > 1, "each example at an offset of its own"


def test_reverberation_adds_a_decaying_tail_after_each_sound_and_leaves_half_the_batch_alone() -> None:
    from coughkd.features import LOG_OFFSET
    from training.lib.gate_training import reverberation

    x = torch.full((200, N_MELS, 120), float(np.log(LOG_OFFSET)))
    x[:, :, 20] = 0.0  # one frame of power 1 in silence
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(reverberation(x, (0.2, 0.0), (0.0, 12.0), generator), x), "max 0: off"
    y = reverberation(x, (0.2, 1.0), (0.0, 12.0), generator)
    changed = (y - x).abs().flatten(1).amax(dim=1) > 1e-3
    assert 0.35 < changed.float().mean() < 0.65, "about half the examples"
    power = y[changed].exp()
    assert torch.allclose(power[:, :, 20], torch.ones_like(power[:, :, 20]), atol=1e-3), "the direct sound stays"
    assert (power[:, :, :20] < 1e-4).all(), "nothing before the sound"
    tail = power[:, :, 21:].sum(dim=-1)
    drr = -10 * torch.log10(tail)
    assert drr.min() > -0.5 and drr.max() < 12.5, "the tail's energy follows the drawn direct-to-reverberant ratio"
    assert (power[:, :, 21] > power[:, :, 40]).all(), "and decays"


def test_pitch_and_speed_moves_a_sound_in_frequency_and_time_within_bounds_on_half_the_batch() -> None:
    from coughkd.features import LOG_OFFSET
    from training.lib.gate_training import pitch_and_speed

    floor = float(np.log(LOG_OFFSET))
    x = torch.full((400, N_MELS, 100), floor)
    x[:, 30, 40] = 0.0  # one loud cell: where it lands says how the example was moved
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(pitch_and_speed(x, 0, 1.0, generator), x), "0 bins, rate 1: off"
    y = pitch_and_speed(x, 3, 1.25, generator)
    changed = (y - x).abs().flatten(1).amax(dim=1) > 1e-4
    assert 0.35 < changed.float().mean() < 0.65, "about half the examples"
    moved = y[changed]
    band = moved.amax(dim=2).argmax(dim=1)
    frame = moved.amax(dim=1).argmax(dim=1)
    assert band.min() >= 27 and band.max() <= 33 and len(set(band.tolist())) == 7, "every shift of up to 3 bins"
    assert frame.min() >= int(40 / 1.25) and frame.max() <= int(np.ceil(40 * 1.25)), "faster or slower by <= 1.25"
    assert frame.float().std() > 1.0, "each example at a pace of its own"
    assert moved.min() >= floor - 1e-4 and moved.max() <= 1e-4, "nothing louder than the input, nothing below floor"


def test_robustness_changes_do_what_their_names_say() -> None:
    from training.gate_robustness import CHANGES, worst

    rng = np.random.default_rng(0)
    w = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 0.8).astype(np.float64)
    out = {name: change(w, rng) for name, change in CHANGES.items()}
    quiet, alone = "in 4 s more of quiet (noise 50 dB below its peak)", "its loudest event alone in 5 s of that quiet"
    cut = "1.5 s from its first event, then digital silence to 5 s"
    assert all(len(y) == len(w) for name, y in out.items() if name not in (quiet, alone, cut))
    tone = np.cos(np.arange(16000) * 2 * np.pi * 440 / 16000) * 0.8  # loud from its first sample to its last
    inside = CHANGES[quiet](tone, rng)
    assert len(inside) == len(tone) + 4 * 16000
    at = int(np.argmax(np.abs(inside) > 0.1))
    noise = np.concatenate([inside[:at], inside[at + len(tone):]])
    assert 20 * np.log10(np.abs(tone).max() / noise.std()) == pytest.approx(50.0, abs=0.3)
    np.testing.assert_allclose(inside[at:at + len(tone)], tone, atol=0.02)
    quiet_burst, loud_burst = np.full(3200, 0.2), np.full(1600, 0.9)  # two events, 1 s of silence apart
    two = np.concatenate([np.zeros(8000), quiet_burst, np.zeros(16000), loud_burst, np.zeros(8000)])
    single = CHANGES[alone](two, rng)
    assert len(single) == 5 * 16000, "the event and the quiet add up to 5 s"
    held = np.abs(single) > 0.1
    assert np.abs(single).max() == pytest.approx(0.9, abs=0.02) and 1600 <= held.sum() < 1700, "the loud one, alone"
    padded = CHANGES[cut](two, rng)
    assert len(padded) == 5 * 16000 and not padded[int(1.5 * 16000):].any(), "1.5 s, then exact zeros"
    lead = int(np.argmax(padded > 0))  # 0.1 s before the first event, whose frames start a little before the burst
    assert 0.1 <= lead / 16000 < 0.16
    np.testing.assert_array_equal(padded[:24000], two[8000 - lead:8000 - lead + 24000])
    np.testing.assert_array_equal(out["as recorded"], w)
    assert 20 * np.log10(np.abs(out["quiet (-12 dB)"]).max() / np.abs(w).max()) == pytest.approx(-12.0)
    assert np.abs(out["loud (+6 dB, clipped)"]).max() == 1.0
    noise = out["white noise 20 dB below"] - w
    assert 10 * np.log10(np.mean(w ** 2) / np.mean(noise ** 2)) == pytest.approx(20.0, abs=0.3)
    high, low = (np.sin(np.arange(16000) * 2 * np.pi * hz / 16000) for hz in (3500, 200))
    tilt = {name: np.std(CHANGES[name](high, rng)) / np.std(CHANGES[name](low, rng))
            for name in ("brighter (pre-emphasis 0.7)", "duller (one-pole low-pass 0.7)")}
    assert tilt["brighter (pre-emphasis 0.7)"] > 3 and tilt["duller (one-pole low-pass 0.7)"] < 1 / 3
    noise = rng.standard_normal(64000)
    room = CHANGES["room (RT60 0.6 s, DRR 3 dB)"](noise, rng)
    gain_db = 10 * np.log10(np.mean(room[16000:] ** 2) / np.mean(noise[16000:] ** 2))
    assert gain_db == pytest.approx(10 * np.log10(1 + 10 ** -0.3), abs=0.3), "the tail adds 3 dB below the direct"
    assert worst({"speech": (90, 100), "breathing": (86, 100), "cough: coswara": (100, 100)}) == "speech 90/100"


def test_the_cards_gate_recipe_names_the_sneeze_weight_quiet_padding_and_pooling_only_when_set() -> None:
    from training.lib.card import gate_recipe

    recipe = {"epochs": 30, "seed": 0}
    assert "sneeze" not in gate_recipe(recipe) and "sneeze" not in gate_recipe({**recipe, "sneeze_weight": 1.0})
    assert "sneezes (and their copies) weigh 8 times" in gate_recipe({**recipe, "sneeze_weight": 8.0})
    assert "background" not in gate_recipe(recipe) and "background" not in gate_recipe({**recipe, "quiet_padding": 1})
    assert "up to 4 times their length" in gate_recipe({**recipe, "quiet_padding": 4.0})
    assert "maximum alone" in gate_recipe({**recipe, "pooling": "max"}) and "maximum alone" not in gate_recipe(recipe)
    assert "active span alone" in gate_recipe({**recipe, "pooling": "active"})
    assert "active span" not in gate_recipe(recipe)

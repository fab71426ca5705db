"""Generated non-cough audio: every kind present, right lengths, deterministic, graceful without espeak-ng."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from training.lib import synth
from training.lib.synth import KINDS, generate_non_cough

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def items():
    return generate_non_cough(2 * len(KINDS), seed=0)


@needs_espeak
def test_every_kind_is_generated(items):
    assert [kind for kind, _ in items] == list(KINDS) * 2


def test_lengths_and_levels(items):
    for kind, x in items:
        assert x.dtype == np.float32 and x.ndim == 1
        assert 1.0 * 16000 <= x.size <= 3.0 * 16000, kind
        assert np.isfinite(x).all() and np.max(np.abs(x)) <= 1.0
        assert np.max(np.abs(x)) > 0, kind
        if kind == "silence":
            assert np.sqrt(np.mean(x**2)) < 0.01
        else:
            assert np.sqrt(np.mean(x**2)) > 1e-3, kind


@needs_espeak
def test_speech_is_audible_and_varied(items):
    speech = [x for kind, x in items if kind == "speech"]
    assert all(np.sqrt(np.mean(x**2)) > 0.01 for x in speech)
    assert not np.array_equal(speech[0][: speech[1].size], speech[1][: speech[0].size])


def test_deterministic_for_a_seed(items):
    again = generate_non_cough(2 * len(KINDS), seed=0)
    assert [k for k, _ in again] == [k for k, _ in items]
    for (_, a), (_, b) in zip(items, again):
        np.testing.assert_array_equal(a, b)
    other = generate_non_cough(len(KINDS), seed=1)
    assert any(a.size != b.size or not np.array_equal(a, b) for (_, a), (_, b) in zip(items, other))


def test_sample_rate_and_duration_range():
    for kind, x in generate_non_cough(len(KINDS), seed=5, sample_rate=8000, seconds=(0.5, 0.6)):
        assert 4000 <= x.size <= 4800, kind


def test_without_espeak_speech_is_skipped_with_a_warning(monkeypatch):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.warns(RuntimeWarning, match="espeak-ng"):
        generated = generate_non_cough(len(KINDS), seed=0)
    kinds = [kind for kind, _ in generated]
    assert "speech" not in kinds and set(kinds) == set(KINDS) - {"speech"}

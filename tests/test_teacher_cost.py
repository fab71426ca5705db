"""The wav2vec2-base cost estimate (training.teacher_cost) on a few real recordings."""
from __future__ import annotations

from pathlib import Path

import pytest

from training import teacher_cost


@pytest.mark.slow
def test_teacher_cost_prints_positive_figures(cough_data: Path, capsys: pytest.CaptureFixture) -> None:
    result = teacher_cost.main([f"--data_root={cough_data / 'raw'}", "--clips=3", "--finetune_epochs=1",
                                "--batch_size=2"])
    printed = capsys.readouterr().out
    assert result["clips"] == 3 and 90e6 < result["parameters"] < 100e6, "wav2vec2-base's own size"
    for key in ("seconds_per_clip", "mean_clip_seconds", "peak_memory_mib", "embedding_minutes",
                "train_seconds_per_crop", "val_seconds_per_crop", "epoch_minutes", "expected_minutes"):
        assert result[key] > 0, key
    assert result["finetune_peak_memory_mib"] >= result["peak_memory_mib"]
    assert result["expected_minutes"] == pytest.approx(
        1470 * result["seconds_per_clip"] / 60 + result["epoch_minutes"])
    assert f"{result['seconds_per_clip']:.2f} s per clip" in printed
    assert f"peak memory: {result['peak_memory_mib']:,.0f} MiB" in printed
    assert f"1,470 clips x {result['seconds_per_clip']:.2f} s = {result['embedding_minutes']:.1f} min" in printed
    assert f"{result['expected_minutes']:.1f} min in all" in printed

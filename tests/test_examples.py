"""examples/score_wav.py, the model used without coughkd, gives the numbers coughkd gives (up to 30 s of audio: one
call, as the example makes)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import coughkd
from tests.model_fixture import make_model_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "score_wav.py"


@pytest.mark.parametrize("cough_threshold", [0.0, 1.01])
def test_example_matches_coughkd(tmp_path: Path, cough_threshold: float) -> None:
    model_dir = make_model_dir(tmp_path / "model", cough_threshold=cough_threshold)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4 * 16000) * 1e-3
    x[16000:20000] += rng.standard_normal(4000) * 0.3
    wav = tmp_path / "cough.wav"
    sf.write(wav, x.astype(np.float32), 16000, subtype="FLOAT")
    result = subprocess.run([sys.executable, str(EXAMPLE), str(model_dir), str(wav)], capture_output=True,
                            text=True, check=True, cwd=tmp_path)
    example = json.loads(result.stdout)
    prediction = coughkd.load(model_dir).predict(wav)
    assert example["is_cough"] == prediction.is_cough
    for name, p in prediction.sound_probabilities.items():
        assert example["sound_probabilities"][name] == pytest.approx(p, abs=1e-6)
    if prediction.covid_probability is None:
        assert example["covid_probability"] is None and example["covid_positive"] is None
    else:
        assert example["covid_probability"] == pytest.approx(prediction.covid_probability, abs=1e-6)
        assert example["covid_positive"] == prediction.covid_positive


def test_example_imports_only_openvino_and_soundfile() -> None:
    imports = {line.split()[1].split(".")[0] for line in EXAMPLE.read_text().splitlines()
               if line.startswith(("import ", "from "))}
    assert imports == {"json", "sys", "pathlib", "numpy", "openvino", "soundfile"}

"""Score a 16 kHz wav file with the exported model alone (OpenVINO and soundfile; no coughkd, no torch):
the IR takes the waveform and computes its own features, so these lines give the numbers `coughkd` gives.

    python examples/score_wav.py assets/model cough.wav      # resample other rates to 16 kHz mono first
"""
import json
import sys
from pathlib import Path

import numpy as np
import openvino as ov
import soundfile as sf

model_dir, wav = Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((model_dir / "manifest.json").read_text())
audio, rate = sf.read(wav, dtype="float32", always_2d=True)
if rate != manifest["input"]["sample_rate"]:
    sys.exit(f"{wav} is {rate} Hz; the model takes {manifest['input']['sample_rate']} Hz")
waveform = audio.mean(axis=1)
waveform /= np.abs(waveform).max()  # peak-normalised, as coughkd.load_audio does
model = ov.Core().compile_model(model_dir / manifest["variants"]["int8"], "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
out = model(waveform[None])
logits = out["sound_logits"][0].astype(np.float64)
sound = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
is_cough = bool(sound[manifest["sound_types"].index("cough")] >= manifest["threshold"]["cough"])
covid = float(1 / (1 + np.exp(-float(out["covid_logit"][0])))) if is_cough else None
print(json.dumps({"is_cough": is_cough, "sound_probabilities": dict(zip(manifest["sound_types"], sound.tolist())),
                  "covid_probability": covid,
                  "covid_positive": None if covid is None else covid >= manifest["threshold"]["covid"]}))

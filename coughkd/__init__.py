"""coughkd: screen a cough recording for COVID-19 with a small distilled student model on OpenVINO.

    import coughkd
    model = coughkd.load()                 # assets/model, int8
    prediction = model.predict("cough.wav")
    print(prediction.sound_type, prediction.covid_probability, prediction.events)
"""
from __future__ import annotations

import threading
from pathlib import Path

# privacy first: it switches telemetry off before anything can import openvino or gradio
from . import privacy  # noqa: F401
from .audio import SAMPLE_RATE, Audio, AudioError, load_audio
from .events import Event
from .model import SOUND_TYPES, ModelError, StudentRuntime
from .predict import AudioSource, CoughModel, EventScore, Prediction

__all__ = ["__version__", "SAMPLE_RATE", "SOUND_TYPES", "Audio", "AudioError", "CoughModel", "Event", "EventScore",
           "ModelError", "Prediction", "load", "load_audio", "predict"]

__version__ = "0.4.0"  # the one place it is set (pyproject.toml reads it)

_default: CoughModel | None = None
_default_lock = threading.Lock()


def load(model_dir: str | Path | None = None, variant: str = "int8",
         config: dict[str, str] | None = None) -> CoughModel:
    """Verify and compile a model folder (default: the shipped assets/model); raises ModelError if it is unusable."""
    return CoughModel(StudentRuntime(model_dir, variant, config))


def predict(audio: AudioSource, sample_rate: int | None = None) -> Prediction:
    """Score a recording with the shipped model, loaded on first use and then shared."""
    global _default
    with _default_lock:
        if _default is None:
            _default = load()
    return _default.predict(audio, sample_rate)

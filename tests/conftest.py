"""Shared test fixtures: where the read-only data and weights live."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.lib.data import SHARED

REPO = Path(__file__).resolve().parents[1]
COUGH_DATA = SHARED / "data" / "covid19-cough"
MODELS = SHARED / "models"


@pytest.fixture(scope="session")
def cough_data() -> Path:
    if not (COUGH_DATA / "metadata.json").exists():
        pytest.skip(f"dataset not found at {COUGH_DATA}")
    return COUGH_DATA


@pytest.fixture(scope="session")
def shared_models() -> Path:
    if not (MODELS / "efficientat_mn04_as_mAP_432.pt").exists():
        pytest.skip(f"teacher weights not found at {MODELS}")
    return MODELS

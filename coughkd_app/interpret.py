"""What one prediction means for the person who recorded it, as plain numbers: the outcome, the model's measured
figures for the recording channel that matches the input, predictive values at a prevalence, the spread of the
per-cough scores. `summarise` gathers them into one JSON-able dict (an "entry"), which is all the page, its history
in the browser and the report are drawn from.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from coughkd import Prediction

from .quality import MIN_COUGH_SECONDS, MIN_LOUD_CREST, MIN_SNR_DB, Quality, channel

SOURCE_OF_CHANNEL = {"telephone": "call-center", "app": "telegram"}  # the data set's names for the two channels
DEFAULT_PREVALENCE = 5.0  # percent: stated on the page, for people who do not know their local figure
Z95 = 1.959964


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: honest for the small counts the validation set has (2 of 8)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + Z95 ** 2 / (2 * trials)) / (1 + Z95 ** 2 / trials)
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95 ** 2 / (4 * trials ** 2)) / (1 + Z95 ** 2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def predictive_values(sensitivity: float, specificity: float, prevalence: float) -> tuple[float | None, float | None]:
    """(PPV, NPV) at a prevalence (a fraction): of those flagged, the share who have it; of those not, who do not.
    None where nobody would be flagged (or cleared), so the share is undefined."""
    flagged = sensitivity * prevalence + (1 - specificity) * (1 - prevalence)
    cleared = specificity * (1 - prevalence) + (1 - sensitivity) * prevalence
    ppv = sensitivity * prevalence / flagged if flagged > 0 else None
    npv = specificity * (1 - prevalence) / cleared if cleared > 0 else None
    return ppv, npv


def figures(operating_point: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Sensitivity, specificity and their counts for `source` (a per_source key), or the pooled ones when the
    manifest has none for it; "source" says which ("pooled" for the latter)."""
    found = operating_point.get("per_source", {}).get(source) if source else None
    chosen, name = (found, source) if found else (operating_point, "pooled")
    out: dict[str, Any] = {"source": name, "sensitivity": float(chosen.get("sensitivity", 0.0)),
                           "specificity": float(chosen.get("specificity", 0.0))}
    if all(k in chosen for k in ("tp", "fn", "tn", "fp")):
        out |= {k: int(chosen[k]) for k in ("tp", "fn", "tn", "fp")}
        out["sensitivity_interval"] = list(wilson(out["tp"], out["tp"] + out["fn"]))
    return out


def cough_spread(prediction: Prediction) -> dict[str, Any] | None:
    """The lowest and highest per-cough COVID-19 score, and whether they fall on both sides of the threshold;
    None with fewer than two scored coughs."""
    scores = [e.covid_probability for e in prediction.events if e.covid_probability is not None]
    if len(scores) < 2:
        return None
    low, high = min(scores), max(scores)
    return {"count": len(scores), "low": low, "high": high,
            "mixed": low < prediction.threshold <= high}


def outcome(prediction: Prediction, quality: Quality | None) -> str:
    """positive / negative for a cough recording that passed the checks, retake if it failed one, not_cough; an
    entry of a recording that could not be analysed has "error" (error_entry)."""
    if not prediction.is_cough:
        return "not_cough"
    if quality is not None and quality.problems:
        return "retake"
    return "positive" if prediction.covid_positive else "negative"


def summarise(prediction: Prediction, quality: Quality | None, original_sample_rate: int, name: str,
              operating_point: dict[str, Any], analysed: str = "") -> dict[str, Any]:
    """One result as a JSON-able entry: everything the verdict, the history and the report show, nothing more
    (no audio, no per-event list: the history lives in the browser's storage)."""
    kind = channel(original_sample_rate)
    return {
        "name": name,
        "analysed": analysed,
        "utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "outcome": outcome(prediction, quality),
        "problems": list(quality.problems) if quality else [],
        "sound_type": prediction.sound_type,
        "sound_probabilities": dict(prediction.sound_probabilities),
        "covid_probability": prediction.covid_probability,
        "threshold": prediction.threshold,
        "channel": kind,
        "figures": figures(operating_point, SOURCE_OF_CHANNEL[kind]),
        "validation": {"pooled": figures(operating_point, None),
                       "per_source": {s: figures(operating_point, s) for s in operating_point.get("per_source", {})}},
        "spread": cough_spread(prediction) if prediction.is_cough else None,
        "events": len(prediction.events),
        "duration_s": prediction.duration_s,
        "latency_ms": prediction.latency_ms,
        "model": prediction.model,
        "warnings": list(prediction.warnings),
        "quality": asdict(quality) | {"limits": {"min_crest": MIN_LOUD_CREST, "min_snr_db": MIN_SNR_DB[kind],
                                                 "min_cough_seconds": MIN_COUGH_SECONDS}} if quality else None,
    }


def error_entry(message: str, name: str = "", analysed: str = "") -> dict[str, Any]:
    """An input that could not be analysed, as an entry (the message is the runtime's, in English)."""
    return {"name": name, "analysed": analysed, "outcome": "error", "error": message}

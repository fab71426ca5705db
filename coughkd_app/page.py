"""One press of Analyse, from the model's answer to what the page shows: checks the recording, reads the prediction
for a person (interpret), and renders verdict, figure and report (view, figure, report) in the page's language.

The figure and the quality checks decode the file again: a second decode is cheaper than keeping every session's
audio in memory, and nothing decoded outlives the request.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coughkd import Prediction
from coughkd.audio import load_audio

from . import figure, report, view
from .interpret import DEFAULT_PREVALENCE, error_entry, summarise
from .quality import check
from .text import language, say

log = logging.getLogger("coughkd.app")
MICROPHONE_NAME = "audio.wav"  # what Gradio calls a recording made (or trimmed) in the page
MAX_TIME_CHARS = 40


@dataclass
class Shown:
    """What the page shows for one result, and the entry its history keeps (None when there is nothing to keep)."""

    verdict: str
    figure: str = ""
    report: str = ""
    entry: dict[str, Any] | None = None


def read_context(context: str | None) -> tuple[str, str]:
    """(language, local time) from the page's context input; anything malformed gives English and no time."""
    try:
        values = json.loads(context or "{}")
    except ValueError:
        values = {}
    if not isinstance(values, dict):
        values = {}
    return language(str(values.get("lang", ""))), str(values.get("time", ""))[:MAX_TIME_CHARS]


def display_name(path: str | None, lang: str) -> str:
    """The recording's file name, or words for a recording made with the page's microphone."""
    if not path:
        return ""
    name = Path(path).name
    return say(lang, "microphone_recording") if name == MICROPHONE_NAME else name


def prevalence_or_default(prevalence: float | None) -> float:
    """The slider's percentage, kept inside (0, 100): a prevalence of 0 or 100 leaves nothing to predict."""
    try:
        value = float(prevalence)
    except (TypeError, ValueError):
        return DEFAULT_PREVALENCE
    return min(max(value, 0.1), 99.9)


def present(prediction: Prediction | None, error: str | None, path: str | None, operating_point: dict[str, Any],
            manifest: dict[str, Any], prevalence: float, lang: str, time: str) -> Shown:
    """The page's view of one analysis: an error's message, or the verdict, figure and report of a prediction."""
    name = display_name(path, lang)
    if not path:
        return Shown(view.verdict_html(error_entry(say(lang, "no_audio")), prevalence, lang))
    if prediction is None:
        return Shown(view.verdict_html(error_entry(error or say(lang, "headline_error"), name, time), prevalence, lang))
    try:
        audio = load_audio(path)
    except Exception:
        log.exception("second decode failed for %s", name)
        return Shown(view.verdict_html(error_entry(say(lang, "headline_error"), name, time), prevalence, lang))
    quality = check(audio, prediction) if prediction.is_cough else None
    entry = summarise(prediction, quality, audio.original_sample_rate, name, operating_point, time)
    alt = view.alt_text(entry, lang)
    try:
        image = figure.png(figure.draw(audio, prediction, lang, scores=entry["outcome"] in view.SCORED))
    except Exception:
        log.exception("figure failed for %s", name)  # a failed drawing must not hide the verdict
        image = None
    disclaimer = report.markdown_bold(say(lang, "disclaimer"))
    document = report.report_html(entry, image, alt, prevalence, lang, disclaimer, manifest)
    return Shown(view.verdict_html(entry, prevalence, lang), view.figure_html(image, alt) if image else "",
                 view.report_link_html(document, report.filename(entry), lang), entry)


def remember(state: Any, entry: dict[str, Any] | None) -> dict[str, Any]:
    """The browser's stored results with `entry` first (and current); a malformed store starts afresh."""
    entries = state.get("entries", []) if isinstance(state, dict) else []
    entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    if entry is not None:
        entries = [entry, *entries][: view.HISTORY_SIZE]
    return {"entries": entries, "current": entry}


def stored(state: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(entries, current) from the browser's store, whatever it holds."""
    remembered = remember(state, None)
    current = state.get("current") if isinstance(state, dict) else None
    return remembered["entries"], current if isinstance(current, dict) else None

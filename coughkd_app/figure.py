"""The result's figure: waveform and log-mel spectrogram (numpy, for drawing only: the same analysis as the front end
inside the model's graph, tested against it) with each detected event shaded and labelled, as a PNG for the page
and the report.

Sized for a phone: drawn 5 inches wide with 13-14 pt text and its title wrapped to fit, so on a 390 px wide screen,
where it is shown about 310 px wide, its smallest text is still about 11 px (tests/test_browser.py measures it there).
"""
from __future__ import annotations

import io
import textwrap

import numpy as np
from matplotlib.figure import Figure

from coughkd import Audio, EventScore, Prediction
from coughkd.features import HOP_LENGTH, N_MELS, log_mel

from .text import FIGURE_LANGUAGES, say
from .view import pct

SIZE_IN = (5.0, 4.4)
DPI = 120
FONT_PT = 14
SMALLEST_FONT_PT = 13  # tick labels and event labels
PLOT_POINTS = 2000  # waveform drawn as a min/max envelope of this many columns, so 10-minute clips plot fast
MAX_LABELLED_EVENTS = 12  # beyond this the labels overlap at phone width; each score is in the JSON result
TITLE_CHARS = 44  # a title line that fits the figure's width at FONT_PT


def envelope(waveform: np.ndarray, columns: int = PLOT_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column min and max of the waveform (column centres in samples): drawing millions of points is slow."""
    step = max(1, len(waveform) // columns)
    usable = waveform[: len(waveform) // step * step].reshape(-1, step)
    centres = (np.arange(len(usable)) + 0.5) * step
    return centres, usable.min(axis=1), usable.max(axis=1)


def event_label(event: EventScore, lang: str, scores: bool) -> str:
    """A cough's COVID-19 score, or what the event sounds like (events of non-cough audio carry no score, and no
    event shows one when the recording gave no result)."""
    if scores and event.covid_probability is not None:
        return f"{pct(event.covid_probability)}%"
    return say(lang, f"sound_{event.sound_type}")


def draw(audio: Audio, prediction: Prediction, lang: str = "en", scores: bool = True) -> Figure:
    """The figure, its words in `lang` where the bundled font can draw them (else English); `scores` False draws
    what each event sounds like instead of its score (a recording to record again has no result to show)."""
    lang = lang if lang in FIGURE_LANGUAGES else "en"
    sr = audio.sample_rate
    spectrogram = log_mel(audio.waveform)
    fig = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    wave_ax, spec_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.3])
    x, lo, hi = envelope(audio.waveform)
    wave_ax.fill_between(x / sr, lo, hi, color="#1f4e8c", linewidth=0.6)
    wave_ax.set_ylim(-1.05, 2.0)
    wave_ax.set_yticks([])
    wave_ax.set_ylabel(say(lang, "figure_waveform"), fontsize=FONT_PT)
    frames = spectrogram.shape[-1]
    spec_ax.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, frames * HOP_LENGTH / sr, 0, N_MELS), interpolation="nearest")
    spec_ax.set_yticks([])
    spec_ax.set_ylabel(say(lang, "figure_bands"), fontsize=FONT_PT)
    spec_ax.set_xlabel(say(lang, "figure_time"), fontsize=FONT_PT)
    spec_ax.tick_params(labelsize=SMALLEST_FONT_PT)
    spec_ax.set_xlim(0, audio.duration_s)
    labelled = len(prediction.events) <= MAX_LABELLED_EVENTS
    for i, event in enumerate(prediction.events):
        wave_ax.axvspan(event.start_s, event.end_s, color="#f28e2b", alpha=0.3, linewidth=0, zorder=0)
        if not labelled:
            continue
        for edge in (event.start_s, event.end_s):
            spec_ax.axvline(edge, color="#7fdbff", linewidth=1.2, linestyle="--")
        wave_ax.text((event.start_s + event.end_s) / 2, 1.25 + 0.35 * (i % 2), event_label(event, lang, scores),
                     ha="center", va="center", fontsize=SMALLEST_FONT_PT)
    if not labelled:
        title = say(lang, "figure_title_many", events=len(prediction.events))
    elif prediction.is_cough and scores:
        title = say(lang, "figure_title_cough")
    else:
        title = say(lang, "figure_title_other")
    wave_ax.set_title(textwrap.fill(title, TITLE_CHARS), fontsize=FONT_PT)
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes at its own resolution (page and report embed the same image)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()

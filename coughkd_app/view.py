"""The HTML of one result (the verdict), of the figure with its text alternative, and of the history, from an entry
(`interpret.summarise`), in one language. Every value that came from outside (a file name above all) is escaped:
the page inserts this HTML as it is.
"""
from __future__ import annotations

import base64
import html
from typing import Any

from .interpret import predictive_values
from .text import decimal, say

HISTORY_SIZE = 10  # results kept in the browser; older ones drop off
SCORED = ("positive", "negative")  # the outcomes that show COVID-19 scores; "retake" shows none, not even per cough


def pct(fraction: float) -> str:
    """A fraction as a whole percentage, without the sign ("0.684" -> "68")."""
    return f"{100 * fraction:.0f}"


def esc(text: object) -> str:
    """Text (and attribute values) safe to put in the page's HTML."""
    return html.escape(str(text), quote=True)


def headline(entry: dict[str, Any], lang: str) -> str:
    """The verdict's first line, in words: what the person should take away."""
    kind = entry["outcome"]
    if kind == "not_cough":
        heard = entry["sound_type"] if entry["sound_type"] in ("speech", "breathing") else "other"
        return say(lang, f"headline_{heard}")
    return say(lang, f"headline_{kind}")


def next_step(entry: dict[str, Any], lang: str) -> str:
    """What the person should do now, for the entry's outcome."""
    kind = entry["outcome"]
    return say(lang, "next_not_cough" if kind == "not_cough" else f"next_{kind}")


def recording_line(entry: dict[str, Any], lang: str) -> str:
    """Which recording the verdict belongs to, how long it is and when it was analysed."""
    return say(lang, "result_for", name=entry["name"], seconds=decimal(lang, entry.get("duration_s", 0.0)),
               time=entry.get("analysed") or entry.get("utc", ""))


def how_sure(entry: dict[str, Any], prevalence: float, lang: str) -> list[str]:
    """The operating point as counts out of 100, for the input's channel, with how few recordings they rest on and
    the predictive values at `prevalence` (percent)."""
    fig = entry["figures"]
    sensitivity, specificity = fig["sensitivity"], fig["specificity"]
    lines = [say(lang, "per_hundred", caught=pct(sensitivity), false_alarms=pct(1 - specificity)),
             say(lang, "channel_pooled" if fig["source"] == "pooled" else f"channel_{entry['channel']}")]
    if "tp" in fig:
        low, high = fig["sensitivity_interval"]
        lines.append(say(lang, "sample_size", positives=fig["tp"] + fig["fn"], negatives=fig["tn"] + fig["fp"],
                         low=pct(low), high=pct(high)))
    ppv, npv = predictive_values(sensitivity, specificity, prevalence / 100)
    if ppv is not None and npv is not None:
        lines.append(say(lang, "predictive", prevalence=decimal(lang, prevalence), ppv=pct(ppv), npv=pct(npv)))
    return lines


def sound_list(probabilities: dict[str, float], lang: str) -> str:
    """What the gate heard, likeliest first: "speech 81%, cough 9%, ..."."""
    ranked = sorted(probabilities.items(), key=lambda item: -item[1])
    return ", ".join(f"{say(lang, f'sound_{kind}')} {pct(p)}%" for kind, p in ranked)


def full_numbers(entry: dict[str, Any], lang: str) -> list[str]:
    """Everything behind the verdict, for whoever wants it: the score, what the gate heard, the validation
    counts per channel, the quality measurements, timings and the model."""
    lines = []
    if entry["covid_probability"] is not None:
        key = "score_unreliable" if entry["outcome"] == "retake" else "score"
        lines.append(say(lang, key, score=pct(entry["covid_probability"]), threshold=pct(entry["threshold"])))
    lines.append(say(lang, "heard", sounds=sound_list(entry["sound_probabilities"], lang)))
    if entry["covid_probability"] is not None:
        validation = entry["validation"]
        lines.append(say(lang, "validation"))
        for source, fig in [*validation["per_source"].items(), ("pooled", validation["pooled"])]:
            if "tp" in fig:
                lines.append(say(lang, "validation_source", channel=say(lang, f"source_{source}"), tp=fig["tp"],
                                 positives=fig["tp"] + fig["fn"], tn=fig["tn"], negatives=fig["tn"] + fig["fp"]))
    quality = entry.get("quality")
    if quality:
        limits = quality["limits"]
        lines.append(say(lang, "checks", crest=decimal(lang, quality["loud_crest"], 2),
                         min_crest=decimal(lang, limits["min_crest"]),
                         snr=decimal(lang, quality["snr_db"]), min_snr=decimal(lang, limits["min_snr_db"]),
                         coughs=quality["coughs"], cough_seconds=decimal(lang, quality["cough_seconds"], 2),
                         min_cough_seconds=decimal(lang, limits["min_cough_seconds"], 2)))
    lines.append(say(lang, "details", events=entry["events"], seconds=decimal(lang, entry["duration_s"]),
                     ms=f"{entry['latency_ms']:.0f}", model=entry["model"]))
    if entry["warnings"]:
        lines.append(say(lang, "decoder_notes", notes="; ".join(entry["warnings"])))
    return lines


def paragraphs(lines: list[str], cls: str = "") -> str:
    """Lines of text as escaped <p> elements."""
    attribute = f' class="{cls}"' if cls else ""
    return "".join(f"<p{attribute}>{esc(line)}</p>" for line in lines)


def verdict_html(entry: dict[str, Any], prevalence: float, lang: str) -> str:
    """The result for a person: which recording, the headline, what to do, how sure it is, and the full numbers
    one click away (a <details>, which keyboards and screen readers open like a button)."""
    kind = entry["outcome"]
    parts = [f'<div class="verdict verdict-{kind}" data-outcome="{kind}" lang="{esc(lang)}">']
    if entry.get("name"):
        parts.append(f'<p class="verdict-for">{esc(recording_line(entry, lang))}</p>')
    parts.append(f'<h2 class="verdict-headline">{esc(headline(entry, lang))}</h2>')
    if kind == "error":
        parts.append(paragraphs([entry["error"]]))
        return "".join(parts) + "</div>"
    if kind == "retake":
        reasons = "".join(f"<li><strong>{esc(say(lang, f'reason_{p}'))}</strong> {esc(say(lang, f'tip_{p}'))}</li>"
                          for p in entry["problems"])
        parts.append(f'<ul class="verdict-reasons">{reasons}</ul>')
    parts.append(paragraphs([next_step(entry, lang)], "verdict-next"))
    if kind in SCORED:
        parts.append(f'<h3>{esc(say(lang, "how_sure"))}</h3>')
        parts.append(paragraphs(how_sure(entry, prevalence, lang)))
        spread = entry.get("spread")
        if spread:
            lines = [say(lang, "spread", count=spread["count"], low=pct(spread["low"]), high=pct(spread["high"]))]
            if spread["mixed"]:
                lines.append(say(lang, "spread_mixed"))
            parts.append(paragraphs(lines, "verdict-spread"))
    parts.append(f'<details class="verdict-numbers"><summary>{esc(say(lang, "full_numbers"))}</summary>'
                 f'{paragraphs(full_numbers(entry, lang))}</details>')
    return "".join(parts) + "</div>"


def message_html(text: str) -> str:
    """A line in the verdict's place before any result (the placeholder, "ready to analyse ...")."""
    return f'<div class="verdict verdict-idle"><p>{esc(text)}</p></div>'


def alt_text(entry: dict[str, Any], lang: str) -> str:
    """The figure in words: what it shows, the coughs' scores, and the result."""
    parts = [say(lang, "figure_alt", name=entry["name"], seconds=decimal(lang, entry["duration_s"]),
                      events=entry["events"])]
    spread = entry.get("spread")
    if spread and entry["outcome"] in SCORED:
        parts.append(say(lang, "figure_alt_coughs", coughs=spread["count"], low=pct(spread["low"]),
                         high=pct(spread["high"])))
    parts.append(headline(entry, lang) + ".")
    return " ".join(parts)


def figure_html(png: bytes, alt: str) -> str:
    """The figure as an embedded PNG with its text alternative (the verdict above already says it in words)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<div class="result-figure"><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></div>'



def report_link_html(report: str, filename: str, lang: str) -> str:
    """A download link holding the whole report: made in the browser, nothing of it is stored on the server."""
    data = base64.b64encode(report.encode("utf-8")).decode("ascii")
    return (f'<a class="report-link" id="report-link" download="{esc(filename)}" '
            f'href="data:text/html;charset=utf-8;base64,{data}">{esc(say(lang, "report_download"))}</a>')


def history_card(entry: dict[str, Any], lang: str) -> str:
    """One result of the history: recording, time, headline and its score or reason, in a few lines."""
    kind = entry["outcome"]
    detail = ""
    if kind in SCORED:
        detail = say(lang, "history_score", score=pct(entry["covid_probability"]))
    elif kind == "retake":
        detail = " ".join(say(lang, f"reason_{p}") for p in entry["problems"])
    elif kind == "error":
        detail = entry["error"]
    return (f'<li class="history-card verdict-{kind}"><span class="history-name">{esc(entry.get("name", ""))}</span>'
            f'<span class="history-time">{esc(entry.get("analysed") or entry.get("utc", ""))}</span>'
            f"<strong>{esc(headline(entry, lang))}</strong><span>{esc(detail)}</span></li>")


def history_html(entries: list[dict[str, Any]], lang: str) -> str:
    """The results of this browser, newest first, side by side (they wrap on a phone)."""
    if not entries:
        return f'<p class="history-empty">{esc(say(lang, "history_empty"))}</p>'
    cards = "".join(history_card(entry, lang) for entry in entries[:HISTORY_SIZE])
    return f'<ol class="history" aria-label="{esc(say(lang, "history_heading"))}">{cards}</ol>'

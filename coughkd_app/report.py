"""The downloadable report of one result: one self-contained HTML file (its figure an embedded PNG, its style inline,
nothing fetched) with the verdict, the full numbers, the figure, the operating point at several prevalences, the
model, the dates and the disclaimer, in the page's language.
"""
from __future__ import annotations

import html
import re
from typing import Any

from .interpret import predictive_values
from .text import decimal, say
from .view import SCORED, esc, figure_html, pct, verdict_html

PREVALENCES = (1.0, 2.0, 5.0, 10.0, 20.0)  # percent: the table's rows, with the page's own value added
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, sans-serif;
       max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; background: #fff; line-height: 1.5; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.3rem; margin: 0.3rem 0; }
.verdict { border-left: 6px solid #5b6b7a; padding: 0.2rem 1rem; }
.verdict-positive { border-color: #b3261e; } .verdict-negative { border-color: #1e7b34; }
.verdict-retake { border-color: #8a5a00; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; } td, th { border: 1px solid #999; padding: 0.2rem 0.5rem; text-align: right; }
.disclaimer { border: 1px solid #999; padding: 0.5rem 1rem; background: #f6f6f6; }
"""


def filename(entry: dict[str, Any]) -> str:
    """coughkd-report-<recording>-<UTC date and time>.html, with only safe characters."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", entry.get("name", "recording").rsplit(".", 1)[0])[:40] or "recording"
    stamp = re.sub(r"[^0-9]", "", entry.get("utc", ""))
    return f"coughkd-report-{stem}-{stamp}.html"


def prevalence_table(entry: dict[str, Any], prevalence: float, lang: str) -> str:
    """PPV and NPV at a few prevalences (and the page's): the report cannot follow the page's slider."""
    fig = entry["figures"]
    head = "".join(f"<th>{esc(c)}</th>" for c in say(lang, "report_prevalence_columns").split("|"))
    rows = []
    for p in sorted({*PREVALENCES, prevalence}):
        ppv, npv = predictive_values(fig["sensitivity"], fig["specificity"], p / 100)
        if ppv is None or npv is None:
            continue
        rows.append(f"<tr><td>{decimal(lang, p)}</td><td>{pct(ppv)}</td><td>{pct(npv)}</td></tr>")
    return (f'<h3>{esc(say(lang, "report_prevalence"))}</h3><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def report_html(entry: dict[str, Any], png: bytes | None, alt: str, prevalence: float, lang: str,
                disclaimer_html: str, manifest: dict[str, Any]) -> str:
    """The report as one HTML document; `disclaimer_html` is the page's disclaimer, already HTML."""
    verdict = verdict_html(entry, prevalence, lang).replace('<details class="verdict-numbers">',
                                                            '<details class="verdict-numbers" open>')
    parts = [f'<!DOCTYPE html><html lang="{esc(lang)}"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(say(lang, 'report_title'))}: {esc(entry.get('name', ''))}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{esc(say(lang, 'report_title'))}</h1>", verdict]
    if entry["outcome"] in SCORED:
        parts.append(prevalence_table(entry, prevalence, lang))
    if png is not None:
        parts.append(figure_html(png, alt))
    analysed = say(lang, "report_analysed", time=entry.get("analysed") or entry["utc"], utc=entry["utc"])
    model = say(lang, "report_model", model=manifest.get("model_id", entry.get("model", "")),
                created=manifest.get("created", "?"))
    parts += [f"<p>{esc(analysed)}<br>{esc(model)}</p>", f'<div class="disclaimer">{disclaimer_html}</div>',
              "</body></html>"]
    return "".join(parts)


def markdown_bold(text: str) -> str:
    """The disclaimer's one kind of markup (**bold**) as HTML, the rest escaped."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text, quote=False))

"""One result for a person: the outcome, the channel's figures as counts out of 100, predictive values, the spread
of per-cough scores, the verdict's HTML (escaped), the history, and the self-contained report."""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pytest

from coughkd import SOUND_TYPES, EventScore, Prediction
from coughkd_app import interpret, page, report, view
from coughkd_app.quality import Quality
from coughkd_app.text import LANGUAGES, say

REPO = Path(__file__).resolve().parents[1]
# The shipped manifest's operating point, as the lead's export writes it (validation set, both channels).
OPERATING_POINT = {
    "threshold": 0.5785, "sensitivity": 0.6765, "specificity": 0.9048, "tp": 46, "fn": 22, "tn": 57, "fp": 6,
    "source": "validation",
    "per_source": {
        "call-center": {"threshold": 0.5785, "sensitivity": 0.7333, "specificity": 0.7917, "tp": 44, "fn": 16,
                        "tn": 19, "fp": 5},
        "telegram": {"threshold": 0.5785, "sensitivity": 0.25, "specificity": 0.9744, "tp": 2, "fn": 6, "tn": 38,
                     "fp": 1},
    },
}
MANIFEST = {"model_id": "test-model", "created": "2026-11-29T18:06:24+00:00"}
GOOD = Quality(False, 3.0, 30.0, 2, 0.8, [])


def prediction(sound_type: str = "cough", covid: float = 0.7, scores: tuple[float, ...] = (0.6, 0.8),
               threshold: float = 0.5785) -> Prediction:
    """A Prediction as the runtime makes them: no COVID-19 score anywhere unless it is a cough."""
    is_cough = sound_type == "cough"
    probabilities = {kind: 0.07 for kind in SOUND_TYPES} | {sound_type: 0.79}
    events = [EventScore(0.2 + i, 0.5 + i, sound_type, 0.8, s if is_cough else None) for i, s in enumerate(scores)]
    return Prediction(covid if is_cough else None, covid >= threshold if is_cough else None, probabilities["cough"],
                      is_cough, sound_type, probabilities, threshold, events, 12.3, "test-model", 2.5)


def entry(p: Prediction | None = None, quality: Quality | None = GOOD, rate: int = 48000,
          name: str = "cough.webm") -> dict:
    p = p or prediction()
    return interpret.summarise(p, quality if p.is_cough else None, rate, name, OPERATING_POINT, "10:42")


def plain(markup: str) -> str:
    """The text a person reads in a piece of HTML."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def test_wilson_interval_matches_the_textbook() -> None:
    low, high = interpret.wilson(2, 8)
    assert (round(low, 3), round(high, 3)) == (0.071, 0.591)
    assert interpret.wilson(0, 0) == (0.0, 1.0)


def test_predictive_values() -> None:
    ppv, npv = interpret.predictive_values(0.25, 0.9744, 0.05)
    assert ppv == pytest.approx(0.0125 / (0.0125 + 0.0256 * 0.95), rel=1e-3) and round(ppv, 2) == 0.34
    assert round(npv, 3) == 0.961
    assert interpret.predictive_values(0.0, 1.0, 0.05)[0] is None, "nobody is flagged: no PPV"


@pytest.mark.parametrize(("rate", "channel", "source"), [(8000, "telephone", "call-center"),
                                                         (48000, "app", "telegram"), (16000, "app", "telegram")])
def test_figures_are_the_channel_of_the_input(rate: int, channel: str, source: str) -> None:
    e = entry(rate=rate)
    assert e["channel"] == channel and e["figures"]["source"] == source
    assert e["figures"]["tp"] == OPERATING_POINT["per_source"][source]["tp"]


def test_figures_fall_back_to_the_pooled_ones_without_per_source() -> None:
    pooled = {"sensitivity": 0.8, "specificity": 0.6, "source": "validation"}
    fig = interpret.figures(pooled, "telegram")
    assert fig == {"source": "pooled", "sensitivity": 0.8, "specificity": 0.6}


@pytest.mark.parametrize(("p", "quality", "outcome"), [
    (prediction(covid=0.7), GOOD, "positive"),
    (prediction(covid=0.3), GOOD, "negative"),
    (prediction(covid=0.7), Quality(True, 1.5, 30.0, 2, 0.8, ["clipped"]), "retake"),
    (prediction("speech"), None, "not_cough"),
])
def test_outcome(p: Prediction, quality: Quality | None, outcome: str) -> None:
    assert interpret.outcome(p, quality) == outcome


def test_spread_of_per_cough_scores() -> None:
    assert interpret.cough_spread(prediction(scores=(0.17, 0.75, 0.4))) == {
        "count": 3, "low": 0.17, "high": 0.75, "mixed": True}
    assert interpret.cough_spread(prediction(scores=(0.1, 0.2)))["mixed"] is False
    assert interpret.cough_spread(prediction(scores=(0.3,))) is None, "one cough has no spread"


def test_entry_is_plain_json_and_holds_no_audio() -> None:
    e = entry()
    assert json.loads(json.dumps(e)) == e, "the browser's store gives back what it was given"
    assert isinstance(e["events"], int) and not any(isinstance(v, list) and len(v) > 10 for v in e.values())


def test_verdict_of_a_telegram_cough_speaks_plainly_with_its_channels_figures() -> None:
    text = plain(view.verdict_html(entry(prediction(covid=0.3)), 5.0, "en"))
    assert text.startswith("Result for cough.webm · 2.5 s · 10:42 No sign of COVID-19 found in this cough")
    assert "this does not rule COVID-19 out" in text
    assert "Of 100 people with COVID-19 who record like this, about 25 are flagged; of 100 people without it, " \
           "about 3 are flagged." in text
    assert "phone app or a browser (the Telegram recordings" in text
    assert "only 8 recordings of people with COVID-19 and 39 of people without" in text and "from about 7 to 59" in text
    assert "If 5 in 100 people around you have COVID-19" in text and "about 34 in 100 really have it" in text
    assert "about 96 in 100 really do not" in text
    assert "Your 2 coughs scored from 60% to 80% one by one" in text
    assert "Model score: 30% (flagged at 58% or more)." in text, "the full numbers are one click away"


def test_verdict_of_a_telephone_cough_uses_the_call_centre_figures() -> None:
    text = plain(view.verdict_html(entry(prediction(covid=0.7), rate=8000), 10.0, "en"))
    assert text.startswith("Result for cough.webm") and "Possible sign of COVID-19 in this cough" in text
    assert "take a COVID-19 test" in text and "about 73 are flagged; of 100 people without it, about 21" in text
    assert "telephone recordings, 8 kHz or less" in text and "If 10 in 100 people" in text


def test_predictive_values_follow_the_prevalence() -> None:
    e = entry()
    assert "about 34 in 100 really have it" in plain(view.verdict_html(e, 5.0, "en"))
    assert "about 52 in 100 really have it" in plain(view.verdict_html(e, 10.0, "en"))


def test_mixed_coughs_are_said_to_make_the_result_less_certain() -> None:
    text = plain(view.verdict_html(entry(prediction(scores=(0.17, 0.75))), 5.0, "en"))
    assert "from 17% to 75%" in text and "less certain" in text


def test_retake_names_each_reason_and_shows_no_result() -> None:
    bad = Quality(True, 1.5, 5.0, 0, 0.0, ["clipped", "noisy", "no_cough"])
    text = plain(view.verdict_html(entry(quality=bad), 5.0, "en"))
    assert "No result: please record again" in text
    for problem in bad.problems:
        assert say("en", f"reason_{problem}") in text and say("en", f"tip_{problem}") in text
    assert "How sure" not in text and "Possible sign" not in text and "No sign" not in text
    assert "Model score: 70%. Not a result" in text


@pytest.mark.parametrize("sound_type", ["speech", "breathing", "other"])
def test_not_a_cough_has_no_covid_number(sound_type: str) -> None:
    e = entry(prediction(sound_type))
    text = plain(view.verdict_html(e, 5.0, "en"))
    assert say("en", "headline_speech" if sound_type == "speech" else f"headline_{sound_type}") in text
    assert "only for coughs" in text and "Model score" not in text and "flagged" not in text
    assert not re.search(r"\d+% \(flagged", text)


def test_file_names_are_escaped_everywhere() -> None:
    evil = '<img src=x onerror="alert(1)">.wav'
    e = entry(name=evil)
    for markup in (view.verdict_html(e, 5.0, "en"), view.history_html([e], "en"),
                   view.figure_html(b"png", view.alt_text(e, "en"))):
        assert "<img src=x" not in markup and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in markup


def test_alt_text_says_what_the_figure_shows_and_the_result() -> None:
    alt = view.alt_text(entry(prediction(covid=0.3, scores=(0.17, 0.75))), "en")
    assert alt == ("Waveform and spectrogram of cough.webm, 2.5 s long, with 2 sound events shaded. 2 of them are "
                   "coughs, scoring 17% to 75% each. No sign of COVID-19 found in this cough.")


def test_a_recording_to_record_again_shows_no_score_anywhere_but_the_full_numbers() -> None:
    e = entry(prediction(scores=(0.17, 0.75)), quality=Quality(True, 1.5, 30.0, 2, 0.8, ["clipped"]))
    assert "%" not in view.alt_text(e, "en") and "%" not in plain(view.history_html([e], "en"))
    verdict = plain(view.verdict_html(e, 5.0, "en"))
    assert "%" not in verdict.split("Full numbers")[0]


def test_history_lists_results_side_by_side_newest_first() -> None:
    first, second = entry(prediction(covid=0.3), name="first.wav"), entry(prediction(covid=0.8), name="second.wav")
    store = page.remember(page.remember(None, first), second)
    assert store["current"] == second and [e["name"] for e in store["entries"]] == ["second.wav", "first.wav"]
    text = plain(view.history_html(store["entries"], "en"))
    assert text.index("second.wav") < text.index("first.wav")
    assert "score 80%" in text and "score 30%" in text
    many = store
    for i in range(view.HISTORY_SIZE + 3):
        many = page.remember(many, entry(name=f"{i}.wav"))
    assert len(many["entries"]) == view.HISTORY_SIZE


@pytest.mark.parametrize("state", [None, "junk", {"entries": "junk"}, {"entries": [1, "x"], "current": 3}])
def test_a_malformed_browser_store_starts_afresh(state: object) -> None:
    assert page.stored(state) == ([], None)


@pytest.mark.parametrize(("context", "expected"), [
    ('{"lang": "ru", "time": "1 дек., 10:42"}', ("ru", "1 дек., 10:42")),
    ('{"lang": "hi-IN"}', ("hi", "")), ("not json", ("en", "")), ("[1]", ("en", "")), (None, ("en", "")),
])
def test_page_context(context: str | None, expected: tuple[str, str]) -> None:
    assert page.read_context(context) == expected


def test_microphone_recordings_are_named_as_such() -> None:
    assert page.display_name("/tmp/x/audio.wav", "en") == "your microphone recording"
    assert page.display_name("/tmp/x/cough.webm", "es") == "cough.webm"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_report_is_one_self_contained_file(lang: str) -> None:
    e = entry(prediction(covid=0.3))
    alt = view.alt_text(e, lang)
    disclaimer = report.markdown_bold(say(lang, "disclaimer"))
    document = report.report_html(e, b"\x89PNG fake", alt, 5.0, lang, disclaimer, MANIFEST)
    assert document.startswith("<!DOCTYPE html>") and f'<html lang="{lang}">' in document
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", document), "nothing is fetched"
    assert 'src="data:image/png;base64,' in document and f'alt="{html.escape(alt)}"' in document
    text = plain(document)
    assert view.headline(e, lang) in text and "test-model" in text and "2026-11-29" in text
    assert e["utc"] in text and "10:42" in text
    assert plain(disclaimer) in text and "<strong>" in disclaimer
    assert "<details class=\"verdict-numbers\" open>" in document, "the full numbers are open in the report"
    assert text.count("%") > 5 and say(lang, "report_prevalence") in text


def test_report_name_is_safe_and_dated() -> None:
    e = entry(name="../my cough (1).webm")
    name = report.filename(e)
    assert re.fullmatch(r"coughkd-report-[A-Za-z0-9_-]+-\d{14}\.html", name) and "/" not in name


def test_report_link_carries_the_whole_report() -> None:
    link = view.report_link_html("<html>é</html>", "r.html", "en")
    data = re.search(r'href="data:text/html;charset=utf-8;base64,([^"]+)"', link).group(1)
    assert base64.b64decode(data).decode("utf-8") == "<html>é</html>" and 'download="r.html"' in link

"""The Gradio app: every kind of bad input ends as a message, never a crash; the API returns the CLI's JSON."""
from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

import app
import coughkd
from coughkd import SOUND_TYPES, EventScore, ModelError, Prediction
from coughkd.audio import load_audio
from coughkd_app import figure, page, text, view
from tests.model_fixture import make_model_dir
from tests.test_app_result import OPERATING_POINT

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "assets" / "examples"
CALL_CENTRE = EXAMPLES / "cough_call_centre.mp3"
TELEGRAM = EXAMPLES / "cough_telegram_1.mp3"
SPEECH = EXAMPLES / "speech_not_cough.mp3"
API_KEYS = {"filename", "covid_probability", "covid_positive", "cough_probability", "is_cough", "sound_type",
            "sound_probabilities", "threshold", "events", "latency_ms", "model", "duration_s", "warnings"}


def shipped_model() -> Path | None:
    """The trained model if one exported for this runtime is there (a runtime change can leave it to be rebuilt)."""
    shipped = REPO / "assets" / "model"
    try:
        coughkd.load(shipped)
    except ModelError:
        return None
    return shipped


def shipped_or_fixture_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model when it can run here, else the small fixture model (so the tests run before training)."""
    return shipped_model() or make_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> coughkd.CoughModel:
    """The fixture model with its gate as built: the example clips do not sound like coughs to it."""
    return coughkd.load(make_model_dir(tmp_path_factory.mktemp("fixture_model")))


@pytest.fixture(scope="module")
def cough_model(tmp_path_factory: pytest.TempPathFactory) -> coughkd.CoughModel:
    """The fixture model with its gate open: everything is a cough, so every clip gets a COVID-19 score."""
    return coughkd.load(make_model_dir(tmp_path_factory.mktemp("cough_model"), cough_threshold=0.0))


def handle(model: coughkd.CoughModel, path: str | Path | None, lang: str = "en") -> tuple[dict, page.Shown]:
    """What one press of Analyse does, in the one request it makes: score the file, then read, word and draw it."""
    path = None if path is None else str(path)
    result, prediction = app.analyse(model, path)
    shown = page.present(prediction, result.get("error"), path, OPERATING_POINT, model.manifest, 5.0, lang, "10:42")
    return result, shown


def plain(markup: str) -> str:
    """The text a person reads in a piece of the page's HTML."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def coughs(seconds: float = 2.0, rate: int = 16000, gain: float = 0.5, seed: int = 0) -> np.ndarray:
    """Three decaying noise bursts over a quiet floor: loud, short events like coughs."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = 0.003 * rng.standard_normal(n)
    for start in (0.2, 0.8, 1.4):
        i, length = int(start * rate), int(0.25 * rate)
        x[i:i + length] += gain * rng.standard_normal(length) * np.exp(-np.linspace(0, 6, length))
    return x.astype(np.float32)


def assert_consistent(result: dict, shown: page.Shown) -> None:
    """A scored clip: CLI-shaped JSON, a verdict naming the recording, a figure with its text alternative, a report;
    COVID-19 numbers only for coughs."""
    assert set(result) == API_KEYS
    assert 0.0 <= result["cough_probability"] <= 1.0 and result["sound_type"] in SOUND_TYPES
    assert result["events"] and all(len(e) == 3 and e[0] < e[1] for e in result["events"])
    assert result["latency_ms"] > 0
    verdict = plain(shown.verdict)
    assert verdict.startswith(f"Result for {result['filename']} · ") and f"model {result['model']}" in verdict
    assert 'src="data:image/png;base64,' in shown.figure and f"of {result['filename']}, " in shown.figure
    assert shown.report.startswith('<a class="report-link"') and shown.entry["name"] == result["filename"]
    if result["is_cough"]:
        assert 0.0 <= result["covid_probability"] <= 1.0
        assert shown.entry["outcome"] in ("positive", "negative", "retake")
    else:
        assert result["covid_probability"] is None and all(e[2] is None for e in result["events"])
        assert shown.entry["outcome"] == "not_cough" and "only for coughs" in verdict
        assert "Model score" not in verdict and "flagged" not in verdict


@pytest.mark.parametrize("gate", ["shut", "open"])
def test_scores_an_example_clip(model: coughkd.CoughModel, cough_model: coughkd.CoughModel, gate: str) -> None:
    result, shown = handle(cough_model if gate == "open" else model, TELEGRAM)
    assert_consistent(result, shown)
    assert result["filename"] == TELEGRAM.name and result["is_cough"] == (gate == "open")


def test_telephone_audio_gets_the_call_centre_figures(cough_model: coughkd.CoughModel) -> None:
    result, shown = handle(cough_model, CALL_CENTRE)
    assert_consistent(result, shown)
    assert shown.entry["channel"] == "telephone" and "narrow-band audio (8000 Hz" in plain(shown.verdict)
    if shown.entry["outcome"] in ("positive", "negative"):
        assert "about 73 are flagged; of 100 people without it, about 21" in plain(shown.verdict)


def test_heavily_clipped_cough_is_no_result_but_a_request_to_record_again(cough_model: coughkd.CoughModel,
                                                                          tmp_path: Path) -> None:
    path = tmp_path / "clipped.wav"
    sf.write(path, np.clip(coughs(gain=20.0), -1.0, 1.0), 16000)
    result, shown = handle(cough_model, path)
    assert_consistent(result, shown)
    assert result["covid_probability"] is not None, "the API still reports the score, as the CLI does"
    assert shown.entry["outcome"] == "retake" and "clipped" in shown.entry["problems"]
    assert "%" not in re.search(r'alt="([^"]*)"', shown.figure).group(1), "no per-cough score in a non-result"
    assert plain(shown.verdict).startswith("Result for clipped.wav · 2 s · 10:42 No result: please record again")


def test_wav_named_txt_is_decoded_by_content(model: coughkd.CoughModel, tmp_path: Path) -> None:
    path = tmp_path / "cough.txt"
    sf.write(path, coughs(), 16000, format="WAV")
    result, shown = handle(model, path)
    assert_consistent(result, shown)


@pytest.mark.parametrize("lang", ["ru", "es", "hi"])
def test_the_verdict_is_in_the_pages_language(cough_model: coughkd.CoughModel, lang: str) -> None:
    _, shown = handle(cough_model, TELEGRAM, lang)
    assert text.say(lang, "result_for", name=TELEGRAM.name, seconds="", time="").split()[0] in plain(shown.verdict)
    assert view.headline(shown.entry, lang) in plain(shown.verdict) and f'lang="{lang}"' in shown.verdict


def _write_case(case: str, tmp_path: Path) -> Path | None:
    if case == "nothing":
        return None
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "silent":
        sf.write(path, np.zeros(32000, np.float32), 16000)
    elif case == "too_short":
        sf.write(path, coughs()[:3200], 16000)
    elif case == "too_long":
        sf.write(path, np.full(int(10.5 * 60 * 8000), 1000, np.int16), 8000, subtype="PCM_16")
    elif case in ("nan", "inf"):
        x = coughs()
        x[100] = np.nan if case == "nan" else np.inf
        sf.write(path, x, 16000, subtype="FLOAT")
    elif case == "truncated_wav":
        sf.write(path, coughs(), 16000)
        path.write_bytes(path.read_bytes()[:20000])
    elif case == "truncated_mp3":
        path = tmp_path / "truncated.mp3"
        path.write_bytes(TELEGRAM.read_bytes()[:261])
    elif case == "text_named_wav":
        path.write_text("this is not audio\n" * 50)
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("nothing", "No audio"),
    ("empty", "empty"),
    ("silent", "silent"),
    ("too_short", "at least 0.3 s"),
    ("too_long", "longer than 10 minutes"),
    ("nan", "NaN or infinity"),
    ("inf", "NaN or infinity"),
    ("truncated_wav", "truncated"),
    ("truncated_mp3", "not a readable audio file"),
    ("text_named_wav", "not a readable audio file"),
])
def test_bad_input_gives_a_clear_message(model: coughkd.CoughModel, tmp_path: Path, case: str, message: str) -> None:
    result, shown = handle(model, _write_case(case, tmp_path))
    assert set(result) == {"error"} and message in result["error"]
    assert plain(shown.verdict).startswith(("Could not analyse this audio", "Result for"))
    assert "Could not analyse this audio" in plain(shown.verdict) and result["error"] in plain(shown.verdict)
    assert shown.figure == "" and shown.report == "" and shown.entry is None


def test_unexpected_failure_becomes_a_message(tmp_path: Path) -> None:
    class Broken:
        def predict(self, audio: str) -> Prediction:
            raise RuntimeError("inference device lost")

    result, prediction = app.analyse(Broken(), str(TELEGRAM))
    assert prediction is None and "RuntimeError: inference device lost" in result["error"]


def test_the_model_gets_the_file_path_so_latency_means_what_the_cli_says(model: coughkd.CoughModel) -> None:
    """latency_ms covers decoding only if the model decodes: the app must hand it the path, not decoded audio."""
    given = []

    class Recording:
        def predict(self, audio: object) -> Prediction:
            given.append(audio)
            return model.predict(audio)

    result, _ = app.analyse(Recording(), str(TELEGRAM))
    assert given == [str(TELEGRAM)] and result["latency_ms"] > 0


def test_page_keeps_no_per_session_state_on_the_server(model: coughkd.CoughModel) -> None:
    """One request gives verdict, figure, report and JSON, so nothing (decoded audio least of all) waits in a
    gr.State; what the page remembers is text in the browser's own storage."""
    demo = app.build_demo(model)
    assert not [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    [store] = [b for b in demo.blocks.values() if isinstance(b, gr.BrowserState)]
    assert store.default_value == app.EMPTY_STORE
    assert [fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"] == ["predict"]
    scoring = {fn.name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values()
               if fn.concurrency_id == "score"}
    assert scoring == {"page_endpoint": ("score", app.WORKERS), "predict_endpoint": ("score", app.WORKERS)}, \
        "page and API share one pool of workers"
    quick = {fn.name for fn in demo.fns.values() if fn.concurrency_id != "score"}
    assert quick <= {"load_example", "show_stored", "recording_changed", "prevalence_changed", "clear_history", None}


def test_figure_labels_coughs_with_their_score_and_other_events_with_their_type(tmp_path: Path) -> None:
    path = tmp_path / "c.wav"
    sf.write(path, coughs(), 16000)
    prediction = Prediction(0.61, True, 0.9, True, "cough", dict.fromkeys(SOUND_TYPES, 0.25), 0.5,
                            [EventScore(0.2, 0.5, "cough", 0.9, 0.61), EventScore(0.8, 1.0, "speech", 0.1, None)],
                            1.0, "test", 2.0)
    fig = figure.draw(load_audio(str(path)), prediction, "es")
    assert [t.get_text() for t in fig.axes[0].texts] == ["61%", "voz"]
    assert fig.axes[0].get_title().replace("\n", " ") == text.say("es", "figure_title_cough"), "wrapped to fit"
    assert figure.png(fig).startswith(b"\x89PNG")
    assert figure.draw(load_audio(str(path)), prediction, "hi").axes[1].get_xlabel() == "time (s)", \
        "DejaVu Sans has no Devanagari: a Hindi page gets an English figure"
    unscored = figure.draw(load_audio(str(path)), prediction, "en", scores=False)
    assert [t.get_text() for t in unscored.axes[0].texts] == ["cough", "speech"]
    assert unscored.axes[0].get_title().replace("\n", " ") == text.say("en", "figure_title_other")


def test_figure_of_many_events_stays_unlabelled(tmp_path: Path) -> None:
    path = tmp_path / "c.wav"
    sf.write(path, coughs(), 16000)
    events = [EventScore(0.01 * i, 0.01 * i + 0.005, "cough", 0.9, 0.5) for i in range(figure.MAX_LABELLED_EVENTS + 1)]
    prediction = Prediction(0.5, False, 0.9, True, "cough", {}, 0.5, events, 1.0, "test", 2.0)
    fig = figure.draw(load_audio(str(path)), prediction)
    assert not fig.axes[0].texts and "13 sound events" in fig.axes[0].get_title()


def test_command_line_defaults_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = app.parse_args([])
    assert (args.host, args.port, args.share, args.model, args.browser) == ("127.0.0.1", 7860, False, None, True)
    args = app.parse_args(["--host", "0.0.0.0", "--port", "0", "--share", "--model", "m", "--no-browser"])
    assert (args.host, args.port, args.share, args.model, args.browser) == ("0.0.0.0", 0, True, Path("m"), False)


def test_host_and_port_defaults_follow_the_gradio_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    args = app.parse_args([])
    assert (args.host, args.port) == ("0.0.0.0", 7861)
    assert app.parse_args(["--port", "0"]).port == 0


def test_main_refuses_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["--model", str(tmp_path / "no_model"), "--no-browser"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_privacy_note_follows_share(model: coughkd.CoughModel) -> None:
    def keys(demo: object) -> str:
        return " ".join(str(b.value) for b in demo.blocks.values() if b.get_block_name() == "markdown")

    assert str(app.I18N("notice_local")) in keys(app.build_demo(model))
    assert str(app.I18N("notice_shared")) in keys(app.build_demo(model, share=True))
    assert "public Gradio link" in app.I18N.translations_dict["en"]["notice_shared"]
    assert "public Gradio link" not in app.I18N.translations_dict["en"]["notice_local"]


def test_privacy_note_states_the_deletion_the_app_performs(model: coughkd.CoughModel) -> None:
    """The note's promise is the cache settings and the exit/start-up clean-up, not an aspiration; the report is
    made in the browser (a data: link), so the server keeps no copy of it."""
    demo = app.build_demo(model)
    frequency, age = demo.delete_cache
    kept = text.say("en", "kept")
    assert frequency == age == 3600 and "an hour old" in kept and "within two hours" in kept
    assert "when it stops" in kept and "next start if it was killed" in kept
    assert "report is made in your browser" in kept and "Clear history" in kept
    assert app.launch_options()["run_history"] is False, "Gradio's run history would keep every upload's link"


def test_a_busy_port_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, str(REPO / "app.py"), "--no-browser", "--port", str(port),
                               "--model", str(tmp_path / "never_loaded")],
                              check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: cannot serve on 127.0.0.1:{port}: ") and "--port 0 picks a free one" in line


@pytest.mark.slow
def test_api_endpoint_over_http(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    demo = app.build_demo(coughkd.load(shipped_or_fixture_model(tmp_path_factory)))
    try:
        client = Client(app.launch(demo, port=0), verbose=False)
        result = client.predict(handle_file(str(TELEGRAM)), api_name="/predict")
        assert set(result) == API_KEYS and result["filename"] == TELEGRAM.name
        assert isinstance(result["events"], list) and isinstance(result["sound_probabilities"], dict)
        bad = tmp_path / "bad.wav"
        bad.write_text("not audio")
        assert "not a readable audio file" in client.predict(handle_file(str(bad)), api_name="/predict")["error"]
        jobs = [client.submit(handle_file(str(p)), api_name="/predict") for p in (TELEGRAM, CALL_CENTRE, bad)]
        assert [sorted(job.result()) for job in jobs] == [sorted(API_KEYS), sorted(API_KEYS), ["error"]]
        huge = tmp_path / "huge.wav"
        with huge.open("wb") as f:
            f.truncate(51 * 1024 * 1024)
        with pytest.raises(ValueError, match="maximum file size"):
            client.predict(handle_file(str(huge)), api_name="/predict")
    finally:
        demo.close()

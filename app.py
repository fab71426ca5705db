"""coughkd demo: record or upload a cough and see the student model's COVID-19 score.

A thin Gradio front end over `coughkd`: every number shown comes from `CoughModel.predict` on the uploaded file, and
the figure's data from `coughkd.audio.load_audio` and `coughkd.features.log_mel` in the same request, so nothing
decoded outlives the answer. How it runs as a process (its temp folder, signals, the port, the lane for large
uploads) is in serving.py. Run `python app.py --help`.
"""
from __future__ import annotations

import coughkd  # first: it switches telemetry off (coughkd.privacy) before gradio and huggingface_hub read the switches

# isort: split
import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

import serving
from coughkd import AudioError, EventScore, ModelError, Prediction
from coughkd.audio import Audio, load_audio
from coughkd.features import HOP_LENGTH, N_MELS, log_mel
from serving import Busy, LargeUploadLane

IMPORTED = time.perf_counter()  # start-up is measured from here: imports are the interpreter's cost, not ours
ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "assets" / "examples"
MAX_FILE_SIZE = "50mb"  # Gradio refuses larger uploads before storing them
LARGE_UPLOAD_BYTES = 8 * 1024 * 1024  # over this (over 4 minutes of 16 kHz WAV), uploads take turns in one lane
LARGE_LANE = {"running": 1, "waiting": 1}
WORKERS = 4  # scoring threads: the large lane can hold at most two, so two are always left for everyone else
QUEUE_SIZE = 32  # requests waiting beyond the workers; more are refused with Gradio's "currently busy" message
CACHE_LIFETIME_S = 3600  # uploads and recordings are deleted from the app's temp folder after an hour (checked hourly)
PLOT_POINTS = 4000  # waveform drawn as a min/max envelope of this many columns, so 10-minute clips plot fast
MAX_LABELLED_EVENTS = 30  # beyond this the labels overlap; the scores stay in the JSON result

DISCLAIMER = (
    "**Research demo — not a medical device and not a diagnosis.** The score comes from a small model trained "
    "on a few hundred crowd-sourced recordings; it has not been clinically validated. If you feel unwell or "
    "think you have COVID-19, take a test and follow your health service's advice."
)
KEPT = ("The app keeps the uploaded file in a temporary folder of its own, deletes it once it is an hour old "
        "(checked hourly, so within two hours) and deletes the whole folder when it stops, or at its next start if it "
        "was killed; nothing decoded from your audio is kept once the result is shown.")
PRIVACY = {
    False: f"Your audio is analysed on the computer running this app and sent nowhere else. {KEPT}",
    True: "This app is shared through a public Gradio link: your audio travels through Gradio's relay to the "
          f"computer running this app, is analysed there and sent nowhere else. {KEPT}",
}
NO_AUDIO = "No audio: record with the microphone or upload a file, then press Analyse."
HEARD = {  # the headline for audio that is not a cough, by what the model heard (coughkd.SOUND_TYPES but cough)
    "speech": "This sounds like speech, not a cough",
    "breathing": "This sounds like breathing, not a cough",
    "other": "This does not sound like a cough",
}
RECORD_AGAIN = "Record two or three coughs close to the microphone, with little background noise."
BUSY = ("Another large recording is being analysed right now. Try again in a minute, or upload a shorter clip "
        f"(files up to {LARGE_UPLOAD_BYTES // 2**20} MB never wait for this).")

log = logging.getLogger("coughkd.app")


def result_json(prediction: Prediction, filename: str) -> dict[str, Any]:
    """The API result: the CLI's `--json` object, with `filename` in place of `path`.

    `path` is left out because gradio_client treats any result dict holding a "path" key as a file to download.
    """
    return {"filename": filename, **prediction.to_json()}


def analyse(model: coughkd.CoughModel, path: str | None) -> tuple[dict[str, Any], Prediction | None]:
    """Score one file; unusable input becomes {"error": message} so neither the UI nor the API ever crashes.

    The file path goes to the model, so `latency_ms` is what the CLI reports too: decoding, features and inference.
    """
    if not path:
        return {"error": NO_AUDIO}, None
    try:
        prediction = model.predict(path)
    except AudioError as err:
        return {"error": str(err)}, None
    except Exception as err:
        log.exception("prediction failed for %s", path)
        return {"error": f"Could not analyse this audio ({type(err).__name__}: {err})."}, None
    return result_json(prediction, Path(path).name), prediction


def channel_breakdown(per_source: dict[str, dict[str, Any]]) -> str:
    """The same threshold per recording channel of that set, with counts: one threshold can catch most positives on
    one channel and few on another, and the pooled figures hide it."""
    if not per_source:
        return ""
    parts = [f"{source}, {p['tp']} of {p['tp'] + p['fn']} positives caught and {p['tn']} of {p['tn'] + p['fp']} "
             f"negatives cleared" for source, p in per_source.items()]
    return " By recording channel: " + "; ".join(parts) + "."


def heard(probabilities: dict[str, float]) -> str:
    """What the sound-type gate heard, likeliest first: "speech 81%, cough 9%, ..."."""
    ranked = sorted(probabilities.items(), key=lambda item: -item[1])
    return ", ".join(f"{kind} {p:.0%}" for kind, p in ranked)


def verdict_markdown(prediction: Prediction, operating_point: dict[str, Any]) -> str:
    """The headline: a COVID-19 score with its operating point for a cough; for anything else what it sounds like,
    and no COVID-19 number at all (the runtime gives none: the score means nothing for audio that is not a cough)."""
    n = len(prediction.events)
    details = (
        f"{n} sound event{'s' if n != 1 else ''} in {prediction.duration_s:.1f} s of audio · "
        f"decoding and inference {prediction.latency_ms:.0f} ms · model `{prediction.model}`"
    )
    if not prediction.is_cough:
        paragraphs = [
            f"### {HEARD.get(prediction.sound_type, HEARD['other'])}",
            (f"What the model heard: {heard(prediction.sound_probabilities)}. It gives a COVID-19 score only for "
             f"coughs. {RECORD_AGAIN}"),
        ]
    else:
        outcome = "above" if prediction.covid_positive else "below"
        sensitivity, specificity = operating_point["sensitivity"], operating_point["specificity"]
        paragraphs = [
            (f"### COVID-19 probability: {prediction.covid_probability:.0%} ({outcome} the threshold of "
             f"{prediction.threshold:.0%})"),
            f"At this threshold the model had sensitivity {sensitivity:.0%} and specificity {specificity:.0%} "
            f"on its {operating_point['source']} set: it missed {1 - sensitivity:.0%} of "
            f"COVID-19-positive recordings and flagged {1 - specificity:.0%} of negative ones."
            + channel_breakdown(operating_point.get("per_source", {})),
        ]
    paragraphs.append(details)
    if prediction.warnings:
        paragraphs.append("\n".join(f"- ⚠️ {w}" for w in prediction.warnings))
    return "\n\n".join(paragraphs)


def error_markdown(message: str) -> str:
    """An input problem, worded for the person at the microphone."""
    return f"### Could not analyse this audio\n\n{message}"


def envelope(waveform: np.ndarray, columns: int = PLOT_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column min and max of the waveform (column centres in samples): drawing millions of points is slow."""
    step = max(1, len(waveform) // columns)
    usable = waveform[: len(waveform) // step * step].reshape(-1, step)
    centres = (np.arange(len(usable)) + 0.5) * step
    return centres, usable.min(axis=1), usable.max(axis=1)


def event_label(event: EventScore) -> str:
    """A cough's COVID-19 score, or what the event sounds like (events of non-cough audio carry no score)."""
    return f"{event.covid_probability:.0%}" if event.covid_probability is not None else event.sound_type


def figure(audio: Audio, prediction: Prediction) -> Figure:
    """Waveform and log-mel spectrogram (the model's own front end) with each detected event shaded and labelled."""
    sr = audio.sample_rate
    spectrogram = log_mel(audio.waveform)
    fig = Figure(figsize=(10, 5), layout="constrained")
    wave_ax, spec_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.4])
    x, lo, hi = envelope(audio.waveform)
    wave_ax.fill_between(x / sr, lo, hi, color="#3b6ea5", linewidth=0.6)
    wave_ax.set_ylim(-1.05, 1.8)
    wave_ax.set_yticks([])
    wave_ax.set_ylabel("waveform")
    frames = spectrogram.shape[-1]
    spec_ax.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, frames * HOP_LENGTH / sr, 0, N_MELS), interpolation="nearest")
    spec_ax.set_ylabel("log-mel band\n(0–4 kHz)")
    spec_ax.set_xlabel("time (s)")
    spec_ax.set_xlim(0, audio.duration_s)
    labelled = len(prediction.events) <= MAX_LABELLED_EVENTS
    for i, event in enumerate(prediction.events):
        wave_ax.axvspan(event.start_s, event.end_s, color="#f28e2b", alpha=0.25, linewidth=0, zorder=0)
        if not labelled:
            continue
        for edge in (event.start_s, event.end_s):
            spec_ax.axvline(edge, color="#7fdbff", linewidth=1.2, linestyle="--")
        wave_ax.text((event.start_s + event.end_s) / 2, 1.2 + 0.2 * (i % 3), event_label(event),
                     ha="center", va="center", fontsize=8)
    if not labelled:
        title = f"{len(prediction.events)} detected sound events (shaded); each one's details are in the API result"
    elif prediction.is_cough:
        title = "Detected sound events (shaded): each cough's COVID-19 score, or what the event sounds like"
    else:
        title = "Detected sound events (shaded) and what each one sounds like"
    wave_ax.set_title(title, fontsize=10)
    return fig


def render(result: dict[str, Any], prediction: Prediction | None, path: str | None,
           operating_point: dict[str, Any]) -> tuple[str, Figure | None]:
    """The page's view of one analysis: verdict text and figure, or the error message and no figure.

    The figure decodes the file again: a second decode is cheaper than keeping every session's audio in memory.
    """
    if prediction is None or not path:
        return error_markdown(result.get("error", NO_AUDIO)), None
    verdict = verdict_markdown(prediction, operating_point)
    try:
        return verdict, figure(load_audio(path), prediction)
    except Exception:
        log.exception("figure failed for %s", result.get("filename"))  # a failed drawing must not hide the verdict
        return verdict, None


def build_demo(model: coughkd.CoughModel, share: bool = False) -> gr.Blocks:
    """The whole UI, with its queue set up, for `main`, the tests and the packaged app to launch.

    `share` only changes the privacy note, which must say so when audio crosses the public share relay. The page and
    the API are two events on one pool of WORKERS threads: the page's returns verdict, figure and JSON from one
    request (so no per-session state), the API's ("/predict") the JSON alone.
    """
    operating_point = model.manifest["operating_point"]
    lane = LargeUploadLane(LARGE_UPLOAD_BYTES, **LARGE_LANE)

    def predict_endpoint(path: str | None) -> dict[str, Any]:
        try:
            with lane.admit(path or ""):
                return analyse(model, path)[0]
        except Busy:
            return {"error": BUSY}

    def page_endpoint(path: str | None) -> tuple[str, Figure | None, dict[str, Any]]:
        try:
            with lane.admit(path or ""):
                result, prediction = analyse(model, path)
                return (*render(result, prediction, path, operating_point), result)
        except Busy:
            return error_markdown(BUSY), None, {"error": BUSY}

    examples = sorted(EXAMPLES_DIR.glob("*.mp3"))
    with gr.Blocks(title="coughkd — cough COVID-19 screening demo", analytics_enabled=False,
                   delete_cache=(CACHE_LIFETIME_S, CACHE_LIFETIME_S)) as demo:
        gr.Markdown("# coughkd — cough COVID-19 screening demo\n\nRecord two or three coughs, or upload a recording "
                    "(0.3 s to 10 minutes, up to 50 MB), then press **Analyse**.")
        gr.Markdown(f"{DISCLAIMER} {PRIVACY[share]}", elem_id="disclaimer")
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Cough recording",
                                 buttons=["download"])
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[audio], label="Example clips (CC0)")
            with gr.Column(scale=3):
                verdict = gr.Markdown("Results appear here.", elem_id="verdict")
                plot = gr.Plot(label="Waveform and log-mel spectrogram", show_label=False, format="png",
                               elem_id="result-plot")
                with gr.Accordion("API result (JSON)", open=False):
                    result = gr.JSON(label="result")
        button.click(page_endpoint, inputs=audio, outputs=[verdict, plot, result], api_visibility="private",
                     concurrency_limit=WORKERS, concurrency_id="score")
        gr.on([], predict_endpoint, inputs=audio, outputs=result, api_name="predict",
              concurrency_limit=WORKERS, concurrency_id="score")
    demo.queue(default_concurrency_limit=WORKERS, max_size=QUEUE_SIZE)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           browser: bool = False) -> str:
    """Serve with the upload limit (port 0: a free one) and return the URL at once; whoever launched it closes it."""
    _, url, _ = demo.launch(server_name=host, server_port=port or serving.free_port(host), share=share,
                            inbrowser=browser, max_file_size=MAX_FILE_SIZE, prevent_thread_lock=True)
    return url


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults serve on this computer only, unless GRADIO_SERVER_NAME/PORT say otherwise.

    Hugging Face Spaces run `python app.py` with no arguments and set those two variables to where they route traffic.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to listen on (0.0.0.0 = all interfaces; default $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                   help="port to listen on; 0 picks a free one (default $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--share", action="store_true", help="also serve through a public Gradio share link")
    p.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped assets/model)")
    p.add_argument("--variant", choices=["int8", "fp32"], default="int8", help="which exported model to run")
    p.add_argument("--browser", action=argparse.BooleanOptionalAction, default=True,
                   help="open the app in a web browser once it is ready")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load the model once, then serve until an exit signal; exit status 2 for a model or port that cannot be used.

    Uploads live in a temp folder of this process's own (Gradio's and every other library's temp files, through
    GRADIO_TEMP_DIR and tempfile.tempdir), deleted on the way out whatever the reason, after the server has stopped.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    port = args.port or serving.free_port(args.host)
    reason = serving.cannot_listen(args.host, port)
    if reason is not None:
        print(f"error: cannot serve on {args.host}:{port}: {reason}; choose another port with --port "
              "(--port 0 picks a free one)", file=sys.stderr)
        return 2
    try:
        model = coughkd.load(args.model, variant=args.variant)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stop = serving.stop_on_exit_signals()
    with contextlib.ExitStack() as on_exit:  # runs last-in first-out: the server stops, then its files go
        temp = serving.TempFolder()
        on_exit.callback(temp.remove)
        os.environ["GRADIO_TEMP_DIR"] = tempfile.tempdir = str(temp.path)
        demo = build_demo(model, share=args.share)
        on_exit.callback(demo.close)
        try:
            launch(demo, args.host, port, args.share, args.browser)
        except OSError as err:  # the port was taken between the check and the launch
            print(f"error: cannot serve on {args.host}:{port}: {err}", file=sys.stderr)
            return 2
        print(f"coughkd: ready {time.perf_counter() - IMPORTED:.1f} s after imports; Ctrl+C stops it", flush=True)
        serving.wait_for(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

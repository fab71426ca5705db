"""coughkd demo: record or upload a cough and see the student model's COVID-19 score.

A thin Gradio front end over `coughkd`: every number shown comes from `CoughModel.predict`, and the figure's
data from `coughkd.audio.load_audio` and `coughkd.features.log_mel`. Run `python app.py --help`.
"""
from __future__ import annotations

import coughkd  # first: it switches telemetry off (coughkd.privacy) before gradio and huggingface_hub read the switches

# isort: split
import argparse
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from coughkd import AudioError, ModelError, Prediction
from coughkd.audio import Audio, load_audio
from coughkd.features import HOP_LENGTH, N_MELS, log_mel

IMPORTED = time.perf_counter()  # start-up is measured from here: imports are the interpreter's cost, not ours
ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "assets" / "examples"
MAX_FILE_SIZE = "50mb"
CONCURRENCY_LIMIT = 2  # one inference per CPU core; further requests wait in the queue
QUEUE_SIZE = 32
CACHE_LIFETIME_S = 3600  # uploads and recordings are deleted from Gradio's temp folder after an hour (checked hourly)
PLOT_POINTS = 4000  # waveform drawn as a min/max envelope of this many columns, so 10-minute clips plot fast
MAX_LABELLED_EVENTS = 30  # beyond this the labels overlap; the scores stay in the JSON result

DISCLAIMER = (
    "**Research demo — not a medical device and not a diagnosis.** The score comes from a small model trained "
    "on a few hundred crowd-sourced recordings; it has not been clinically validated. If you feel unwell or "
    "think you have COVID-19, take a test and follow your health service's advice."
)
PRIVACY = {
    False: "Your audio is processed on the computer running this app and is not sent anywhere else; its "
           "temporary copies are deleted within two hours.",
    True: "This app is shared through a public Gradio link: your audio travels through Gradio's relay to the "
          "computer running this app, is processed there and sent nowhere else; its temporary copies are deleted "
          "within two hours.",
}
NO_AUDIO = "No audio: record with the microphone or upload a file, then press Analyse."

log = logging.getLogger("coughkd.app")


def result_json(prediction: Prediction, filename: str) -> dict[str, Any]:
    """The API result: the CLI's `--json` object, with `filename` in place of `path`.

    `path` is left out because gradio_client treats any result dict holding a "path" key as a file to download.
    """
    return {"filename": filename, **prediction.to_json()}


@dataclass
class Analysis:
    """What the drawing step needs from the scoring step: the decision and the decoded audio behind it, so the
    upload is decoded once."""

    prediction: Prediction
    audio: Audio


def analyse(model: coughkd.CoughModel, path: str | None) -> tuple[dict[str, Any], Analysis | None]:
    """Score one clip; unusable input becomes {"error": message} so neither the UI nor the API ever crashes."""
    if not path:
        return {"error": NO_AUDIO}, None
    try:
        audio = load_audio(path)
        prediction = model.predict(audio)
    except AudioError as err:
        return {"error": str(err)}, None
    except Exception as err:  # noqa: BLE001 - the UI boundary: any failure must reach the user as a message
        log.exception("prediction failed for %s", path)
        return {"error": f"Could not analyse this audio ({type(err).__name__}: {err})."}, None
    return result_json(prediction, Path(path).name), Analysis(prediction, audio)


def channel_breakdown(per_source: dict[str, dict[str, Any]]) -> str:
    """The same threshold per recording channel of that set, with counts: one threshold can catch most positives on
    one channel and few on another, and the pooled figures hide it."""
    if not per_source:
        return ""
    parts = [f"{source}, {p['tp']} of {p['tp'] + p['fn']} positives caught and {p['tn']} of {p['tn'] + p['fp']} "
             f"negatives cleared" for source, p in per_source.items()]
    return " By recording channel: " + "; ".join(parts) + "."


def verdict_markdown(prediction: Prediction, operating_point: dict[str, Any]) -> str:
    """The headline: a COVID-19 score with its operating point, or a not-a-cough notice instead of any score."""
    n = len(prediction.events)
    details = (
        f"{n} sound event{'s' if n != 1 else ''} in {prediction.duration_s:.1f} s of audio · "
        f"inference {prediction.latency_ms:.0f} ms · model `{prediction.model}`"
    )
    if not prediction.is_cough:
        paragraphs = [
            "### This does not sound like a cough",
            f"The cough detector gives {prediction.cough_probability:.0%}, so no COVID-19 score is shown. "
            "Record two or three deliberate coughs close to the microphone, with little background noise.",
        ]
    else:
        outcome = "above" if prediction.covid_positive else "below"
        sensitivity, specificity = operating_point["sensitivity"], operating_point["specificity"]
        paragraphs = [
            f"### COVID-19 probability: {prediction.covid_probability:.0%} ({outcome} the threshold of "
            f"{prediction.threshold:.0%})",
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


def figure(audio: Audio, prediction: Prediction) -> Figure:
    """Waveform and log-mel spectrogram (the model's own front end) with each scored event shaded and labelled."""
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
        score = event.covid_probability if prediction.is_cough else event.cough_probability
        wave_ax.text((event.start_s + event.end_s) / 2, 1.2 + 0.2 * (i % 3), f"{score:.0%}",
                     ha="center", va="center", fontsize=8)
    what = "coughs" if prediction.is_cough else "sound events"
    scores = "COVID-19 score" if prediction.is_cough else "cough score"
    wave_ax.set_title(f"Detected {what} (shaded) with each one's {scores}" if labelled else
                      f"{len(prediction.events)} detected {what} (shaded); each one's score is in the API result",
                      fontsize=10)
    return fig


def render(result: dict[str, Any], analysis: Analysis | None,
           operating_point: dict[str, Any]) -> tuple[str, Figure | None]:
    """The UI's view of one analysis: verdict text and figure, or the error message and no figure."""
    if analysis is None:
        return error_markdown(result.get("error", NO_AUDIO)), None
    verdict = verdict_markdown(analysis.prediction, operating_point)
    try:
        return verdict, figure(analysis.audio, analysis.prediction)
    except Exception:  # noqa: BLE001 - a failed drawing must not hide the verdict
        log.exception("figure failed for %s", result.get("filename"))
        return verdict, None


def build_demo(model: coughkd.CoughModel, share: bool = False) -> gr.Blocks:
    """The whole UI, with its queue set up, for `main`, the tests and the packaged app to launch.

    `share` only changes the privacy note, which must say so when audio crosses the public share relay.
    """
    operating_point = model.manifest["operating_point"]

    def predict_endpoint(path: str | None) -> tuple[dict[str, Any], Analysis | None]:
        return analyse(model, path)

    def render_endpoint(result: dict[str, Any], analysis: Analysis | None) -> tuple[str, Figure | None]:
        return render(result, analysis, operating_point)

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
        analysis_state = gr.State()
        scored = button.click(predict_endpoint, inputs=audio, outputs=[result, analysis_state], api_name="predict")
        scored.then(render_endpoint, inputs=[result, analysis_state], outputs=[verdict, plot],
                    api_visibility="private")
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    return demo


def free_port(host: str) -> int:
    """A port the OS says is free now (for --port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, browser: bool = False,
           block: bool = True) -> str:
    """Serve with the upload limit; `block=False` returns at once (tests close the demo themselves). Returns the URL."""
    _, url, _ = demo.launch(server_name=host, server_port=port or free_port(host), share=share, inbrowser=browser,
                            max_file_size=MAX_FILE_SIZE, prevent_thread_lock=not block)
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
    """Load the model once, then serve until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = coughkd.load(args.model, variant=args.variant)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    demo = build_demo(model, share=args.share)
    launch(demo, args.host, args.port, args.share, args.browser, block=False)
    print(f"coughkd: ready {time.perf_counter() - IMPORTED:.1f} s after imports; Ctrl+C stops it", flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())

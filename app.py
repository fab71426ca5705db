"""coughkd demo: record or upload a cough and see what the student model makes of it, in plain words.

A thin Gradio front end: every number shown comes from `CoughModel.predict` on the uploaded file; what it means for
the person (quality checks, channel figures, predictive values), the figure, the report and the page's words in four
languages are in coughkd_app/; how it runs as a process (its temp folder, signals, the port, the lane for large
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

import serving
from coughkd import AudioError, ModelError, Prediction
from coughkd_app import browser, page, text, view
from coughkd_app.interpret import DEFAULT_PREVALENCE, error_entry
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
FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]
I18N = gr.I18n(**{lang: text.page_text(lang) for lang in text.LANGUAGES})
EMPTY_STORE = {"entries": [], "current": None}

log = logging.getLogger("coughkd.app")


def theme() -> gr.themes.Base:
    """Gradio's default look on the system's own fonts. The default theme's Source Sans Pro SemiBold, the weight of
    its buttons, is a 55-glyph subset (space, "A", "B", ...): the "A" of "Analyse" came from it and "nalyse" from the
    fallback font. The system's fonts also need nothing fetched, offline or not. The primary button is darkened so
    its white text has AA contrast."""
    return gr.themes.Default(primary_hue="blue", font=FONTS, font_mono=MONO_FONTS).set(
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white", body_text_color_subdued="*neutral_600")


def launch_options() -> dict[str, Any]:
    """What `demo.launch` needs besides the address: in Gradio 6 theme, css, head and i18n are launch's. Run history
    is off: it would keep every upload's link in the browser, beside the results the page keeps itself."""
    return {"theme": theme(), "css": browser.CSS, "head": browser.HEAD, "i18n": I18N, "run_history": False,
            "footer_links": ["api", "settings"], "max_file_size": MAX_FILE_SIZE}


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
        return {"error": text.say("en", "no_audio")}, None
    try:
        prediction = model.predict(path)
    except AudioError as err:
        return {"error": str(err)}, None
    except Exception as err:
        log.exception("prediction failed for %s", path)
        return {"error": f"Could not analyse this audio ({type(err).__name__}: {err})."}, None
    return result_json(prediction, Path(path).name), prediction


def busy_message(lang: str) -> str:
    """The large-upload lane is full: come back in a minute, or send a file small enough to skip it."""
    return text.say(lang, "busy", megabytes=LARGE_UPLOAD_BYTES // 2**20)


def build_demo(model: coughkd.CoughModel, share: bool = False) -> gr.Blocks:
    """The whole UI, with its queue set up, for `main`, the tests and the packaged app to launch.

    `share` only changes the privacy note, which must say so when audio crosses the public share relay. The page and
    the API are two events on one pool of WORKERS threads: the page's returns verdict, figure, report and JSON from
    one request, the API's ("/predict") the JSON alone. What the page remembers (results as text, no audio) is in the
    browser's own storage (gr.BrowserState), never on the server.
    """
    manifest = model.manifest
    operating_point = manifest["operating_point"]
    lane = LargeUploadLane(LARGE_UPLOAD_BYTES, **LARGE_LANE)

    def predict_endpoint(path: str | None) -> dict[str, Any]:
        try:
            with lane.admit(path or ""):
                return analyse(model, path)[0]
        except Busy:
            return {"error": busy_message("en")}

    def page_endpoint(path: str | None, prevalence: float, store: Any, context: str) -> tuple[Any, ...]:
        lang, time = page.read_context(context)
        prevalence = page.prevalence_or_default(prevalence)
        try:
            with lane.admit(path or ""):
                result, prediction = analyse(model, path)
                shown = page.present(prediction, result.get("error"), path, operating_point, manifest, prevalence,
                                     lang, time)
        except Busy:
            result = {"error": busy_message("en")}
            shown = page.Shown(view.verdict_html(error_entry(busy_message(lang)), prevalence, lang))
        entries, _ = page.stored(store)
        store = page.remember(store, shown.entry) if shown.entry else {"entries": entries, "current": None}
        return shown.verdict, shown.figure, shown.report, result, store, view.history_html(store["entries"], lang)

    def show_stored(store: Any, context: str) -> tuple[str, str, dict[str, Any]]:
        """On load: the placeholder, and the results this browser kept (none is current: none is on the page)."""
        lang, _ = page.read_context(context)
        entries, _ = page.stored(store)
        return (view.message_html(text.say(lang, "placeholder")), view.history_html(entries, lang),
                {"entries": entries, "current": None})

    def recording_changed(path: str | None, store: Any, context: str) -> tuple[Any, ...]:
        """A new (or no) recording: the previous result goes, so no verdict ever sits beside the wrong recording."""
        lang, _ = page.read_context(context)
        entries, _ = page.stored(store)
        message = text.say(lang, "ready", name=page.display_name(path, lang)) if path else text.say(lang, "placeholder")
        return view.message_html(message), "", "", None, {"entries": entries, "current": None}

    def prevalence_changed(prevalence: float, store: Any, context: str) -> str | Any:
        """The shown result's predictive values at the new prevalence (nothing to do without a result)."""
        lang, _ = page.read_context(context)
        _, current = page.stored(store)
        if current is None:
            return gr.skip()
        return view.verdict_html(current, page.prevalence_or_default(prevalence), lang)

    def clear_history(store: Any, context: str) -> tuple[dict[str, Any], str]:
        lang, _ = page.read_context(context)
        _, current = page.stored(store)
        return {"entries": [], "current": current}, view.history_html([], lang)

    examples = sorted(EXAMPLES_DIR.glob("*.mp3"))
    with gr.Blocks(title=I18N("title"), analytics_enabled=False,
                   delete_cache=(CACHE_LIFETIME_S, CACHE_LIFETIME_S)) as demo:
        gr.Markdown(I18N("heading"))
        gr.Markdown(I18N("intro"))
        gr.Markdown(I18N("notice_shared" if share else "notice_local"), elem_id="disclaimer")
        context = gr.Textbox(visible=False)
        store = gr.BrowserState(EMPTY_STORE, storage_key="coughkd-results")
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label=I18N("recording_label"),
                                 buttons=["download"], elem_id="recording")
                button = gr.Button(I18N("analyse"), variant="primary", elem_id="analyse")
                prevalence = gr.Slider(0.5, 50, value=DEFAULT_PREVALENCE, step=0.5, label=I18N("prevalence_label"),
                                       info=I18N("prevalence_info"), elem_id="prevalence")
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[audio], label=I18N("examples_label"))
            with gr.Column(scale=3):
                verdict = gr.HTML(elem_id="verdict", js_on_load=None)
                plot = gr.HTML(elem_id="result-figure", js_on_load=None)
                report_link = gr.HTML(elem_id="report", js_on_load=None)
                with gr.Accordion(I18N("json_label"), open=False):
                    result = gr.JSON(label="result")
        gr.Markdown(I18N("history_heading"))
        history = gr.HTML(elem_id="history", js_on_load=None)
        with gr.Row():
            clear = gr.Button(I18N("history_clear"), variant="secondary", size="sm", scale=0, min_width=160,
                              elem_id="clear-history")

        quiet = {"js": browser.CONTEXT_JS, "show_progress": "hidden", "api_visibility": "private", "queue": False}
        demo.load(show_stored, inputs=[store, context], outputs=[verdict, history, store], **quiet)
        analysis = button.click(page_endpoint, inputs=[audio, prevalence, store, context],
                                outputs=[verdict, plot, report_link, result, store, history], js=browser.CONTEXT_JS,
                                show_progress_on=[plot], api_visibility="private", concurrency_limit=WORKERS,
                                concurrency_id="score")
        analysis.then(None, js=browser.SHOW_RESULT_JS)
        audio.change(recording_changed, inputs=[audio, store, context],
                     outputs=[verdict, plot, report_link, result, store], cancels=[analysis], **quiet)
        prevalence.change(prevalence_changed, inputs=[prevalence, store, context], outputs=verdict,
                          trigger_mode="always_last", **quiet)
        clear.click(clear_history, inputs=[store, context], outputs=[store, history], **quiet)
        gr.on([], predict_endpoint, inputs=audio, outputs=result, api_name="predict",
              concurrency_limit=WORKERS, concurrency_id="score")
    demo.queue(default_concurrency_limit=WORKERS, max_size=QUEUE_SIZE)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           browser: bool = False) -> str:
    """Serve with the upload limit (port 0: a free one) and return the URL at once; whoever launched it closes it."""
    _, url, _ = demo.launch(server_name=host, server_port=port or serving.free_port(host), share=share,
                            inbrowser=browser, prevent_thread_lock=True, **launch_options())
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

"""`python -m coughkd predict FILE... [--json]`: score recordings from the shell, one result per input."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import load
from .audio import AudioError
from .model import ModelError
from .predict import CoughModel, Prediction


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 when every input was scored, 1 when any input (or the model) failed."""
    parser = argparse.ArgumentParser(prog="python -m coughkd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("predict", help="screen cough recordings for COVID-19")
    run.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, mp3, ogg, webm, flac, m4a, ...)")
    run.add_argument("--json", action="store_true", help="one JSON object per input per line")
    run.add_argument("--model", metavar="DIR", help="model folder (default: the shipped assets/model)")
    run.add_argument("--variant", choices=("int8", "fp32"), default="int8", help="model variant (default: int8)")
    args = parser.parse_args(argv)
    try:
        model = load(args.model, args.variant)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        return _predict_all(model, args.files, args.json)
    except BrokenPipeError:  # e.g. `| head -1`: the reader left; stop quietly, as other shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 1


def _predict_all(model: CoughModel, files: list[str], as_json: bool) -> int:
    failed = False
    for path in files:
        try:
            prediction = model.predict(path)
        except AudioError as error:
            failed = True
            print(json.dumps({"path": path, "error": str(error)}) if as_json else f"{path}: error: {error}",
                  flush=True)
            continue
        print(json.dumps({"path": path, **prediction.to_json()}) if as_json else _describe(path, prediction),
              flush=True)
    return 1 if failed else 0


HEARD = {"speech": "sounds like speech, not a cough", "breathing": "sounds like breathing, not a cough",
         "other": "does not sound like a cough"}


def _describe(path: str, p: Prediction) -> str:
    """One line per input, then its events. No COVID-19 verdict for audio that does not sound like a cough, as in
    the app: the gate says what it heard instead."""
    if p.is_cough:
        verdict = "POSITIVE" if p.covid_positive else "negative"
        head = (f"COVID-19 {verdict} (probability {p.covid_probability:.2f}, threshold {p.threshold:.2f}); "
                f"cough (probability {p.cough_probability:.2f})")
    else:
        head = (f"{HEARD[p.sound_type]} ({p.sound_type} {p.sound_probabilities[p.sound_type]:.2f}, cough "
                f"{p.cough_probability:.2f}); no COVID-19 verdict")
    lines = [f"{path}: {head}; {len(p.events)} event{'s' if len(p.events) != 1 else ''} in {p.duration_s:.1f} s; "
             f"{p.latency_ms:.0f} ms, model {p.model}"]
    for e in p.events:
        covid = f"  covid {e.covid_probability:.2f}" if e.covid_probability is not None else ""
        lines.append(f"  {e.start_s:6.2f}-{e.end_s:6.2f} s  {e.sound_type:<9}  cough {e.cough_probability:.2f}{covid}")
    lines += [f"  warning: {w}" for w in p.warnings]
    return "\n".join(lines)

"""Smoke-run a built desktop app: start it headless, wait until it answers, score a bundled example, stop it.

`python -m build.smoke [APP_DIR]` prints the folder's size, the start-up time (launch to first HTTP answer) and the
prediction; tests/test_build_exe.py runs the same steps in CI and checks them. `serve` also starts the Space's app.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.exe import DIST, NAME, executable, folder_mb

EXAMPLE = Path("assets") / "examples" / "cough_telegram_1.mp3"
START_TIMEOUT_S = 300.0  # generous: CI shares two cores with training
PREDICT_TIMEOUT_S = 120.0
LOCAL_URL = re.compile(r"Running on local URL:\s+(http://[\w.\-]+:\d+)")


@dataclass
class Server:
    url: str
    startup_s: float  # from launch to the first HTTP 200
    process: subprocess.Popen
    log: Path


def log_tail(log: Path, lines: int = 60) -> str:
    """The end of a server's output, for failure messages."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server and anything it started (it leads its own process group), then kill if it lingers."""
    if process.poll() is None:
        if sys.platform == "win32":
            process.terminate()
        else:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            if sys.platform == "win32":
                process.kill()
            else:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextmanager
def serve(command: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None,
          timeout_s: float = START_TIMEOUT_S) -> Iterator[Server]:
    """Start a Gradio app whose command prints its local URL; yield once it answers; always stop it.

    `env` replaces this process's environment. Raises RuntimeError with the end of its log if the app exits or stays
    silent.
    """
    env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost"}
    start = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=sys.platform != "win32")
    try:
        url = None
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with code {process.returncode}:\n{log_tail(log)}")
            if time.monotonic() - start > timeout_s:
                raise RuntimeError(f"{command[0]} did not answer within {timeout_s:.0f} s:\n{log_tail(log)}")
            if url is None:
                found = LOCAL_URL.search(log.read_text(errors="replace"))
                url = found.group(1) if found else None
            if url is not None and _answers(url):
                break
            time.sleep(0.2)
        yield Server(url, time.monotonic() - start, process, log)
    finally:
        _stop(process)


def predict(url: str, audio: Path) -> dict[str, Any]:
    """Score one file through the app's "predict" API endpoint, as any gradio_client user would."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    return client.submit(handle_file(str(audio)), api_name="/predict").result(timeout=PREDICT_TIMEOUT_S)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("app_dir", type=Path, nargs="?", default=DIST / NAME, help="built app folder")
    p.add_argument("--log", type=Path, default=DIST / "smoke.log", help="where the app's output goes")
    args = p.parse_args(argv)
    command = [str(executable(args.app_dir)), "--no-browser"]
    with serve(command, args.log) as server:
        start = time.monotonic()
        result = predict(server.url, args.app_dir / "_internal" / EXAMPLE)
        predict_s = time.monotonic() - start
    print(f"folder: {folder_mb(args.app_dir):.0f} MB")
    print(f"start-up to first answer: {server.startup_s:.1f} s at {server.url}")
    print(f"first prediction: {predict_s:.2f} s")
    print(json.dumps(result))
    return 0 if "covid_probability" in result else 1


if __name__ == "__main__":
    sys.exit(main())

"""The app under load: `python app.py` driven by concurrent gradio_client callers, every answer checked against
coughkd run directly."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.zoo import EXAMPLES, REPO, BenchConfig
from build import smoke
from coughkd.audio import AudioError
from training.lib.data import SHARED

DATASET_RAW = SHARED / "data" / "covid19-cough" / "raw"


@dataclass(frozen=True)
class Expected:
    """What coughkd itself answers for one clip, the yardstick for the app's answer."""

    path: str
    covid_probability: float | None  # None where the gate hears no cough
    n_events: int


def check_answer(result: Any, expected: Expected, tolerance: float = 1e-4) -> str | None:
    """None if the app's answer is this clip's answer; otherwise what is wrong with it."""
    if isinstance(result, (list, tuple)):
        result = next((r for r in result if isinstance(r, dict)), None)
    if not isinstance(result, dict):
        return f"{Path(expected.path).name}: no result dict ({type(result).__name__})"
    if "error" in result:
        return f"{Path(expected.path).name}: error {result['error']!r}"
    got, want = result.get("covid_probability"), expected.covid_probability
    if (got is None) != (want is None) or (want is not None and abs(float(got) - want) > tolerance):
        return f"{Path(expected.path).name}: covid_probability {got} != {want}"
    if len(result.get("events", [])) != expected.n_events:
        return f"{Path(expected.path).name}: {len(result.get('events', []))} events != {expected.n_events}"
    return None


def drive(make_caller: Callable[[], Callable[[str], Any]], clips: Sequence[Expected], n_clients: int,
          requests_per_client: int) -> dict:
    """`n_clients` threads, each with its own caller, send requests at once; caller i's request k carries clip
    (i + k) mod len(clips), so no two requests in flight carry the same clip and a mixed-up answer shows."""
    if len(clips) < n_clients:
        raise ValueError(f"{n_clients} clients need {n_clients} different clips, have {len(clips)}")
    callers = [make_caller() for _ in range(n_clients)]
    barrier = threading.Barrier(n_clients)
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        barrier.wait()
        for k in range(requests_per_client):
            expected = clips[(i + k) % len(clips)]
            start = time.perf_counter()
            try:
                problem = check_answer(callers[i](expected.path), expected)
            except Exception as error:  # a failed request is a result to report, not a crash
                problem = f"{Path(expected.path).name}: {type(error).__name__}: {error}"
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if problem:
                    problems.append(problem)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000.0
    return {"clients": n_clients, "requests": len(latencies), "seconds": seconds,
            "requests_per_s": len(latencies) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "correct": len(latencies) - len(problems),
            "all_correct": not problems, "problems": problems[:10]}


def app_clips(model_dir: Path, needed: int, dataset: Path = DATASET_RAW) -> list[Expected]:
    """The bundled examples and enough dataset recordings (spread over the sorted file list) for `needed`
    different clips, each with its expected answer from coughkd run directly."""
    import coughkd

    model = coughkd.load(model_dir, "int8")
    candidates = sorted(EXAMPLES.glob("*.mp3"))
    if dataset.is_dir():
        raw = sorted(dataset.glob("*.mp3"))
        candidates += raw[:: max(1, len(raw) // (2 * needed))]
    clips = []
    for path in candidates:
        try:
            p = model.predict(str(path))
        except AudioError:
            continue
        if p.duration_s <= 60:
            clips.append(Expected(str(path), p.covid_probability, len(p.events)))
        if len(clips) >= needed + 4:
            break
    return clips


READY = re.compile(r"ready ([0-9.]+) s after imports")


@contextlib.contextmanager
def serve_app(model_dir: Path, log_file: Path) -> Iterator[tuple[str, float | None]]:
    """`python app.py` on a free local port (build.smoke.serve, as the build's smoke test starts it); once it answers,
    yields its URL and the start-up time app.py reported (from the end of its imports to serving)."""
    command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", "0", "--model", str(model_dir),
               "--variant", "int8", "--no-browser"]
    with smoke.serve(command, log_file, cwd=REPO, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}) as server:
        deadline = time.monotonic() + 10
        ready = READY.search(log_file.read_text())
        while ready is None and time.monotonic() < deadline:  # the app prints it just after the server answers
            time.sleep(0.1)
            ready = READY.search(log_file.read_text())
        yield server.url.rstrip("/") + "/", float(ready.group(1)) if ready else None


def app_throughput(model_dir: Path, config: BenchConfig, log_file: Path) -> dict:
    """Requests/s and latency of the running app at each concurrency, and whether every answer was right."""
    from gradio_client import Client, handle_file

    clips = app_clips(model_dir, max(config.app_clients))
    with serve_app(model_dir, log_file) as (url, ready_s):
        def make_caller() -> Callable[[str], Any]:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
            return lambda path: client.predict(handle_file(path), api_name="/predict")

        warm = make_caller()
        for expected in clips[:2]:
            warm(expected.path)
        levels = [drive(make_caller, clips, n, max(2, -(-config.app_requests // n))) for n in config.app_clients]
    return {"url": url, "ready_after_imports_s": ready_s, "clips": [asdict(c) for c in clips], "levels": levels}

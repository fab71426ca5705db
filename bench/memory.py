"""Peak resident memory of one model, measured in a fresh process that only loads it and predicts once."""
from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.zoo import REPO, Paths, Zoo


def measure_rss(name: str, paths: Paths, wav2vec2: dict, clip: np.ndarray, wav2vec2_ir: Path | None) -> dict:
    """Load one model, predict once, report this process's peak resident memory (the child side)."""
    with tempfile.TemporaryDirectory() as work:
        zoo = Zoo(paths, wav2vec2, Path(work), wav2vec2_ir)
        zoo.prepare(name, len(os.sched_getaffinity(0)))(clip)()
    return {"model": name, "peak_rss_bytes": peak_rss_bytes(), "imports_torch": "torch" in sys.modules}


def peak_rss_bytes() -> int:
    """This process's peak resident memory. VmHWM belongs to the process's own address space; ru_maxrss (the
    fallback off Linux) also counts the parent's memory at fork time, which would give every child the parent's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_in_subprocess(name: str, paths: Paths, quick: bool, clip_file: Path, wav2vec2_ir: Path | None) -> dict:
    """Peak RSS of `python -m bench --measure_rss=NAME` (the parent side)."""
    command = [sys.executable, "-m", "bench", f"--measure_rss={name}", f"--clip={clip_file}",
               f"--model_dir={paths.model_dir}", f"--run_dir={paths.run_dir}", f"--quick={quick}"]
    if wav2vec2_ir is not None and name == "wav2vec2_base_ov_fp32":
        command.append(f"--wav2vec2_ir={wav2vec2_ir}")
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])

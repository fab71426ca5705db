"""Build the one-folder desktop app for this OS: `python -m build.exe` -> build/out/coughkd/coughkd[.exe].

Runs PyInstaller on build/coughkd.spec, then checks that the training stack stayed out of the bundle and prints the
folder's size. Start the result with `build/out/coughkd/coughkd` (add `--no-browser` on a headless machine).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from PyInstaller.archive.readers import pkg_archive_contents

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "build" / "coughkd.spec"
DIST = ROOT / "build" / "out"
WORK = ROOT / "build" / "work"
NAME = "coughkd"
FORBIDDEN = ("torch", "transformers")  # the app runs on OpenVINO alone; either would add hundreds of MB


def executable(app_dir: Path) -> Path:
    """The launcher inside a built app folder."""
    return app_dir / (f"{NAME}.exe" if sys.platform == "win32" else NAME)


def build(dist: Path = DIST, work: Path = WORK, model: Path | None = None) -> Path:
    """Run PyInstaller (output to the console); returns the app folder. Raises CalledProcessError on failure."""
    command = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--log-level", "WARN",
               "--distpath", str(dist), "--workpath", str(work)]
    if model is not None:
        command += ["--", "--model", str(Path(model).resolve())]
    subprocess.run(command, check=True, cwd=ROOT)
    return dist / NAME


def folder_mb(path: Path) -> float:
    """Size of all files under `path` in MB (10^6 bytes), links not followed."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def bundled_packages(app_dir: Path) -> set[str]:
    """Top-level names of every module in the launcher's archive and every folder beside it."""
    names = {entry.split(".")[0] for entry in pkg_archive_contents(str(executable(app_dir)))}
    internal = app_dir / "_internal"
    return names | {p.name for p in internal.iterdir() if p.is_dir()}


def forbidden_in(app_dir: Path) -> list[str]:
    """Which of FORBIDDEN made it into the bundle (empty when the build is lean)."""
    return sorted(set(FORBIDDEN) & bundled_packages(app_dir))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="model folder to bundle (default: assets/model)")
    p.add_argument("--dist", type=Path, default=DIST, help="where the app folder goes")
    p.add_argument("--work", type=Path, default=WORK, help="PyInstaller's scratch folder")
    args = p.parse_args(argv)
    start = time.monotonic()
    try:
        app_dir = build(args.dist, args.work, args.model)
    except subprocess.CalledProcessError as err:
        print(f"error: PyInstaller failed with exit code {err.returncode}", file=sys.stderr)
        return 1
    leaked = forbidden_in(app_dir)
    if leaked:
        print(f"error: {', '.join(leaked)} got into {app_dir}; exclude it in {SPEC.name}", file=sys.stderr)
        return 1
    print(f"built {executable(app_dir)} in {time.monotonic() - start:.0f} s; folder {folder_mb(app_dir):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

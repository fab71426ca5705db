"""Entry point of the desktop build: the Gradio app on 127.0.0.1 at a free port, opened in the default browser.

Arguments are passed on to app.py after these defaults, so they override them: `--no-browser` for headless runs,
`--port 7860` for a fixed port, `--model DIR` for another model folder.
"""
from __future__ import annotations

import os
import sys

DEFAULT_ARGS = ["--host", "127.0.0.1", "--port", "0"]


def restore_library_path() -> None:
    """Give child processes (ffmpeg decoding webm/m4a, the browser launcher) the system's libraries, not the bundle's.

    PyInstaller's bootloader prepends the bundle to LD_LIBRARY_PATH; the dynamic loader of this process read it at
    start-up already, so only children see the change.
    """
    if not getattr(sys, "frozen", False) or "LD_LIBRARY_PATH" not in os.environ:
        return
    original = os.environ.get("LD_LIBRARY_PATH_ORIG")
    if original is None:
        del os.environ["LD_LIBRARY_PATH"]
    else:
        os.environ["LD_LIBRARY_PATH"] = original


def main() -> int:
    restore_library_path()
    import app

    return app.main([*DEFAULT_ARGS, *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())

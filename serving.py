"""How app.py runs as a server process, apart from its UI.

- Uploads and recordings: Gradio keeps them in GRADIO_TEMP_DIR. `TempFolder` gives the app a folder of its own under
  the system's temp folder, which `main` deletes on every way out it can see (normal exit, an exception, SIGTERM,
  SIGINT, SIGHUP, and on Windows Ctrl+Break). What a killed run left behind (kill -9, a crash, a power cut; on
  Windows also a closed console window, which may end the process before Python runs a handler) is deleted at the
  next start: each folder has a lock file that its process holds while it runs, the operating system drops the
  lock of a dead process, so a folder whose lock can be taken is a leftover.
  While the app runs, Gradio's `delete_cache` (set in app.py) deletes files older than an hour, hourly.
- Exit signals only set an event that `main` waits on, so shutdown runs in the main thread, in order.
- A port that cannot be bound is found before Gradio tries it, so the user gets one line instead of a traceback.
- `LargeUploadLane` keeps large uploads from taking every worker under a burst.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMP_PARENT = Path(tempfile.gettempdir()) / (f"coughkd-app-{os.getuid()}" if hasattr(os, "getuid") else "coughkd-app")
CLAIM = ".claim"  # held while a starting app deletes leftovers and makes its own folder, so two starts cannot race
LOCK_SUFFIX = ".lock"
EXIT_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK")  # those that exist on this platform are handled


def _lock(handle: IO[str], blocking: bool) -> bool:
    """Take an exclusive lock on an open file; False if another process (or open file) holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _folder_of(lock: Path) -> Path:
    return lock.with_name(lock.name.removesuffix(LOCK_SUFFIX))


def remove_leftovers(parent: Path) -> list[Path]:
    """Delete the folders (and lock files) under `parent` that no live process holds; returns the folders deleted.

    Call it holding the claim lock: a folder without a lock file is then a leftover too, since a starting app makes
    its lock file before its folder.
    """
    removed = []
    for lock in sorted(parent.glob(f"*{LOCK_SUFFIX}")):
        with lock.open("a+") as handle:
            if not _lock(handle, blocking=False):
                continue  # its app is running
            shutil.rmtree(_folder_of(lock), ignore_errors=True)
        removed.append(_folder_of(lock))
        with contextlib.suppress(OSError):
            lock.unlink()
    for folder in sorted(parent.iterdir()):
        if folder.is_dir() and not folder.with_name(folder.name + LOCK_SUFFIX).exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class TempFolder:
    """A folder of this process's own under `parent`, created after deleting what killed runs left there.

    `leftovers` lists the folders that start-up deleted; `remove()` deletes this one (call it on the way out).
    """

    def __init__(self, parent: Path = TEMP_PARENT) -> None:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with (parent / CLAIM).open("a+") as claim:
            _lock(claim, blocking=True)
            self.leftovers = remove_leftovers(parent)
            fd, lock = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=LOCK_SUFFIX, dir=parent)
            self._lock_file = os.fdopen(fd, "r+")
            _lock(self._lock_file, blocking=False)
            self.lock = Path(lock)
            self.path = _folder_of(self.lock)
            self.path.mkdir(mode=0o700)

    def remove(self) -> None:
        """Delete the folder, then give up its lock; safe to call twice."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock_file.close()
        with contextlib.suppress(OSError):
            self.lock.unlink()


def stop_on_exit_signals() -> threading.Event:
    """An event that the first exit signal sets, instead of the default of dying on the spot (SIGTERM, SIGHUP) or
    raising KeyboardInterrupt wherever the main thread happens to be (SIGINT). Call from the main thread."""
    stop = threading.Event()
    for name in EXIT_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda signum, frame: stop.set())
    return stop


def wait_for(stop: threading.Event) -> None:
    """Block until `stop` is set, waking up often: on Windows a signal handler only runs between bytecodes."""
    while not stop.wait(timeout=0.5):
        pass


def free_port(host: str) -> int:
    """A port the OS says is free now (for --port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (a one-line reason), or None if it can right now.

    Binds as uvicorn will (SO_REUSEADDR except on Windows, where it would let two servers share the port).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as err:
        return f"unknown host {host!r} ({err.strerror})"
    with socket.socket(family, kind, proto) as s:
        if sys.platform != "win32":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as err:
            return err.strerror or str(err)
    return None


class Busy(Exception):
    """A lane is full; the request is refused at once rather than held."""


class LargeUploadLane:
    """Uploads over `threshold_bytes` take turns: `running` at once and `waiting` more queued behind them, any beyond
    that refused at once, so large files never hold more than running + waiting of the server's workers however many
    arrive; smaller files never wait here. Size is what can be known before decoding, and what decoding, resampling
    and the figure of a long uncompressed recording cost grows with."""

    def __init__(self, threshold_bytes: int, running: int = 1, waiting: int = 1) -> None:
        self.threshold_bytes = threshold_bytes
        self.workers = running + waiting
        self._admitted = threading.BoundedSemaphore(running + waiting)
        self._running = threading.Semaphore(running)

    def is_large(self, path: str | Path) -> bool:
        try:
            return os.path.getsize(path) > self.threshold_bytes
        except OSError:
            return False  # missing: the decoder says so

    @contextlib.contextmanager
    def admit(self, path: str | Path) -> Iterator[None]:
        """Run the block now (small file), after its turn (large file), or raise Busy (large file, lane full)."""
        if not self.is_large(path):
            yield
            return
        if not self._admitted.acquire(blocking=False):
            raise Busy
        try:
            with self._running:
                yield
        finally:
            self._admitted.release()

"""serving.py on its own: the app's temp folder and its leftovers, the large-upload lane, exit signals, the port check.

The whole process (SIGTERM, kill -9 and restart, a burst of clients) is tested in tests/test_lifecycle.py.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import serving


def test_temp_folder_is_its_own_and_remove_deletes_it(tmp_path: Path) -> None:
    first, second = serving.TempFolder(tmp_path), serving.TempFolder(tmp_path)
    try:
        assert first.path != second.path and first.path.is_dir() and second.path.is_dir()
        assert first.path.parent == tmp_path and second.leftovers == [], "a live folder is never a leftover"
        (first.path / "upload.wav").write_bytes(b"RIFF")
        first.remove()
        assert not first.path.exists() and not first.lock.exists() and second.path.is_dir()
    finally:
        second.remove()
    assert sorted(p.name for p in tmp_path.iterdir()) == [serving.CLAIM]


def test_start_up_deletes_what_dead_processes_left_and_nothing_else(tmp_path: Path) -> None:
    live = serving.TempFolder(tmp_path)
    dead_folder = tmp_path / "999-dead"  # its process is gone: nobody holds the lock file
    dead_folder.mkdir()
    (dead_folder / "cough.wav").write_bytes(b"RIFF")
    (tmp_path / "999-dead.lock").touch()
    orphan = tmp_path / "998-orphan"  # a folder without a lock file
    orphan.mkdir()
    try:
        starting = serving.TempFolder(tmp_path)
        assert starting.leftovers == [dead_folder, orphan]
        assert not dead_folder.exists() and not (tmp_path / "999-dead.lock").exists() and not orphan.exists()
        assert live.path.is_dir() and live.lock.exists()
        starting.remove()
    finally:
        live.remove()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A file at the lane's threshold (small) and one byte over it (large)."""
    small, large = tmp_path / "small.wav", tmp_path / "large.wav"
    small.write_bytes(b"x" * 100)
    large.write_bytes(b"x" * 101)
    return small, large


def hold(lane: serving.LargeUploadLane, path: Path, log: list[str], release: threading.Event) -> threading.Thread:
    """A thread that has entered the lane with `path` (when this returns) and stays until released."""
    inside = threading.Event()

    def run() -> None:
        with lane.admit(path):
            log.append("first in")
            inside.set()
            release.wait()
            log.append("first out")

    thread = threading.Thread(target=run)
    thread.start()
    inside.wait()
    return thread


def test_a_full_lane_refuses_large_files_at_once_and_never_holds_small_ones(files: tuple[Path, Path]) -> None:
    small, large = files
    lane = serving.LargeUploadLane(threshold_bytes=100, running=1, waiting=0)
    log: list[str] = []
    release = threading.Event()
    holder = hold(lane, large, log, release)
    try:
        with pytest.raises(serving.Busy), lane.admit(large):
            log.append("second large in")
        with lane.admit(small):
            log.append("small in")
    finally:
        release.set()
        holder.join()
    assert log == ["first in", "small in", "first out"]
    with lane.admit(large):
        log.append("large in again")  # the slot was given back
    assert log[-1] == "large in again"


def test_a_waiting_large_file_runs_after_the_running_one(files: tuple[Path, Path]) -> None:
    _, large = files
    lane = serving.LargeUploadLane(threshold_bytes=100, running=1, waiting=1)
    log: list[str] = []
    release = threading.Event()
    holder = hold(lane, large, log, release)

    def second() -> None:
        with lane.admit(large):
            log.append("second in")

    waiter = threading.Thread(target=second)
    waiter.start()
    release.set()
    holder.join()
    waiter.join()
    assert log == ["first in", "first out", "second in"]


def test_lane_lets_a_missing_file_through_to_the_decoder(tmp_path: Path) -> None:
    assert not serving.LargeUploadLane(threshold_bytes=0).is_large(tmp_path / "gone.wav")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_exit_signals_set_the_stop_event_instead_of_killing() -> None:
    # In a fresh interpreter, as the app runs: delivered to this test process after test_reproduce_teacher's
    # in-process training run, SIGTERM crashed it (a segfault outside Python; which native state, not found).
    script = """
import os, signal, serving
for name in ("SIGTERM", "SIGINT", "SIGHUP"):
    stop = serving.stop_on_exit_signals()
    os.kill(os.getpid(), getattr(signal, name))
    serving.wait_for(stop)  # returns only because the handler set it
    print(name, stop.is_set())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(serving.__file__).parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["SIGTERM", "True", "SIGINT", "True", "SIGHUP", "True"]


def test_cannot_listen_names_a_busy_port_and_passes_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serving.cannot_listen("127.0.0.1", port)
        assert serving.cannot_listen("0.0.0.0", port), "all interfaces include the taken loopback port"
    assert serving.cannot_listen("127.0.0.1", serving.free_port("127.0.0.1")) is None

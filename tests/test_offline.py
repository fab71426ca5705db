"""Nothing leaves the machine: a CLI prediction and the app (start, one API prediction, stop) make no DNS query and
no connection off this computer, and OpenVINO writes no client id into the home folder.

Each program runs under strace (tests/network_trace.py) with HOME set to an empty folder and without the
environment variables that would switch telemetry off from outside, so only what coughkd does in code keeps them
quiet. The desktop build gets the same check in tests/test_build_exe.py.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from build import smoke
from tests import network_trace
from tests.test_app import REPO, TELEGRAM, shipped_or_fixture_model

needs_strace = pytest.mark.skipif(network_trace.STRACE is None, reason="strace is not installed")

SAMPLE_LOG = """\
101  connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
101  connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0
102  connect(9, {sa_family=AF_INET, sin_port=htons(7860), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
102  sendto(4, ""..., 1, 0, {sa_family=AF_INET6, sin6_port=htons(9), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 1
103  connect(5, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "2a00:1450:4001:80b::200e", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH
104  sendmsg(6, {msg_name={sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, \
msg_namelen=16}, 0) = 40
105  connect(8, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = 0
106  connect(3, {sa_family=AF_UNIX, sun_path="/run/systemd/resolve/io.systemd.Resolve"}, 42) = 0
"""


def test_trace_parser_flags_dns_and_remote_peers_only() -> None:
    found = network_trace.leaks(SAMPLE_LOG)
    assert [(a.syscall, a.address, a.port) for a in found] == [
        ("connect", "10.255.255.53", 53),
        ("connect", "2a00:1450:4001:80b::200e", 443),
        ("sendmsg", "127.0.0.53", 53),  # a DNS query to a loopback resolver is still a DNS query
        ("connect", "/run/systemd/resolve/io.systemd.Resolve", None),
    ]
    assert len(network_trace.attempts(SAMPLE_LOG)) == 8


def test_importing_coughkd_switches_telemetry_off_before_the_libraries_load(tmp_path: Path) -> None:
    probe = ("import sys, os, coughkd; import openvino, gradio; "
             "print(sys.modules['openvino_telemetry'], os.environ['GRADIO_ANALYTICS_ENABLED'], "
             "os.environ['HF_HUB_DISABLE_TELEMETRY'])")
    # a user's own setting does not turn analytics back on
    env = {**network_trace.clean_environment(tmp_path), "GRADIO_ANALYTICS_ENABLED": "True"}
    done = subprocess.run([sys.executable, "-c", probe], check=False, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "False", "1"]


@needs_strace
def test_cli_prediction_sends_nothing(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    home, log = tmp_path / "home", tmp_path / "strace.log"
    home.mkdir()
    program = [sys.executable, "-m", "coughkd", "predict", str(TELEGRAM), "--json",
               "--model", str(shipped_or_fixture_model(tmp_path_factory))]
    done = subprocess.run(network_trace.command(log, program), check=False, cwd=REPO,
                          env=network_trace.clean_environment(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert '"covid_probability"' in done.stdout
    network_trace.assert_offline(log, home)


@needs_strace
@pytest.mark.slow
def test_app_start_prediction_and_shutdown_send_nothing(tmp_path: Path,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    home, log = tmp_path / "home", tmp_path / "strace.log"
    home.mkdir()
    program = [sys.executable, str(REPO / "app.py"), "--no-browser", "--port", "0",
               "--model", str(shipped_or_fixture_model(tmp_path_factory))]
    with smoke.serve(network_trace.command(log, program), tmp_path / "app.log", cwd=REPO,
                     env=network_trace.clean_environment(home)) as server:
        result = smoke.predict(server.url, TELEGRAM)
    assert "covid_probability" in result, result
    network_trace.assert_offline(log, home)

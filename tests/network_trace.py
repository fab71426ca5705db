"""Watch a program's sockets with strace: every connect/sendto/sendmsg/sendmmsg it or its children make, and which
of them tried to reach another machine or asked a name server.

Used by tests/test_offline.py (CLI and app) and tests/test_build_exe.py (the desktop build). A DNS query counts
even when it goes to a resolver on loopback (systemd-resolved listens on 127.0.0.53): the name it asks for is
the leak.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

STRACE = shutil.which("strace")
# Any of these set outside would silence a library without coughkd's help, and hide a regression.
OUTSIDE_SWITCHES = ("CI", "TF_BUILD", "JENKINS_URL", "GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY",
                    "HF_HUB_OFFLINE", "DO_NOT_TRACK")
CLIENT_ID = Path("intel") / "openvino_ga_cid"  # written by OpenVINO's telemetry on first import
DNS_PORT = 53
RESOLVER_SOCKETS = ("/run/systemd/resolve/io.systemd.Resolve",)  # name lookups through systemd-resolved's varlink
_CALL = re.compile(r"^\d+\s+(connect|sendto|sendmsg|sendmmsg)\(")
_INET = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'sin6_port=htons\((\d+)\),.*?inet_pton\(AF_INET6, "([^"]+)"')
_UNIX = re.compile(r'sun_path="([^"]+)"')


@dataclass(frozen=True)
class Attempt:
    """One socket call that named a peer."""

    syscall: str
    address: str
    port: int | None
    line: str

    @property
    def is_dns(self) -> bool:
        return self.port == DNS_PORT or self.address in RESOLVER_SOCKETS

    @property
    def is_loopback(self) -> bool:
        if self.port is None:
            return True  # a local (AF_UNIX) socket
        ip = ipaddress.ip_address(self.address)
        mapped = getattr(ip, "ipv4_mapped", None)
        return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def command(log: Path, program: list[str]) -> list[str]:
    """`program` run under strace, following every thread and child, writing the socket calls to `log`.

    With `-o FILE PROG`, strace blocks fatal signals, so SIGTERM sent to the process group reaches only the program,
    and its shutdown is traced too.
    """
    if STRACE is None:
        raise RuntimeError("strace is not installed")
    return [STRACE, "-f", "-qq", "-s", "0", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-e", "signal=none",
            "-o", str(log), *program]


def attempts(log_text: str) -> list[Attempt]:
    """Every connect/sendto/sendmsg/sendmmsg in an strace log that names an AF_INET, AF_INET6 or AF_UNIX peer."""
    found = []
    for line in log_text.splitlines():
        call = _CALL.match(line)
        if call is None:
            continue
        if inet := _INET.search(line) or _INET6.search(line):
            found.append(Attempt(call[1], inet[2], int(inet[1]), line))
        elif unix := _UNIX.search(line):
            found.append(Attempt(call[1], unix[1], None, line))
    return found


def leaks(log_text: str) -> list[Attempt]:
    """The attempts a program that works offline must never make: any DNS query, any peer off this machine."""
    return [a for a in attempts(log_text) if a.is_dns or not a.is_loopback]


def summary(found: list[Attempt]) -> str:
    """Counts and the first few lines, for assertion messages and the report."""
    dns = sum(a.is_dns for a in found)
    head = "\n".join(a.line for a in found[:10])
    return f"{len(found)} outside attempts ({dns} DNS queries, {len(found) - dns} other):\n{head}"


def clean_environment(home: Path) -> dict[str, str]:
    """This process's environment with an empty HOME and no telemetry switches of its own (CI=true alone silences
    OpenVINO's), so only what coughkd does in code keeps the libraries quiet."""
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE_SWITCHES}
    return {**env, "HOME": str(home)}


def assert_offline(log: Path, home: Path) -> None:
    """No DNS query and no peer off this machine in the strace log; no OpenVINO client id in `home`."""
    found = leaks(log.read_text())
    assert not found, summary(found)
    assert not (home / CLIENT_ID).exists(), f"OpenVINO wrote {home / CLIENT_ID}"

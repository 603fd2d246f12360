"""Fixtures for the launch tests: a process registry that stops everything it started
(by pid, in teardown), a served directory, inetd-style socket hand-over, and a
private /dev/log to read what ftpd sends to syslog."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ftpsupport import DEADLINE, stop_pid
from lhelpers import ftpd_exe, kill_pids, pids_with

FILES = {"README.txt": b"hello from ftpd\r\n", "pub/data.bin": bytes(range(256)) * 64}


class Processes:
    """Everything a test started: Popen objects, and markers naming processes the
    test did not start directly (children of xinetd) but must not leave behind."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.markers: list[str] = []

    def start(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, **kwargs)
        self.procs.append(proc)
        return proc

    def mark(self, marker: str) -> None:
        self.markers.append(marker)

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            stop_pid(proc)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for marker in self.markers:
            kill_pids(pids_with(marker))


@pytest.fixture
def procs():
    registry = Processes()
    try:
        yield registry
    finally:
        registry.cleanup()


@pytest.fixture
def ftpd_logger():
    """The ``ftpd`` logger as it was: setup() replaces its handler."""
    root = logging.getLogger("ftpd")
    saved = (list(root.handlers), root.level, root.propagate)
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        root.propagate = saved[2]


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A directory to serve, with a couple of files."""
    root = tmp_path / "root"
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def ftpd() -> str:
    return ftpd_exe()


@pytest.fixture
def inetd_spawn(procs: Processes) -> Callable[..., subprocess.Popen]:
    """``inetd_spawn(argv, sock)``: start *argv* with fds 0, 1 and 2 all *sock*, as inetd
    does, and close our copy of it."""

    def spawn(argv: list[str], sock: socket.socket, **kwargs: Any) -> subprocess.Popen:
        try:
            return procs.start(argv, stdin=sock.fileno(), stdout=sock.fileno(),
                               stderr=sock.fileno(), **kwargs)
        finally:
            sock.close()

    return spawn


# -- a private /dev/log -----------------------------------------------------------------
NAMESPACE_SCRIPT = """set -e
D=$1; shift
for n in null zero random urandom; do mount --bind "/dev/$n" "$D/$n"; done
mount --bind "$D" /dev
exec "$@"
"""
_namespace_ok: bool | None = None


def _namespaces_work() -> bool:
    global _namespace_ok
    if _namespace_ok is None:
        _namespace_ok = False
        if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("mount"):
            try:
                done = subprocess.run(["unshare", "--mount", "--propagation", "private",
                                       "true"], capture_output=True, timeout=DEADLINE)
                _namespace_ok = done.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                pass
    return _namespace_ok


class Syslog:
    """A /dev/log of our own: ``prefix`` runs a command in a private mount namespace
    whose /dev holds null, zero, random, urandom and ``log``, a datagram socket that
    this object reads. libc's syslog() and logging's SysLogHandler both write there."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ftpd-dev-", dir="/tmp"))
        for name in ("null", "zero", "random", "urandom"):
            (self.dir / name).touch()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.dir / "log"))
        os.chmod(self.dir / "log", 0o666)
        self.prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       NAMESPACE_SCRIPT, "sh", str(self.dir)]
        self.lines: list[str] = []

    def read(self, wait: float = 0.3) -> list[str]:
        """Messages so far, after waiting up to *wait* seconds for more."""
        self.sock.settimeout(wait)
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return self.lines
            self.lines.append(data.decode("utf-8", "replace").rstrip("\x00\n"))
            self.sock.settimeout(0.05)

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def syslog() -> Syslog:
    if not _namespaces_work():
        pytest.skip("needs root and unshare(1) to give ftpd a private /dev/log")
    capture = Syslog()
    try:
        yield capture
    finally:
        capture.close()

"""Fixtures for the hardening tests: the real ``ftpd`` command in a subprocess on
127.0.0.1, started as ``[sys.executable, "-m", "ftpd", ...]`` on a free port (retried
only when the port was taken meanwhile), waited for with a deadline, and stopped by
its pid in teardown (SIGTERM, a bounded wait, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hhelpers import DEADLINE, HOST, PASSWORD, USER, Control, free_port, wait_until

BIND_ATTEMPTS = 5


@dataclass
class Ftpd:
    proc: subprocess.Popen
    port: int
    root: Path
    log_path: Path
    argv: list[str]
    stopped: bool = False

    def control(self, login: bool = False, **kwargs: Any) -> Control:
        c = Control(self.port, **kwargs)
        if login:
            c.login()
        return c

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if not self.stopped:
            self.stopped = True
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(DEADLINE)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(DEADLINE)
        return self.proc.returncode


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _has_option(args: tuple[str, ...], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def start_ftpd(workdir: Path, *args: str, root: Path | None = None,
               user: bool = True) -> Ftpd:
    """``python -m ftpd -l 127.0.0.1:PORT -r ROOT -u user -P pw ARGS``. Unless the test
    sets them: no failed-login delay and a short graceful drain (so teardown is quick)."""
    if root is None:
        root = workdir / "root"
        root.mkdir(exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    defaults: list[str] = []
    if not _has_option(args, "--failed-login-delay"):
        defaults += ["--failed-login-delay", "0"]
    if not _has_option(args, "--shutdown-timeout"):
        defaults += ["--shutdown-timeout", "2"]
    for attempt in range(BIND_ATTEMPTS):
        port = free_port()
        argv = [sys.executable, "-m", "ftpd", "-l", f"{HOST}:{port}", "-r", str(root), "-v",
                *defaults]
        if user:
            argv += ["-u", USER, "-P", PASSWORD]
        argv += list(args)
        log_path = logs / f"ftpd-{port}-{attempt}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        server = Ftpd(proc, port, root, log_path, argv)
        try:
            wait_until(lambda p=proc, n=port: p.poll() is not None or _accepting(n),
                       f"ftpd to listen on port {port}")
        except AssertionError:
            server.stop()
            raise
        if proc.poll() is None:
            return server
        if "cannot listen" not in server.log():  # a real failure, not a port race
            raise AssertionError(f"ftpd exited with {proc.returncode}: {server.log()}")
    raise AssertionError(f"ftpd could not bind a free port in {BIND_ATTEMPTS} attempts")


@pytest.fixture
def ftpd(tmp_path: Path):
    """Factory: ``ftpd(*extra_args, root=..., user=True)``; every server it started is
    stopped by pid afterwards, and must not have logged a traceback."""
    servers: list[Ftpd] = []

    def start(*args: str, **kwargs: Any) -> Ftpd:
        server = start_ftpd(tmp_path, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    problems = []
    for server in servers:
        server.stop()
        if "Traceback" in server.log():
            problems.append(f"a traceback in the ftpd log:\n{server.log()}")
    assert not problems, "\n".join(problems)

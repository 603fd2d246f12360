"""Fixtures for the functional tests: the real ``ftpd`` command in a subprocess on
127.0.0.1 or [::1], the embedded server, and test data.

Each server is started on a port picked by binding and closing a socket (retried
only when the server reports that the port was taken meanwhile), waited for with a
deadline, and stopped by pid in teardown: SIGTERM, a bounded wait, SIGKILL."""

from __future__ import annotations

import ftplib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fhelpers import DEADLINE, LoopFTP, connect, free_port, wait_until

USER, PASSWORD = "user", "pw"
BIND_ATTEMPTS = 5


@dataclass
class FtpdProcess:
    """A running ``ftpd`` subprocess."""

    proc: subprocess.Popen
    host: str
    port: int
    root: Path
    log_path: Path
    argv: list[str]
    user: str = USER
    password: str = PASSWORD
    check_log: bool = True
    stopped: bool = field(default=False)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, path: str = "", user: bool = True) -> str:
        cred = f"{self.user}:{self.password}@" if user else ""
        return f"ftp://{cred}{self.netloc}/{path.lstrip('/')}"

    def ftp(self, user: str | None = USER, password: str = PASSWORD,
            cls: type[ftplib.FTP] = LoopFTP, **kwargs: Any) -> ftplib.FTP:
        """An ftplib client, connected and (unless *user* is None) logged in."""
        return connect(self.host, self.port, user, password, cls, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def stop(self) -> int:
        """SIGTERM, wait (bounded), SIGKILL if needed; returns the exit status."""
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


def _accepting(host: str, port: int) -> bool:
    """A probe session: greeting, QUIT, and the server's close, so that it is gone from
    the server's books (connection caps) before the test begins."""
    try:
        with socket.create_connection((host, port), timeout=DEADLINE) as s:
            s.sendall(b"QUIT\r\n")
            while s.recv(4096):
                pass
            return True
    except OSError:
        return False


def start_ftpd(workdir: Path, *args: str, root: Path | None = None, host: str = "127.0.0.1",
               user: tuple[str, str] | None = (USER, PASSWORD), env: dict[str, str] | None = None,
               check_log: bool = True) -> FtpdProcess:
    """Start ``python -m ftpd -l HOST:PORT -r ROOT [-u USER -P PW] ARGS`` and wait until
    it accepts connections."""
    if root is None:
        root = workdir / "root"
        root.mkdir(exist_ok=True)
    for attempt in range(BIND_ATTEMPTS):
        port = free_port(host)
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv = [sys.executable, "-m", "ftpd", "-l", listen, "-r", str(root), "-v",
                "--failed-login-delay", "0", "--shutdown-timeout", "5"]
        if user is not None:
            argv += ["-u", user[0], "-P", user[1]]
        argv += list(args)
        log_path = workdir / f"ftpd-{port}-{attempt}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env={**os.environ, **(env or {})})
        server = FtpdProcess(proc, host, port, root, log_path, argv, check_log=check_log)
        if user is not None:
            server.user, server.password = user
        try:
            wait_until(lambda p=proc, n=port: p.poll() is not None or _accepting(host, n),
                       f"ftpd to listen on {listen}")
        except AssertionError:
            server.stop()
            raise
        if proc.poll() is None:
            return server
        if "cannot listen" not in server.log():  # a real failure, not a port race
            raise AssertionError(f"ftpd exited with {proc.returncode}: {server.log()}")
    raise AssertionError(f"ftpd could not bind a free port in {BIND_ATTEMPTS} attempts")


def _finish(servers: list[FtpdProcess]) -> None:
    problems = []
    for server in servers:
        was_running = not server.stopped and server.proc.poll() is None
        status = server.stop()
        if was_running and status != 0:
            problems.append(f"ftpd exited with {status} after SIGTERM:\n{server.log()}")
        if server.check_log and "Traceback" in server.log():
            problems.append(f"a traceback in the ftpd log:\n{server.log()}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def ftpd_server(tmp_path: Path):
    """Factory: ``ftpd_server(*extra_args, root=..., user=(name, pw) | None, env=...)``."""
    servers: list[FtpdProcess] = []

    def start(*args: str, **kwargs: Any) -> FtpdProcess:
        server = start_ftpd(tmp_path, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    _finish(servers)


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def ftpd_server6(tmp_path: Path):
    """The same factory, listening on [::1]."""
    if not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    servers: list[FtpdProcess] = []

    def start(*args: str, **kwargs: Any) -> FtpdProcess:
        kwargs.setdefault("host", "::1")
        server = start_ftpd(tmp_path, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    _finish(servers)


@pytest.fixture(scope="session")
def payload() -> bytes:
    """A few MB of random bytes (every byte value, CR and LF included)."""
    return os.urandom(3 * 1024 * 1024 + 12345)

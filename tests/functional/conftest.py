"""Fixtures for the functional tests: the real ``ftpd`` command in a subprocess on
127.0.0.1 or [::1], the embedded server, and test data.

Each server is started on a port picked by binding and closing a socket (retried
only when the server reports that the port was taken meanwhile), waited for with a
deadline, and stopped by pid in teardown: SIGTERM, a bounded wait, SIGKILL."""

from __future__ import annotations

import ftplib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fhelpers import LoopFTP, connect
from ftpsupport import FtpdProcess, has_ipv6_loopback, netloc, quits, start_ftpd

USER, PASSWORD = "user", "pw"


class FunctionalFtpd(FtpdProcess):
    """A running ``ftpd`` subprocess, serving *root*, with ftplib clients and URLs."""

    def __init__(self, args: list[str], *, root: Path, check_log: bool = True,
                 user: tuple[str, str] | None = (USER, PASSWORD), **kwargs: Any) -> None:
        super().__init__(args, **kwargs)
        self.root, self.check_log = root, check_log
        self.user, self.password = user if user is not None else (USER, PASSWORD)

    @property
    def netloc(self) -> str:
        return netloc(self.host, self.port)

    def url(self, path: str = "", user: bool = True) -> str:
        cred = f"{self.user}:{self.password}@" if user else ""
        return f"ftp://{cred}{self.netloc}/{path.lstrip('/')}"

    def ftp(self, user: str | None = USER, password: str = PASSWORD,
            cls: type[ftplib.FTP] = LoopFTP, **kwargs: Any) -> ftplib.FTP:
        """An ftplib client, connected and (unless *user* is None) logged in."""
        return connect(self.host, self.port, user, password, cls, **kwargs)


def start_functional(workdir: Path, *args: str, root: Path | None = None,
                     host: str = "127.0.0.1", user: tuple[str, str] | None = (USER, PASSWORD),
                     env: dict[str, str] | None = None, check_log: bool = True) -> FunctionalFtpd:
    """Start ``python -m ftpd -l HOST:PORT -r ROOT [-u USER -P PW] ARGS`` and wait until
    it accepts connections (a probe session QUITs, so that it is gone from the server's
    books, connection caps included, before the test begins)."""
    if root is None:
        root = workdir / "root"
        root.mkdir(exist_ok=True)

    def spawn(ports: list[int], attempt: int) -> FunctionalFtpd:
        argv = ["-l", netloc(host, ports[0]), "-r", str(root), "-v",
                "--failed-login-delay", "0", "--shutdown-timeout", "5"]
        if user is not None:
            argv += ["-u", user[0], "-P", user[1]]
        return FunctionalFtpd([*argv, *args], root=root, check_log=check_log, user=user,
                              host=host, port=ports[0], env=env,
                              log_path=workdir / f"ftpd-{ports[0]}-{attempt}.log")

    return start_ftpd(spawn, host=host, probe=quits)


def _finish(servers: list[FunctionalFtpd]) -> None:
    problems = []
    for server in servers:
        was_running = not server.stopped and server.alive()
        status = server.stop()
        if was_running and status != 0:
            problems.append(f"ftpd exited with {status} after SIGTERM:\n{server.log()}")
        if server.check_log and "Traceback" in server.log():
            problems.append(f"a traceback in the ftpd log:\n{server.log()}")
    assert not problems, "\n".join(problems)


def _servers(tmp_path: Path, **defaults: Any) -> Iterator[Callable[..., FunctionalFtpd]]:
    """A factory fixture's body: start servers, then stop and check every one."""
    servers: list[FunctionalFtpd] = []

    def start(*args: str, **kwargs: Any) -> FunctionalFtpd:
        server = start_functional(tmp_path, *args, **{**defaults, **kwargs})
        servers.append(server)
        return server

    yield start
    _finish(servers)


@pytest.fixture
def ftpd_server(tmp_path: Path):
    """Factory: ``ftpd_server(*extra_args, root=..., user=(name, pw) | None, env=...)``."""
    yield from _servers(tmp_path)


@pytest.fixture
def ftpd_server6(tmp_path: Path):
    """The same factory, listening on [::1]."""
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    yield from _servers(tmp_path, host="::1")


@pytest.fixture(scope="session")
def payload() -> bytes:
    """A few MB of random bytes (every byte value, CR and LF included)."""
    return os.urandom(3 * 1024 * 1024 + 12345)


@pytest.fixture(scope="session")
def client_certs(tmp_path_factory: pytest.TempPathFactory):
    """A test CA and a server certificate for the real-client matrix (made with trustme)."""
    from clientsupport import make_certs

    return make_certs(tmp_path_factory.mktemp("client-certs"))


@pytest.fixture
def client_ftpd(tmp_path: Path, client_certs):
    """Factory: ``client_ftpd(mode, *extra_args, root=...)`` with *mode* ``plain``,
    ``explicit`` (AUTH TLS) or ``implicit`` (an implicit-FTPS listener too); stopped by
    pid and checked (exit status, no traceback in its log) in teardown."""
    from clientsupport import start_client_server

    servers = []

    def start(mode: str, *args: str, **kwargs: Any):
        server = start_client_server(tmp_path, mode, client_certs, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    problems = [problem for server in servers for problem in server.finish()]
    assert not problems, "\n".join(problems)

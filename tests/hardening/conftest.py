"""Fixtures for the hardening tests: the real ``ftpd`` command in a subprocess on
127.0.0.1, started as ``[sys.executable, "-m", "ftpd", ...]`` on a free port (retried
only when the port was taken meanwhile), waited for with a deadline, and stopped by
its pid in teardown (SIGTERM, a bounded wait, then SIGKILL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ftpsupport import FtpdProcess, start_ftpd
from hhelpers import HOST, PASSWORD, USER, Control


class Ftpd(FtpdProcess):
    """A running ``ftpd`` subprocess serving *root*, with raw control clients."""

    def __init__(self, args: list[str], *, root: Path, **kwargs: Any) -> None:
        super().__init__(args, **kwargs)
        self.root = root

    def control(self, login: bool = False, **kwargs: Any) -> Control:
        c = Control(self.port, **kwargs)
        if login:
            c.login()
        return c


def _has_option(args: tuple[str, ...], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def start_hardening(workdir: Path, *args: str, root: Path | None = None,
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

    def spawn(ports: list[int], attempt: int) -> Ftpd:
        argv = ["-l", f"{HOST}:{ports[0]}", "-r", str(root), "-v", *defaults]
        if user:
            argv += ["-u", USER, "-P", PASSWORD]
        return Ftpd([*argv, *args], root=root, host=HOST, port=ports[0],
                    log_path=logs / f"ftpd-{ports[0]}-{attempt}.log")

    return start_ftpd(spawn, host=HOST)


@pytest.fixture
def ftpd(tmp_path: Path):
    """Factory: ``ftpd(*extra_args, root=..., user=True)``; every server it started is
    stopped by pid afterwards, and must not have logged a traceback."""
    servers: list[Ftpd] = []

    def start(*args: str, **kwargs: Any) -> Ftpd:
        server = start_hardening(tmp_path, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    problems = []
    for server in servers:
        server.stop()
        if "Traceback" in server.log():
            problems.append(f"a traceback in the ftpd log:\n{server.log()}")
    assert not problems, "\n".join(problems)

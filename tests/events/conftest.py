"""Fixtures for the events tests: real System V queues that are always removed, sample
events, and ftpd-eventd subprocesses that are always killed."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ftpsupport import DEADLINE, wait_until

from ftpd.core.events import SessionInfo, TransferEvent

REPO = Path(__file__).resolve().parents[2]


def wait_for_file(path: Path, timeout: float = DEADLINE, lines: int = 1) -> str:
    def ready():
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return text if text.count("\n") >= lines else None

    return wait_until(ready, f"{lines} line(s) in {path}", timeout)


ALICE = SessionInfo("aSW2YAAqAAEA", "192.0.2.10", "alice")
ANON = SessionInfo("aSW2YAAqAAEB", "198.51.100.7", "anonymous", "guest@example.org", True)


def upload(path: str = "/incoming/report.pdf", info: SessionInfo = ALICE, **kw) -> TransferEvent:
    fields = dict(session=info, time=1764079260.25, direction="upload", path=path,
                  bytes=1048576, duration=2.15, status="OK", type="I", offset=0,
                  file_size=1048576, command="STOR")
    fields.update(kw)
    return TransferEvent(**fields)


@pytest.fixture
def queue_key():
    """A System V message queue key nobody uses; whatever queue it names is removed after."""
    sysv_ipc = pytest.importorskip("sysv_ipc")
    rng = random.Random()
    while True:
        key = rng.randint(0x10000000, 0x7FFFFFF0)
        try:
            sysv_ipc.MessageQueue(key)
        except sysv_ipc.ExistentialError:
            break
    try:
        yield key
    finally:
        try:
            sysv_ipc.MessageQueue(key).remove()
        except sysv_ipc.ExistentialError:
            pass


class Eventd:
    """An ftpd-eventd subprocess whose stderr is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *(env or {}).pop("PYTHONPATH", "").split(os.pathsep)]).rstrip(os.pathsep)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ftpd.events.eventd", *args], env=full_env, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, count: int = 1) -> list[re.Match[str]]:
        rx = re.compile(pattern)

        def found():
            hits = [m for m in map(rx.search, list(self.lines)) if m]
            if len(hits) >= count:
                return hits
            if self.proc.poll() is not None and not self._reader.is_alive():
                pytest.fail(f"ftpd-eventd exited {self.proc.returncode}: {self.lines}")
            return None

        return wait_until(found, what=f"{pattern!r} x{count} in stderr {self.lines}")

    def port(self) -> int:
        return int(self.wait_for(r"reading udp 127\.0\.0\.1:(\d+)")[0].group(1))

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(DEADLINE)
        self._reader.join(DEADLINE)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(DEADLINE)


@pytest.fixture
def eventd():
    started: list[Eventd] = []

    def start(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Eventd:
        daemon = Eventd(list(args), env, cwd)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.kill()

"""A private redis-server for the tests (Debian's /usr/bin/redis-server on 127.0.0.1, a free
port, no persistence, stopped by pid) and a tiny RESP client written here, independently of
ftpd.events.resp, to look at what ftpd wrote."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ftpsupport import DEADLINE, accepts, free_port, stop_pid, wait_for_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HOST = "127.0.0.1"


class RedisServer:
    """One redis-server process; stop() and start() again keep the port (a restart)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port(HOST)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir),
             "--protected-mode", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(HOST, self.port, time.monotonic() + DEADLINE, self.proc, accepts)

    def stop(self) -> None:
        """SIGKILL (a paused server too, without letting it answer first)."""
        if self.proc is not None:
            stop_pid(self.proc, signal.SIGKILL)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, nothing is ever answered."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def client(self) -> RespClient:
        return RespClient(HOST, self.port)


class RespClient:
    """Blocking, one command at a time; error replies raise RuntimeError."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), DEADLINE)
        self.file = self.sock.makefile("rb")

    def __call__(self, *args: str | bytes | int) -> Any:
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            raw = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _reply(self) -> Any:
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            if int(rest) < 0:
                return None
            data = self.file.read(int(rest) + 2)
            return data[:-2]
        if kind == b"*":
            if int(rest) < 0:
                return None
            return [self._reply() for _ in range(int(rest))]
        raise AssertionError(f"not RESP: {line!r}")

    def entries(self, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Every entry of *stream*, as (id, {field: value}), fields in their order."""
        found = []
        for entry_id, flat in self("XRANGE", stream, "-", "+"):
            found.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
        return found

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def running_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """For a fixture: a started RedisServer, always stopped afterwards."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()

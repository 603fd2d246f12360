"""Helpers for the functional tests: free ports, bounded waits, an ftplib client that
keeps its sockets on loopback, a raw control-connection client, tree comparison.

Every wait here has a deadline; nothing retries a test."""

from __future__ import annotations

import ftplib
import hashlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEADLINE = 10.0  # seconds: the longest any single wait in these tests may take


def family_of(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str) -> int:
    """A port that was free a moment ago on *host* (the caller copes with a race)."""
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE,
               interval: float = 0.02) -> Any:
    """Poll *predicate* until it returns something true, at most *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def sha256(data: bytes | str | Path) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    with open(data, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(root: str | Path, ignore: tuple[bytes, ...] = ()) -> dict[bytes, str]:
    """Relative path (bytes, so non-UTF-8 names compare exactly) -> sha256 of every file."""
    base = os.fsencode(str(root))
    out: dict[bytes, str] = {}
    for dirpath, _dirs, files in os.walk(base):
        for name in files:
            if name in ignore:
                continue
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, base)] = sha256(Path(os.fsdecode(full)))
    return out


class LoopFTP(ftplib.FTP):
    """ftplib, but active mode listens on the control connection's local address
    (never on every interface), and ``extended=True`` uses EPSV/EPRT on IPv4 too."""

    extended = False

    def makepasv(self) -> tuple[str, int]:
        if self.extended or self.af == socket.AF_INET6:
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return super().makepasv()

    def makeport(self) -> socket.socket:
        host = self.sock.getsockname()[0]
        sock = socket.create_server((host, 0), family=self.af, backlog=1)
        port = sock.getsockname()[1]
        try:
            if self.extended or self.af == socket.AF_INET6:
                proto = 1 if self.af == socket.AF_INET else 2
                self.voidcmd(f"EPRT |{proto}|{host}|{port}|")
            else:
                self.sendport(host, port)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(DEADLINE)
        return sock


class ExtFTP(LoopFTP):
    extended = True


def connect(host: str, port: int, user: str | None = "user", password: str = "pw",
            cls: type[ftplib.FTP] = LoopFTP, **kwargs: Any) -> ftplib.FTP:
    ftp = cls(timeout=DEADLINE, **kwargs)
    ftp.connect(host, port)
    if user is not None:
        ftp.login(user, password)
    return ftp


class RawControl:
    """A control connection spoken byte for byte: for bad input and urgent data."""

    def __init__(self, host: str, port: int, timeout: float = DEADLINE) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        self.transcript: list[str] = []  # every reply line received
        self.greeting = self.reply()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawControl:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(self, data: bytes, flags: int = 0) -> None:
        self.sock.sendall(data, flags)

    def cmd(self, line: str | bytes) -> tuple[int, str]:
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        self.send(line + b"\r\n")
        return self.reply()

    def _line(self) -> str:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self._buf!r}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\n")
        line = raw.rstrip(b"\r").decode("utf-8", "surrogateescape")
        self.transcript.append(line)
        return line

    def reply(self) -> tuple[int, str]:
        """One whole reply: (code, all its lines joined by newlines)."""
        first = self._line()
        assert len(first) >= 4 and first[:3].isdigit() and first[3] in " -", first
        lines = [first]
        if first[3] == "-":
            end = first[:3] + " "
            while True:
                line = self._line()
                lines.append(line)
                if line.startswith(end):
                    break
        return int(first[:3]), "\n".join(lines)

    def wait_closed(self, timeout: float = DEADLINE) -> bool:
        """True once the server closed the connection (whatever it still sent is read)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self._buf += chunk
        return False

    def login(self, user: str = "user", password: str = "pw") -> None:
        code, text = self.cmd(f"USER {user}")
        assert code == 331, text
        code, text = self.cmd(f"PASS {password}")
        assert code == 230, text

    def pasv(self) -> tuple[str, int]:
        code, text = self.cmd("PASV")
        assert code == 227, text
        return ftplib.parse227(text)

    def epsv(self) -> tuple[str, int]:
        code, text = self.cmd("EPSV")
        assert code == 229, text
        return ftplib.parse229(text, self.sock.getpeername())

"""Helpers for the hardening tests: a strict raw control client, data connections with
a chosen receive buffer, an NcFTPd event receiver on UDP. Free ports, bounded waits and
the control client it builds on are ``ftpsupport``'s.

Every wait here has a deadline; every loop has a bound on its count."""

from __future__ import annotations

import re
import resource
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftpsupport import DEADLINE, RawControl, wait_until

HOST = "127.0.0.1"
USER, PASSWORD = "user", "pw"
TEMP_PREFIX = ".ftpd-upload-"  # SPEC §3: hidden temporary names of atomic uploads


def raise_nofile(wanted: int) -> None:
    """Raise this process's RLIMIT_NOFILE soft limit to *wanted* (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX))


class Control(RawControl):
    """A control connection spoken byte for byte, checking that every reply is
    well-formed RFC 959 (CRLF lines, ``NNN text`` or ``NNN-`` ... ``NNN text``, the code
    from 100 to 599); ``greet=False`` leaves the greeting unread."""

    first_line = re.compile(r"^([1-5][0-9][0-9])([ -])")
    strict = True

    def __init__(self, port: int, host: str = HOST, timeout: float = DEADLINE,
                 greet: bool = True) -> None:
        super().__init__(host, port, timeout, greet)

    ok = RawControl.expect
    closed = RawControl.wait_closed

    def data(self, rcvbuf: int | None = None, bind: str | None = None) -> socket.socket:
        """PASV and connect the data socket (before the transfer command)."""
        host, port = self.pasv()
        return open_data(host, port, rcvbuf=rcvbuf, bind=bind)

    def pending_replies(self) -> list[tuple[int, str]]:
        """Parse every whole reply already in the buffer (after ``closed``)."""
        out = []
        for _ in range(1000):
            if b"\n" not in self._buf:
                break
            out.append(self.reply(timeout=0.5))
        return out


def open_data(host: str, port: int, rcvbuf: int | None = None,
              bind: str | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if bind is not None:
        sock.bind((bind, 0))
    sock.settimeout(DEADLINE)
    sock.connect((host, port))
    return sock


def read_all(sock: socket.socket, limit: int = 1 << 30) -> bytes:
    out = bytearray()
    sock.settimeout(DEADLINE)
    for _ in range(1 << 20):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        out += chunk
        assert len(out) <= limit, "more data than expected"
    return bytes(out)


def reset_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a RST, not a clean end of data."""
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- NcFTPd event messages over UDP --------------------------------------------------------

def parse_frame(data: bytes) -> list[str]:
    """Tokens of one ``STR\\n%3d\\n`` + body frame (checked strictly)."""
    assert data[:4] == b"STR\n", data[:16]
    assert data[7:8] == b"\n", data[:16]
    length = int(data[4:7].strip())
    body = data[8:]
    assert len(body) == length, (length, len(body))
    assert body.endswith(b"\n"), body[-16:]
    return body[:-1].decode("utf-8", "surrogateescape").split("\n")


class Transfer:
    """The fields of an R/S (download/upload) event, by position."""

    def __init__(self, toks: list[str]) -> None:
        self.toks = toks
        self.type = toks[0]
        self.user = toks[2]
        self.path = toks[6]
        self.bytes = int(toks[7])
        self.status = toks[10]

    def __repr__(self) -> str:
        return f"<{self.type} {self.path} {self.bytes} {self.status}>"


class UdpEvents:
    """A UDP socket on 127.0.0.1 receiving the server's event datagrams in a thread.
    *on_frame* (optional) runs in that thread as each datagram arrives, so a test can
    look at the world at that very moment; what it returns is kept with the frame."""

    def __init__(self, on_frame: Callable[[list[str]], Any] | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.on_frame = on_frame
        self.frames: list[tuple[list[str], Any]] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def spec(self) -> str:
        return f"udp:{HOST}:{self.port}"

    def _run(self) -> None:
        for _ in range(1_000_000):
            if self._stop.is_set():
                return
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                toks = parse_frame(data)
                seen = self.on_frame(toks) if self.on_frame else None
            except BaseException as exc:  # reported by the test, not lost in a thread
                with self._lock:
                    self.errors.append(exc)
                continue
            with self._lock:
                self.frames.append((toks, seen))

    def transfers(self, kind: str) -> list[tuple[Transfer, Any]]:
        with self._lock:
            return [(Transfer(t), seen) for t, seen in self.frames if t[0] == kind]

    def wait_transfers(self, kind: str, count: int,
                       timeout: float = 3.0) -> list[tuple[Transfer, Any]]:
        """Loopback UDP is immediate: a few seconds is plenty for an event to arrive."""
        wait_until(lambda: len(self.transfers(kind)) >= count,
                   f"{count} {kind!r} event(s); have {self.frames}", timeout=timeout)
        assert not self.errors, self.errors
        return self.transfers(kind)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        self.sock.close()

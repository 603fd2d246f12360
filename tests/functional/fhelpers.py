"""Helpers for the functional tests: an ftplib client that keeps its sockets on
loopback, tree comparison. Free ports, bounded waits and the raw control client are
``ftpsupport``'s.

Every wait here has a deadline; nothing retries a test."""

from __future__ import annotations

import ftplib
import os
import socket
from pathlib import Path
from typing import Any

from ftpsupport import DEADLINE, sha256


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

"""The wu-ftpd transfer log (xferlog(5)) as a bus listener: one line per finished transfer,
written with a single append so concurrent writers and logrotate never split a line."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from ftpd.events.bus import Listener

log = logging.getLogger("ftpd.events")

# Whitespace and control characters would break the space-separated fields (ProFTPD's rule).
_BLANK = {c: "_" for c in (*range(0x21), 0x7F)}


def _field(value: str) -> str:
    return value.translate(_BLANK) or "*"


def format_line(event: Any) -> str:
    """One xferlog line for a ``TransferEvent`` (fs.download / fs.upload).

    Fields: current-time transfer-time remote-host file-size filename transfer-type
    special-action-flag direction access-mode username service-name authentication-method
    authenticated-user-id completion-status. The time is the event's (when the transfer
    ended), local, in ctime format; transfer-time is whole seconds, at least 1 as log
    analysers divide by it; anonymous users are logged by the email they gave."""
    info = event.session
    when = time.asctime(time.localtime(event.time))
    seconds = max(1, round(event.duration))
    download = getattr(event, "direction", "download") == "download"
    if info.anonymous:
        access, user = "a", info.email or "anonymous"
    else:
        access, user = "r", info.user
    return (f"{when} {seconds} {_field(info.host)} {event.bytes} {_field(event.path)} "
            f"{'a' if event.type == 'A' else 'b'} _ {'o' if download else 'i'} {access} "
            f"{_field(user)} ftp 0 * {'c' if event.status == 'OK' else 'i'}\n")


class XferLog(Listener):
    """Appends transfer lines to *path* (opened now, before privileges are dropped).
    ``reopen()`` after logrotate has moved the file (SIGHUP)."""

    events = ("fs.download", "fs.upload")

    def __init__(self, path: str, mode: int = 0o644) -> None:
        self.path = path
        self.mode = mode
        self._lock = threading.Lock()
        self._fd = self._open()
        self.errors = 0

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        return os.open(self.path, flags, self.mode)

    def on_event(self, event_data: Any, name: str) -> None:
        self.write(event_data)

    def write(self, event: Any) -> None:
        """Log one transfer; a write error is logged, never raised into the session."""
        line = format_line(event)
        try:
            data = line.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            data = line.encode("utf-8", "replace")
        try:
            with self._lock:
                if self._fd < 0:
                    return
                os.write(self._fd, data)
        except OSError as exc:
            self.errors += 1
            log.error("xferlog %s: %s", self.path, exc.strerror or exc)

    def reopen(self) -> None:
        """Open the path afresh (logrotate moved the old file); on failure keep the old one."""
        try:
            fd = self._open()
        except OSError as exc:
            log.error("xferlog %s: cannot reopen: %s", self.path, exc.strerror or exc)
            return
        with self._lock:
            old, self._fd = self._fd, fd
        if old >= 0:
            os.close(old)

    def close(self) -> None:
        self.detach()
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

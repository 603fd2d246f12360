"""The session log: one INFO line per fact (connect, login accepted or refused, each
transfer, disconnect), each beginning with the session id, written to whatever the log
destination is (stderr, syslog, the journal or a file: the same text everywhere).

A bus listener fed by the events the core raises. Names and paths are the client's
choice, so every such value goes through ``field``: a value that could end the line or
pass for another field (a space, ``"``, ``\\``, a control or non-printable character) is
written double-quoted with backslash escapes, so ``user=x from=1.2.3.4`` reads
``user="x from=1.2.3.4" from=ADDR`` and a log watcher (contrib/fail2ban) cannot be
fooled into blaming another address. ``from=`` is always the line's last field."""

from __future__ import annotations

from typing import Any

from ftpd.events.bus import Listener
from ftpd.log import get_logger

log = get_logger("ftpd.session")

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if ch == " " or ch.isprintable() and not ch.isspace():
        return ch
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _bare(value: str) -> bool:
    return value.isprintable() and not any(ch.isspace() or ch in _ESCAPES for ch in value)


def field(value: str) -> str:
    """*value* as one log field: bare when it is plain, else quoted and escaped."""
    if value and _bare(value):
        return value
    return '"' + "".join(map(_escape, value)) + '"'


def connect_line(event: Any) -> str:
    info = event.session
    return f"[{info.session_id}] CONNECT from={info.host}"


def login_line(event: Any) -> str:
    info = event.session
    return f"[{info.session_id}] LOGIN OK user={field(info.user)} from={info.host}"


def login_failed_line(event: Any) -> str:
    info = event.session
    return f"[{info.session_id}] LOGIN FAILED user={field(event.username)} from={info.host}"


def transfer_line(event: Any) -> str:
    info = event.session
    return (f"[{info.session_id}] {event.direction.upper()} path={field(event.path)} "
            f"bytes={event.bytes} seconds={event.duration:.3f} status={event.status}")


def disconnect_line(event: Any) -> str:
    info = event.session
    return (f"[{info.session_id}] DISCONNECT reason={event.reason} "
            f"files_down={event.files_down} bytes_down={event.bytes_down} "
            f"files_up={event.files_up} bytes_up={event.bytes_up} "
            f"seconds={event.duration:.3f}")


LINES = {
    "session.connect": connect_line,
    "session.login": login_line,
    "session.login-failed": login_failed_line,
    "fs.download": transfer_line,
    "fs.upload": transfer_line,
    "session.disconnect": disconnect_line,
}


class SessionLog(Listener):
    """Writes ``LINES[name](event)`` at INFO; always attached (``-q`` silences it)."""

    events = tuple(LINES)

    def on_event(self, event_data: Any, name: str) -> None:
        log.info("%s", LINES[name](event_data))

    def close(self) -> None:
        self.detach()


def refused_line(session_id: str, host: str, reason: str) -> str:
    """A connection turned away before its session began (--deny, a cap, stopping)."""
    return f"[{session_id}] REFUSED from={host} reason={reason}"

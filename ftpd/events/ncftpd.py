"""NcFTPd-framed event messages (EVENTS.md), bytes in and bytes out: nothing here does I/O.
The token layout is a contract; new fields are only ever appended."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

__all__ = [
    "ENCODED_EVENTS", "MAX_BODY", "MalformedMessage", "encode", "decode", "Event",
    "DownloadEvent", "UploadEvent", "ListingEvent", "DeleteEvent", "MkdirEvent",
    "RenameEvent", "SymlinkEvent", "ChmodEvent", "LoginEvent", "LogoutEvent",
]

MAGIC = b"STR\n"
MAX_BODY = 999  # the length field has three digits
EMAIL_MAX = 64  # the email token is client-chosen: cap it first
_MIN_PATH = 16  # paths are never shortened below this before other tokens are cut
_CLEAN = bytes.maketrans(b"\n\r\0", b"???")


# -- encoding ------------------------------------------------------------------------------

def _tok(value: str) -> bytes:
    """A token's bytes: UTF-8 (undecodable file-name bytes restored), no \\n, \\r or NUL."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "replace")
    return raw.translate(_CLEAN)


def _cut_utf8(raw: bytes, limit: int) -> bytes:
    """The first *limit* bytes at most, without splitting a UTF-8 sequence."""
    if len(raw) <= limit:
        return raw
    end = max(limit, 0)
    while end > 0 and raw[end] & 0xC0 == 0x80:
        end -= 1
    return raw[:end]


def _tail_utf8(raw: bytes, limit: int) -> bytes:
    """The last *limit* bytes at most, starting on a UTF-8 character boundary."""
    start = len(raw) - max(limit, 0)
    while start < len(raw) and raw[start] & 0xC0 == 0x80:
        start += 1
    return raw[start:]


def shorten_path(raw: bytes, limit: int) -> bytes:
    """Shorten a path in the middle to at most *limit* bytes, keeping its start and its
    last component when they fit: ``/very/long/.../name.txt``."""
    if len(raw) <= limit:
        return raw
    if limit < 5:
        return _cut_utf8(raw, limit)
    room = limit - 3  # for "..."
    slash = raw.rfind(b"/")
    if 0 < slash and len(raw) - slash <= room - 1:
        tail = raw[slash:]
    else:
        tail = _tail_utf8(raw, room - room // 2)
    head = _cut_utf8(raw, room - len(tail))
    cut = head.rfind(b"/")
    if cut > 0 and tail.startswith(b"/"):
        head = head[:cut + 1]  # end the head on a component boundary
    return head + b"..." + tail


def _fit(toks: list[bytes], paths: tuple[int, ...], excess: int) -> None:
    """Make *toks* *excess* bytes shorter: paths first (shortened in the middle, the longest
    first, down to a common cap), then, only if that is not enough, other tokens from the
    end. Types and times are never touched."""
    if paths:
        lens = [len(toks[i]) for i in paths]

        def saved(cap: int) -> int:
            return sum(n - cap for n in lens if n > cap)

        lo, hi = _MIN_PATH, max(lens)
        if saved(lo) <= excess:
            cap = lo
        else:  # the largest cap that saves enough
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if saved(mid) >= excess:
                    lo = mid
                else:
                    hi = mid - 1
            cap = lo
        for i in paths:
            if len(toks[i]) > cap:
                excess -= len(toks[i])
                toks[i] = shorten_path(toks[i], cap)
                excess += len(toks[i])
    while excess > 0:  # pathological user names or hosts: cut the longest token
        i = max(range(2, len(toks)), key=lambda k: len(toks[k]))
        before = len(toks[i])
        toks[i] = _cut_utf8(toks[i], before - excess)
        excess -= before - len(toks[i])


def _transfer(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    d = float(ev.duration)
    rate = ev.bytes / 1024 / d if d > 0 else 0.0
    return ([ev.path, str(ev.bytes), f"{d:.3f}", f"{rate:.3f}", ev.status, ev.type,
             str(ev.offset), str(ev.file_size)], (6,))


def _listing(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, ev.status, ev.pattern, "RECURSIVE" if ev.recursive else ""], (6, 8)


def _delete(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, "dir" if ev.kind == "dir" else "file"], (6,)


def _rmdir(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, "dir"], (6,)


def _mkdir(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path], (6,)


def _rename(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.old_path, ev.new_path], (6, 7)


def _symlink(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.target, ev.link_path], (6, 7)


def _chmod(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, f"{ev.mode:04o}"], (6,)


def _login(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [], ()


def _logout(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return ([str(int(ev.duration)), str(ev.files_down), str(ev.bytes_down), str(ev.files_up),
             str(ev.bytes_up), ev.reason], ())


_ENCODERS = {
    "fs.download": (b"R", _transfer), "fs.upload": (b"S", _transfer),
    "fs.listing": (b"T", _listing), "fs.delete": (b"D", _delete), "fs.rmdir": (b"D", _rmdir),
    "fs.mkdir": (b"M", _mkdir), "fs.rename": (b"N", _rename), "fs.symlink": (b"L", _symlink),
    "fs.chmod": (b"C", _chmod), "session.login": (b"I", _login),
    "session.logout": (b"O", _logout),
}
ENCODED_EVENTS: tuple[str, ...] = tuple(_ENCODERS)
"""Bus event names that have an NcFTPd message; the sinks listen to exactly these."""


def encode(event_name: str, event_data: Any) -> bytes | None:
    """The framed message for a bus event (``ftpd.core.events`` data), or None when the
    event has no NcFTPd type. The result is always a valid frame of at most 1007 bytes."""
    spec = _ENCODERS.get(event_name)
    if spec is None:
        return None
    letter, layout = spec
    info = event_data.session
    rest, paths = layout(event_data)
    anonymous = info.anonymous
    toks = [letter, b"%d" % int(event_data.time),
            _tok("anonymous" if anonymous else info.user),
            _cut_utf8(_tok(info.email), EMAIL_MAX) if anonymous else b"",
            _tok(info.host), _tok(info.session_id)]
    toks.extend(_tok(value) for value in rest)
    size = sum(map(len, toks)) + len(toks)
    if size > MAX_BODY:
        _fit(toks, paths, size - MAX_BODY)
    body = b"\n".join(toks) + b"\n"
    return b"STR\n%3d\n" % len(body) + body


# -- decoding ------------------------------------------------------------------------------

class MalformedMessage(ValueError):
    """The bytes are not a valid NcFTPd event message; receivers log and skip them."""


@dataclass(frozen=True, slots=True)
class Event:
    """An event message. Used as is for types this version does not know; *extra* holds the
    tokens after the known ones (all tokens after the sixth for an unknown type)."""

    name: ClassVar[str] = "unknown"
    type: str
    time: datetime
    user: str
    email: str
    host: str
    session_id: str
    extra: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Transfer(Event):
    path: str
    bytes: int
    duration: float
    rate: float
    status: str
    transfer_type: str
    offset: int
    file_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadEvent(_Transfer):
    name: ClassVar[str] = "download"


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadEvent(_Transfer):
    name: ClassVar[str] = "upload"


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingEvent(Event):
    name: ClassVar[str] = "listing"
    path: str
    status: str
    pattern: str
    recursive: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteEvent(Event):
    name: ClassVar[str] = "delete"
    path: str
    kind: str  # "file" or "dir"


@dataclass(frozen=True, slots=True, kw_only=True)
class MkdirEvent(Event):
    name: ClassVar[str] = "mkdir"
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameEvent(Event):
    name: ClassVar[str] = "rename"
    old_path: str
    new_path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SymlinkEvent(Event):
    name: ClassVar[str] = "symlink"
    target: str
    link_path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChmodEvent(Event):
    name: ClassVar[str] = "chmod"
    path: str
    mode: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginEvent(Event):
    name: ClassVar[str] = "login"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutEvent(Event):
    name: ClassVar[str] = "logout"
    duration: int
    files_down: int
    bytes_down: int
    files_up: int
    bytes_up: int
    reason: str


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch


def _int(tok: str) -> int:
    if tok.isdigit() and tok.isascii():
        return int(tok)
    raise MalformedMessage(f"expected a number, got {tok[:40]!r}")


def _float(tok: str) -> float:
    if _DECIMAL(tok):
        return float(tok)
    raise MalformedMessage(f"expected a decimal number, got {tok[:40]!r}")


def _mode(tok: str) -> int:
    try:
        if tok.isascii() and tok.isdigit():
            return int(tok, 8)
    except ValueError:
        pass
    raise MalformedMessage(f"expected an octal mode, got {tok[:40]!r}")


def _flag(tok: str) -> bool:
    if tok in ("RECURSIVE", ""):
        return tok == "RECURSIVE"
    raise MalformedMessage(f"expected RECURSIVE or nothing, got {tok[:40]!r}")


def _kind(tok: str) -> str:
    if tok in ("file", "dir"):
        return tok
    raise MalformedMessage(f"expected file or dir, got {tok[:40]!r}")


_TRANSFER = (("path", str), ("bytes", _int), ("duration", _float), ("rate", _float),
             ("status", str), ("transfer_type", str), ("offset", _int), ("file_size", _int))
_DECODERS: dict[str, tuple[type[Event], tuple[tuple[str, Any], ...]]] = {
    "R": (DownloadEvent, _TRANSFER),
    "S": (UploadEvent, _TRANSFER),
    "T": (ListingEvent, (("path", str), ("status", str), ("pattern", str),
                         ("recursive", _flag))),
    "D": (DeleteEvent, (("path", str), ("kind", _kind))),
    "M": (MkdirEvent, (("path", str),)),
    "N": (RenameEvent, (("old_path", str), ("new_path", str))),
    "L": (SymlinkEvent, (("target", str), ("link_path", str))),
    "C": (ChmodEvent, (("path", str), ("mode", _mode))),
    "I": (LoginEvent, ()),
    "O": (LogoutEvent, (("duration", _int), ("files_down", _int), ("bytes_down", _int),
                        ("files_up", _int), ("bytes_up", _int), ("reason", str))),
}
_UNKNOWN: tuple[type[Event], tuple[tuple[str, Any], ...]] = (Event, ())


def decode(data: bytes) -> Event:
    """Parse one message (a datagram, or a queue message with its trailing NUL) into a typed,
    immutable event. Raises MalformedMessage for anything that is not a valid frame."""
    if data[-1:] == b"\0":
        data = data[:-1]
    if data[:4] != MAGIC:
        raise MalformedMessage("no STR magic" if data else "empty message")
    if data[7:8] != b"\n":
        raise MalformedMessage("truncated header")
    field = data[4:7].lstrip(b" ")
    if not field.isdigit():
        raise MalformedMessage(f"bad length field {bytes(data[4:7])!r}")
    length = int(field)
    body = data[8:]
    if len(body) != length:
        raise MalformedMessage(f"length field says {length} bytes, body has {len(body)}")
    if not length or body[-1] != 10:
        raise MalformedMessage("body does not end with a newline")
    if b"\0" in body:
        raise MalformedMessage("NUL byte in body")
    toks = bytes(body[:-1]).decode("utf-8", "surrogateescape").split("\n")
    if len(toks) < 6:
        raise MalformedMessage(f"{len(toks)} tokens, the common ones need 6")
    if not toks[0]:
        raise MalformedMessage("empty type token")
    cls, layout = _DECODERS.get(toks[0], _UNKNOWN)
    need = 6 + len(layout)
    if len(toks) < need:
        raise MalformedMessage(f"{cls.name} message has {len(toks)} tokens, needs {need}")
    try:
        when = datetime.fromtimestamp(_int(toks[1]), UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedMessage(f"bad time {toks[1][:40]!r}") from exc
    fields = {name: conv(tok) for (name, conv), tok in zip(layout, toks[6:need], strict=True)}
    return cls(toks[0], when, toks[2], toks[3], toks[4], toks[5], tuple(toks[need:]), **fields)

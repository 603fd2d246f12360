"""Typed, immutable NcFTPd event messages and decode(): the receiving half of ncftpd.py,
kept apart so that a server that only sends never pays for building these classes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from ftpd.events.ncftpd import MAGIC, MalformedMessage

__all__ = [
    "decode", "Message", "DownloadMessage", "UploadMessage", "ListingMessage", "DeleteMessage",
    "MkdirMessage", "RenameMessage", "SymlinkMessage", "ChmodMessage", "LoginMessage", "LogoutMessage",
]


@dataclass(frozen=True, slots=True)
class Message:
    """An event message. Used as is for types this version does not know; *extra* holds the
    tokens after the known ones (all tokens after the sixth for an unknown type). *server*
    is the sending server's ``--server-id`` when the transport carries it (a Redis stream
    entry's ``server`` field), else empty."""

    name: ClassVar[str] = "unknown"
    type: str
    time: datetime
    user: str
    email: str
    host: str
    session_id: str
    extra: tuple[str, ...] = ()
    server: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Transfer(Message):
    path: str
    bytes: int
    duration: float
    rate: float
    status: str
    transfer_type: str
    offset: int
    file_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadMessage(_Transfer):
    name: ClassVar[str] = "download"


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadMessage(_Transfer):
    name: ClassVar[str] = "upload"


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingMessage(Message):
    name: ClassVar[str] = "listing"
    path: str
    status: str
    pattern: str
    recursive: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteMessage(Message):
    name: ClassVar[str] = "delete"
    path: str
    kind: str  # "file" or "dir"


@dataclass(frozen=True, slots=True, kw_only=True)
class MkdirMessage(Message):
    name: ClassVar[str] = "mkdir"
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameMessage(Message):
    name: ClassVar[str] = "rename"
    old_path: str
    new_path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SymlinkMessage(Message):
    name: ClassVar[str] = "symlink"
    target: str
    link_path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChmodMessage(Message):
    name: ClassVar[str] = "chmod"
    path: str
    mode: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginMessage(Message):
    name: ClassVar[str] = "login"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutMessage(Message):
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
_DECODERS: dict[str, tuple[type[Message], tuple[tuple[str, Any], ...]]] = {
    "R": (DownloadMessage, _TRANSFER),
    "S": (UploadMessage, _TRANSFER),
    "T": (ListingMessage, (("path", str), ("status", str), ("pattern", str),
                         ("recursive", _flag))),
    "D": (DeleteMessage, (("path", str), ("kind", _kind))),
    "M": (MkdirMessage, (("path", str),)),
    "N": (RenameMessage, (("old_path", str), ("new_path", str))),
    "L": (SymlinkMessage, (("target", str), ("link_path", str))),
    "C": (ChmodMessage, (("path", str), ("mode", _mode))),
    "I": (LoginMessage, ()),
    "O": (LogoutMessage, (("duration", _int), ("files_down", _int), ("bytes_down", _int),
                        ("files_up", _int), ("bytes_up", _int), ("reason", str))),
}
_UNKNOWN: tuple[type[Message], tuple[tuple[str, Any], ...]] = (Message, ())


def decode(data: bytes, server: str = "") -> Message:
    """Parse one message (a datagram, or a queue message with its trailing NUL) into a typed,
    immutable event; *server* is the sender's id where the transport says it. Raises
    MalformedMessage for anything that is not a valid frame."""
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
    return cls(toks[0], when, toks[2], toks[3], toks[4], toks[5], tuple(toks[need:]), server,
               **fields)

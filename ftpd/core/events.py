"""Typed event data: facts the core reports to the events bus. Listeners observe
them; they cannot change the protocol. Immutable named tuples: building a dozen
dataclasses at import would cost every inetd no-wait start several milliseconds."""

from __future__ import annotations

from typing import NamedTuple


class SessionInfo(NamedTuple):
    """Who did it: the session that raised the event."""

    session_id: str
    host: str
    user: str = ""
    email: str = ""  # the password an anonymous user gave
    anonymous: bool = False


class ConnectEvent(NamedTuple):
    session: SessionInfo
    time: float


class LoginEvent(NamedTuple):
    session: SessionInfo
    time: float


class LoginFailedEvent(NamedTuple):
    session: SessionInfo
    time: float
    username: str
    attempts: int


class LogoutEvent(NamedTuple):
    session: SessionInfo
    time: float
    duration: float
    files_down: int
    bytes_down: int
    files_up: int
    bytes_up: int
    reason: str  # QUIT, TIMEOUT, EOF, SHUTDOWN, ERROR


class TransferEvent(NamedTuple):
    """fs.download / fs.upload, raised once the transfer has ended."""

    session: SessionInfo
    time: float
    direction: str  # "download" or "upload"
    path: str
    bytes: int
    duration: float
    status: str  # OK, ABOR, INCOMPLETE, PERM, NOENT, ERROR
    type: str  # "A" or "I"
    offset: int
    file_size: int
    command: str = ""


class ListingEvent(NamedTuple):
    session: SessionInfo
    time: float
    path: str
    status: str
    pattern: str = ""
    recursive: bool = False
    command: str = "LIST"


class PathEvent(NamedTuple):
    """fs.delete (kind "file" or "dir"), fs.mkdir, fs.rmdir."""

    session: SessionInfo
    time: float
    path: str
    kind: str = "file"


class RenameEvent(NamedTuple):
    session: SessionInfo
    time: float
    old_path: str
    new_path: str


class SymlinkEvent(NamedTuple):
    session: SessionInfo
    time: float
    target: str
    link_path: str


class ChmodEvent(NamedTuple):
    session: SessionInfo
    time: float
    path: str
    mode: int


class AbortEvent(NamedTuple):
    session: SessionInfo
    time: float
    path: str
    command: str


class ServerEvent(NamedTuple):
    """core.startup, core.shutdown, core.reload, core.idle-timeout."""

    time: float
    detail: dict[str, object] | None = None

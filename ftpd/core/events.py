"""Typed event data: facts the core reports to the events bus. Listeners observe
them; they cannot change the protocol."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionInfo:
    """Who did it: the session that raised the event."""

    session_id: str
    host: str
    user: str = ""
    email: str = ""  # the password an anonymous user gave
    anonymous: bool = False


@dataclass(frozen=True)
class ConnectEvent:
    session: SessionInfo
    time: float


@dataclass(frozen=True)
class LoginEvent:
    session: SessionInfo
    time: float


@dataclass(frozen=True)
class LoginFailedEvent:
    session: SessionInfo
    time: float
    username: str
    attempts: int


@dataclass(frozen=True)
class LogoutEvent:
    session: SessionInfo
    time: float
    duration: float
    files_down: int
    bytes_down: int
    files_up: int
    bytes_up: int
    reason: str  # QUIT, TIMEOUT, EOF, SHUTDOWN, ERROR


@dataclass(frozen=True)
class TransferEvent:
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


@dataclass(frozen=True)
class ListingEvent:
    session: SessionInfo
    time: float
    path: str
    status: str
    pattern: str = ""
    recursive: bool = False
    command: str = "LIST"


@dataclass(frozen=True)
class PathEvent:
    """fs.delete (kind "file" or "dir"), fs.mkdir, fs.rmdir."""

    session: SessionInfo
    time: float
    path: str
    kind: str = "file"


@dataclass(frozen=True)
class RenameEvent:
    session: SessionInfo
    time: float
    old_path: str
    new_path: str


@dataclass(frozen=True)
class SymlinkEvent:
    session: SessionInfo
    time: float
    target: str
    link_path: str


@dataclass(frozen=True)
class ChmodEvent:
    session: SessionInfo
    time: float
    path: str
    mode: int


@dataclass(frozen=True)
class AbortEvent:
    session: SessionInfo
    time: float
    path: str
    command: str


@dataclass(frozen=True)
class ServerEvent:
    """core.startup, core.shutdown, core.reload, core.idle-timeout."""

    time: float
    detail: dict[str, object] = field(default_factory=dict)

"""Orders from the core to its transport. Only the core creates them; the transport
must carry each out in the order given. Orders a handler *yields* (``Call``,
``ListenPassive``, ``Authenticate``, ``Wait``, ``StartTransfer``, ``StartTLS``) suspend
that command: the transport answers each with ``Session.answer(result)`` or
``Session.fail(exc)``, and the command goes on from its ``yield``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ftpd.core.record import Record


class ListenPassive(Record):
    """Open a passive data listener on the control connection's local address
    (a port from *ports* if given); answer with its port, or fail with the OSError.
    Connections from any host but *allowed_peer*
    (when set) must be dropped: data theft."""

    __slots__ = ("ports", "allowed_peer")

    def __init__(self, ports: range | None = None, allowed_peer: str | None = None) -> None:
        self.ports, self.allowed_peer = ports, allowed_peer


class Transfer(Record):
    """One data transfer. The transport pumps bytes and updates ``bytes_done``."""

    __slots__ = ("direction", "source", "sink", "transform", "active_addr", "bytes_done",
                 "started", "meta")

    def __init__(self, direction: str, source: BinaryIO | Iterator[bytes] | None = None,
                 sink: BinaryIO | None = None,
                 transform: Callable[[bytes], bytes] | None = None) -> None:
        self.direction = direction  # "send" (RETR, LIST, ...) or "recv" (STOR, APPE, STOU)
        self.source = source  # for "send"
        self.sink = sink  # for "recv"
        self.transform = transform  # TYPE A conversion
        self.active_addr: tuple[str, int] | None = None  # PORT/EPRT: connect here
        self.bytes_done = 0
        self.started = 0.0
        self.meta: dict[str, Any] = {}

    def flush_transform(self) -> bytes:
        """Bytes a stateful transform still holds at the end of the stream."""
        flush = getattr(self.transform, "flush", None)
        return flush() if flush else b""


class StartTransfer(Record):
    """Start *transfer* on the prepared data connection (after the preliminary reply
    that precedes this action has been written); answer with how it ended: None
    (complete), "connect", "tls", "timeout", "reset", "failed" or the OSError a file
    operation raised."""

    __slots__ = ("transfer",)

    def __init__(self, transfer: Transfer) -> None:
        self.transfer = transfer


class CloseData(Record):
    """Drop any passive listener, idle data connection or running transfer, silently
    (the core has already settled the transfer's outcome)."""


class Authenticate(Record):
    """Check credentials off the event loop with the authorizer; answer with the
    account, or None."""

    __slots__ = ("username", "password")

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password


class Wait(Record):
    """Process nothing more for this session for *seconds*, then answer None.
    Other sessions go on."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Emit(Record):
    """Deliver an event to the bus (after the replies before it have been written)."""

    __slots__ = ("name", "data")

    def __init__(self, name: str, data: Any = None) -> None:
        self.name, self.data = name, data


class Close(Record):
    """Close the control connection once everything before this has been written."""

    __slots__ = ("reason",)

    def __init__(self, reason: str = "QUIT") -> None:
        self.reason = reason


class StartTLS(Record):
    """Switch the control connection to TLS now (after the reply before it is written);
    answer None once the handshake is done. The command's reply goes out before
    this order (``after_reply``): the client must read it in the clear."""

    after_reply = True


class Call(Record):
    """Run ``fn(*args)`` off the event loop, in the worker pool (a filesystem call: it
    may block, for a network filesystem or an object store); answer with what it
    returned, or fail with what it raised. *cleanup* calls (closing a file, the
    atomic rename at the end of an upload) are carried out and answered even after
    the control connection has gone; for any other, a session closed meanwhile drops
    the result, and the transport closes a file object it returned."""

    __slots__ = ("fn", "args", "cleanup")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...] = (),
                 cleanup: bool = False) -> None:
        self.fn, self.args, self.cleanup = fn, args, cleanup


class AwaitCommand(Record):
    """Not for the transport: the session itself resumes the command that yields
    this once the suspended command (a transfer, or its end) has completed. QUIT
    during a transfer waits this way; ABOR (*first*) is answered before it."""

    __slots__ = ("first",)

    def __init__(self, first: bool = False) -> None:
        self.first = first


Action = (ListenPassive | StartTransfer | CloseData | Authenticate | Wait | Emit | Close
          | StartTLS | Call)
Ask = ListenPassive | StartTransfer | Authenticate | Wait | StartTLS | Call  # suspend a command

"""Orders from the core to its transport. Only the core creates them; the transport
must carry each out in the order given. Orders a handler *yields* (``Call``,
``ListenPassive``, ``Authenticate``, ``Wait``, ``StartTransfer``, ``StartTLS``) suspend
that command: the transport answers each with ``Session.answer(result)`` or
``Session.fail(exc)``, and the command goes on from its ``yield``. A transfer's end is
typed: a ``TransferEnd`` (an ``Outcome`` and the exception, if one caused it); so is the
data mode (``Passive()`` or ``Active(host, port)``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any, BinaryIO, NamedTuple

from ftpd.core.errors import FTPError
from ftpd.core.record import Record


class Outcome(Enum):
    """How a transfer ended: what the transport answers ``StartTransfer`` with (inside a
    ``TransferEnd``, beside the exception when there is one)."""

    OK = "ok"  # every byte moved
    CONNECT_FAILED = "connect"  # no data connection: the active connect failed, no listener
    TLS_REFUSED = "tls"  # the data connection's TLS handshake failed or did not resume
    TIMEOUT = "timeout"  # no progress for the data timeout
    RESET = "reset"  # the peer reset or closed the connection; the control connection went
    ABORTED = "aborted"  # ABOR
    OS_ERROR = "oserror"  # an OSError other than a reset, mostly the file's read or
    #                       write: ``error`` is it (its errno picks the reply)
    REFUSED = "refused"  # the source refused to go on: ``error`` is its FTPError
    FAILED = "failed"  # a bug in a source, sink or transform (the transport logged it)

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is Python code


class TransferEnd(NamedTuple):
    """The answer to ``StartTransfer``: the outcome, and the exception if one caused it."""

    outcome: Outcome
    error: OSError | FTPError | None = None


DONE = TransferEnd(Outcome.OK)


class Direction(Enum):
    SEND = "send"  # to the client: RETR, LIST, NLST, MLSD
    RECV = "recv"  # from the client: STOR, APPE, STOU

    __hash__ = object.__hash__


class Kind(Enum):
    """What a transfer carries; the value names its event (``fs.download``, ...)."""

    DOWNLOAD = "download"
    UPLOAD = "upload"
    LISTING = "listing"

    __hash__ = object.__hash__


class Passive(NamedTuple):
    """PASV/EPSV: the client connects to our listener."""

    def __bool__(self) -> bool:  # a data mode is set: not falsy for having no fields
        return True


class Active(NamedTuple):
    """PORT/EPRT: we connect to the client's (host, port)."""

    host: str
    port: int


DataMode = Passive | Active


class Order(Record):
    """An order to the transport (every one is in ``Action``, and io/control.py has a
    way to carry out each: a test checks both)."""

    __slots__ = ()


class ListenPassive(Order):
    """Open a passive data listener on the control connection's local address
    (a port from *ports* if given); answer with its port, or fail with the OSError.
    Connections from any host but *allowed_peer*
    (when set) must be dropped: data theft."""

    __slots__ = ("ports", "allowed_peer")

    def __init__(self, ports: range | None = None, allowed_peer: str | None = None) -> None:
        self.ports, self.allowed_peer = ports, allowed_peer


class Transfer(Record):
    """One data transfer: what it carries (*kind*, *path* and the rest are for the
    core's reply and event; the transport reads the direction, the source or sink, the
    transform, the data *mode* and *tls*) and how far it got (``bytes_done``, updated
    by the transport)."""

    __slots__ = ("kind", "direction", "path", "source", "sink", "transform", "offset",
                 "size", "temp", "unique", "pattern", "old_size", "mode", "tls", "max_rate",
                 "bytes_done", "started")

    def __init__(self, kind: Kind, path: str, *,
                 source: BinaryIO | Iterator[bytes] | None = None,
                 sink: BinaryIO | None = None,
                 transform: Callable[[bytes], bytes] | None = None, offset: int = 0,
                 size: int | None = None, temp: str | None = None, unique: bool = False,
                 pattern: str = "", old_size: int | None = None) -> None:
        self.kind = kind
        self.direction = Direction.RECV if kind is Kind.UPLOAD else Direction.SEND
        self.path = path  # the virtual path (of the directory, for a listing)
        self.source = source  # for SEND: a file object or a listing's chunks
        self.sink = sink  # for RECV
        self.transform = transform  # TYPE A conversion
        self.offset = offset  # REST
        self.size = size  # a download's file size (None: looked up at the end)
        self.temp = temp  # an atomic upload's temporary name, renamed into place at the end
        self.unique = unique  # STOU: never replace a file created meanwhile
        self.pattern = pattern  # a listing's wildcard
        self.old_size = old_size  # an upload under a quota: the file's size before it
        self.mode: DataMode | None = None  # set when it starts: Active means connect there
        self.tls = False  # protect the data connection (PROT P)
        self.max_rate = 0  # bytes/s in its direction (max-rate; 0: unlimited)
        self.bytes_done = 0
        self.started = 0.0

    def flush_transform(self) -> bytes:
        """Bytes a stateful transform still holds at the end of the stream."""
        flush = getattr(self.transform, "flush", None)
        return flush() if flush else b""


class StartTransfer(Order):
    """Start *transfer* on the prepared data connection (after the preliminary reply
    that precedes this action has been written); answer with a ``TransferEnd``."""

    __slots__ = ("transfer",)

    def __init__(self, transfer: Transfer) -> None:
        self.transfer = transfer


class CloseData(Order):
    """Drop any passive listener, idle data connection or running transfer, silently
    (the core has already settled the transfer's outcome)."""


class Authenticate(Order):
    """Check credentials off the event loop with the authorizer; answer with the
    account, or None."""

    __slots__ = ("username", "password")

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password


class Wait(Order):
    """Process nothing more for this session for *seconds*, then answer None.
    Other sessions go on."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Emit(Order):
    """Deliver an event to the bus (after the replies before it have been written)."""

    __slots__ = ("name", "data")

    def __init__(self, name: str, data: Any = None) -> None:
        self.name, self.data = name, data


class Close(Order):
    """Close the control connection once everything before this has been written."""

    __slots__ = ("reason",)

    def __init__(self, reason: str = "QUIT") -> None:
        self.reason = reason


class StartTLS(Order):
    """Switch the control connection to TLS now (after the reply before it is written);
    answer None once the handshake is done. The command's reply goes out before
    this order (``after_reply``): the client must read it in the clear."""

    after_reply = True


class Call(Order):
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

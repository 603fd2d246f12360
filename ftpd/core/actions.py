"""Orders from the core to its transport. Only the core creates them; the transport
must carry each out in the order given and report back through the Session methods
named in each docstring."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO


@dataclass
class ListenPassive:
    """Open a passive data listener on the control connection's local address
    (a port from *ports* if given) and report it with ``Session.passive_listening``
    or ``Session.passive_failed``. Connections from any host but *allowed_peer*
    (when set) must be dropped: data theft."""

    ports: range | None = None
    allowed_peer: str | None = None


@dataclass
class Transfer:
    """One data transfer. The transport pumps bytes and updates ``bytes_done``;
    when it ends it calls ``Session.transfer_finished(error)``."""

    direction: str  # "send" (RETR, LIST, ...) or "recv" (STOR, APPE, STOU)
    source: BinaryIO | Iterator[bytes] | None = None  # for "send"
    sink: BinaryIO | None = None  # for "recv"
    transform: Callable[[bytes], bytes] | None = None  # TYPE A conversion
    active_addr: tuple[str, int] | None = None  # PORT/EPRT: connect here
    bytes_done: int = 0
    started: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def flush_transform(self) -> bytes:
        """Bytes a stateful transform still holds at the end of the stream."""
        flush = getattr(self.transform, "flush", None)
        return flush() if flush else b""


@dataclass
class StartTransfer:
    """Start *transfer* on the prepared data connection (after the preliminary reply
    that precedes this action has been written)."""

    transfer: Transfer


@dataclass
class CloseData:
    """Drop any passive listener, idle data connection or running transfer. A running
    transfer so stopped is reported with ``Session.transfer_finished("aborted")``."""


@dataclass
class Authenticate:
    """Check credentials off the event loop with the authorizer; report the result
    with ``Session.auth_result(account_or_None)``."""

    username: str
    password: str


@dataclass
class Wait:
    """Process nothing more for this session for *seconds*, then call
    ``Session.resume()``. Other sessions go on."""

    seconds: float


@dataclass
class Emit:
    """Deliver an event to the bus (after the replies before it have been written)."""

    name: str
    data: Any = None


@dataclass
class Close:
    """Close the control connection once everything before this has been written."""

    reason: str = "QUIT"


@dataclass
class StartTLS:
    """Switch the control connection to TLS now (after the reply before it is written)."""


Action = ListenPassive | StartTransfer | CloseData | Authenticate | Wait | Emit | Close | StartTLS

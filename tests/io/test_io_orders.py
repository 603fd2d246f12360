"""The typed seam between core and io (issue 11, point 6): every order the core can give
has a way to be carried out in io/control.py's table, and the data channel reports how
a transfer ended as a ``TransferEnd`` (an ``Outcome``, the exception beside it)."""

from __future__ import annotations

import importlib
import pkgutil
import socket
from typing import Any, get_args

from ftpsupport import DEADLINE, free_port

import ftpd.core
from ftpd.core import actions as A
from ftpd.core.errors import FTPError
from ftpd.core.record import Record
from ftpd.core.replies import Reply
from ftpd.io.control import ControlConnection
from ftpd.io.data import DataChannel
from ftpd.io.loop import EventLoop


def _core_orders() -> set[type]:
    """Every Order class anywhere in ftpd.core (all its modules imported first)."""
    for info in pkgutil.walk_packages(ftpd.core.__path__, "ftpd.core."):
        importlib.import_module(info.name)
    found: set[type] = set()
    todo = [A.Order]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def _unhandled(outputs: set[type]) -> list[str]:
    return sorted(t.__name__ for t in outputs if t not in ControlConnection._ORDERS)


def test_every_order_is_an_action_and_the_transport_carries_out_each():
    orders = _core_orders()
    assert orders == set(get_args(A.Action))  # an Order left out of the Action union
    assert set(get_args(A.Ask)) <= orders
    assert A.AwaitCommand not in orders  # the session's own business, not the transport's
    assert _unhandled(orders | {Reply}) == []


def test_every_session_entry_point_returns_replies_and_actions():
    """What io/control.py calls (``ControlConnection.call``) is typed as what its table
    carries out."""
    from typing import get_type_hints

    from ftpd.core import session

    hints = vars(session)  # the names the annotations refer to
    for name in ("start", "refuse", "receive", "answer", "fail", "timeout", "shutdown",
                 "connection_lost"):
        returns = get_type_hints(getattr(session.Session, name), hints)["return"]
        assert returns == list[Reply | A.Action], name


def test_an_order_without_transport_support_is_caught():
    class Teleport(Record):  # not an Order subclass: it would stay registered if it were
        pass

    assert _unhandled(_core_orders() | {Teleport}) == ["Teleport"]


# -- the data channel's endings ---------------------------------------------------------------
class Ended:
    def __init__(self, loop: EventLoop) -> None:
        self.loop = loop
        self.ends: list[Any] = []

    def __call__(self, end: Any) -> None:
        self.ends.append(end)
        self.loop.stop()


def _run(transfer: A.Transfer, *, passive: bool) -> tuple[A.TransferEnd, bytes]:
    """Run *transfer* on a real loop (a client socket connected for a passive one);
    returns how it ended and what the client received."""
    loop = EventLoop()
    channel = DataChannel(loop, "127.0.0.1", socket.AF_INET, 30.0, bytearray(1 << 16))
    ended = Ended(loop)
    client = None
    try:
        if passive:
            port = channel.listen(None, "127.0.0.1")
            client = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
            transfer.mode = A.Passive()
        channel.start(transfer, ended)
        deadline = loop.call_later(DEADLINE, loop.stop)
        if not ended.ends:
            loop.run()
        deadline.cancel()
        received = b""
        if client is not None:
            client.settimeout(DEADLINE)
            chunks = []
            for _ in range(64):
                chunk = client.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            received = b"".join(chunks)
        assert len(ended.ends) == 1
        return ended.ends[0], received
    finally:
        channel.close()
        if client is not None:
            client.close()
        loop.close()


def _listing(*chunks: Any) -> A.Transfer:
    def source():
        for chunk in chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk

    return A.Transfer(A.Kind.LISTING, "/", source=source())


def test_a_complete_transfer_ends_ok():
    end, received = _run(_listing(b"one\r\n", b"two\r\n"), passive=True)
    assert end == A.TransferEnd(A.Outcome.OK) and end.error is None
    assert received == b"one\r\ntwo\r\n"


def test_a_source_that_refuses_ends_refused_with_its_ftperror():
    refusal = FTPError(550, "Too many matches.")
    end, _ = _run(_listing(b"one\r\n", refusal), passive=True)
    assert end.outcome is A.Outcome.REFUSED and end.error is refusal


def test_a_source_with_a_bug_ends_failed(caplog):
    end, _ = _run(_listing(b"one\r\n", KeyError("bug")), passive=True)
    assert end == A.TransferEnd(A.Outcome.FAILED)
    assert "data transfer failed" in caplog.text


def test_an_active_connect_nobody_answers_ends_connect_failed():
    t = _listing(b"x")
    t.mode = A.Active("127.0.0.1", free_port())  # nothing listens there
    end, _ = _run(t, passive=False)
    assert end == A.TransferEnd(A.Outcome.CONNECT_FAILED)


def test_no_data_connection_prepared_ends_connect_failed():
    end, _ = _run(_listing(b"x"), passive=False)  # neither a listener nor an address
    assert end == A.TransferEnd(A.Outcome.CONNECT_FAILED)

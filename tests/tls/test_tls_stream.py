"""Issue 11, point 5: one Stream per socket in ``ftpd/io`` (plain or TLS). Its buffered
output ends in a drained callback, which is what starts a TLS handshake after ``234``:
``ftpd/io/tls.py`` polls nothing and reaches into no other class's private fields."""

from __future__ import annotations

import ast
import socket
import threading
from pathlib import Path

from ftpsupport import DEADLINE, wait_until

from ftpd.io.loop import EventLoop
from ftpd.io.stream import Stream

TLS_MODULE = Path(__file__).resolve().parents[2] / "ftpd" / "io" / "tls.py"


def _tls_tree() -> ast.Module:
    return ast.parse(TLS_MODULE.read_text(), str(TLS_MODULE))


def test_tls_module_uses_no_private_field_of_another_object():
    private = [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(_tls_tree())
               if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id == "self")]
    assert private == []


def test_tls_module_polls_nothing():
    """No timer with a constant delay (the old ``call_later(0.01, begin)``): the only
    timer left is the handshake deadline, from ``--timeout``."""
    polls = [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(_tls_tree())
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in ("call_later", "call_soon")
             and (node.func.attr == "call_soon" or isinstance(node.args[0], ast.Constant))]
    assert polls == []


def test_drained_runs_once_when_everything_written_is_sent():
    a, b = socket.socketpair()
    a.setblocking(False)
    loop = EventLoop()
    stream = Stream(loop, a)
    drained: list[int] = []
    payload = bytes(range(256)) * (8 << 12)  # 8 MiB: far more than the socket buffer
    stream.write(payload)
    stream.when_drained(lambda: drained.append(len(stream.out)))
    assert stream.out and drained == []  # not yet: the peer has read nothing
    got = bytearray()

    def read_all() -> None:
        b.settimeout(DEADLINE)
        while len(got) < len(payload):
            chunk = b.recv(1 << 16)
            if not chunk:
                break
            got.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    runner = threading.Thread(target=loop.run)
    runner.start()
    try:
        assert wait_until(lambda: drained == [0])
        reader.join(DEADLINE)
        assert bytes(got) == payload
        # nothing queued: at once (asked on the loop's thread, as the server does)
        loop.call_soon_threadsafe(stream.when_drained, lambda: drained.append(-1))
        assert wait_until(lambda: len(drained) == 2)
        assert drained == [0, -1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(DEADLINE)
        stream.close()
        b.close()
        loop.close()
    assert stream.closed

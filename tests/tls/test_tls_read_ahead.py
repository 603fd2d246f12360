"""Issue 14: a protected data connection reads ahead (``ftpd.io.libssl``): an upload
takes large pieces of ciphertext per ``read(2)``, not a record header and then its
body. Bytes read ahead are invisible to ``select``, so the stream reports them as
pending, and an upload whose reading was paused (or not yet begun) goes on from them
without waiting for a readiness event that will not come."""

from __future__ import annotations

import io
import os
import socket
import ssl
import threading
from typing import Any

import pytest
from ftpsupport import DEADLINE, wait_until
from tlshelpers import client_context

from ftpd.core.actions import Kind, Outcome, Transfer
from ftpd.io import libssl
from ftpd.io.chunks import CHUNK, DEPTH, RecvPump
from ftpd.io.loop import EventLoop
from ftpd.io.stream import Stream

RECORD = 16 << 10  # the largest TLS record's payload


def _server_context(certs) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certs.cert), str(certs.key))
    return ctx


def _kernel_has_nothing(sock: socket.socket) -> bool:
    """Whether the socket's receive queue is empty (peeked on a duplicate, so the TLS
    layer is not disturbed)."""
    with socket.socket(fileno=os.dup(sock.fileno())) as dup:
        try:
            return dup.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return True


def test_a_data_stream_takes_many_records_per_read(certs):
    a, b = socket.socketpair()
    a.setblocking(False)
    loop = EventLoop()
    stream = Stream(loop, a)
    ready = threading.Event()
    errors: list[BaseException] = []
    runner = threading.Thread(target=loop.run)
    runner.start()
    loop.call_soon_threadsafe(stream.upgrade, _server_context(certs), True, ready.set,
                              errors.append, True)
    b.settimeout(DEADLINE)
    client = client_context(certs.ca).wrap_socket(b, server_hostname="127.0.0.1")
    try:
        assert wait_until(ready.is_set, "the handshake")
        assert errors == [] and stream.ahead
        payload = bytes(range(256)) * (8 * RECORD // 256)  # 8 full records
        client.sendall(payload)
        got = bytearray()
        first: list[bool] = []

        def read_one_record() -> None:
            got.extend(stream.recv(RECORD))
            first.append(bool(stream.pending()) and _kernel_has_nothing(stream.sock))

        assert wait_until(lambda: not _kernel_has_nothing(stream.sock), "the records to arrive")
        # all 8 records fit the read-ahead buffer: after one record is asked for, the
        # rest are in OpenSSL's hands, none is left in the kernel, and the stream says so
        loop.call_soon_threadsafe(read_one_record)
        assert wait_until(lambda: first, "the first record")
        assert first == [True]

        def read_rest() -> None:
            while stream.pending():
                got.extend(stream.recv(RECORD))

        loop.call_soon_threadsafe(read_rest)
        assert wait_until(lambda: len(got) >= len(payload), "the rest, from the buffer")
        assert bytes(got) == payload
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(DEADLINE)
        stream.close()
        client.close()
        loop.close()


def test_read_ahead_needs_cpythons_ssl_socket():
    class Fake:
        _sslobj = object()

        def pending(self) -> int:
            return 0

    assert not libssl.read_ahead(Fake())
    assert not libssl.has_pending(Fake())


class _BufferedTLS:
    """A stream whose whole upload is already in the TLS layer's buffer: ``select``
    never reports its socket readable, ``pending()`` says what is held."""

    tls = True

    def __init__(self, sock: socket.socket, payload: bytes) -> None:
        self.sock = sock
        self.held = memoryview(payload)
        self.eof_read = False

    def recv_into(self, view: Any) -> int:
        if not self.held:
            self.eof_read = True
            return 0  # close_notify
        n = min(len(view), RECORD, len(self.held))
        view[:n] = self.held[:n]
        self.held = self.held[n:]
        return n

    def pending(self) -> int:
        return int(not self.eof_read)


class _HeldPool:
    """A data pool whose jobs wait until the test lets them run (on the loop)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Any, Any]] = []

    def run(self, job: Any, landed: Any) -> None:
        self.jobs.append((job, landed))

    def release(self) -> None:
        job, landed = self.jobs.pop(0)
        landed(job(), None)


def _release(pool: _HeldPool, released: threading.Event) -> None:
    pool.release()
    released.set()


class _Channel:
    def __init__(self, loop: EventLoop, stream: Any) -> None:
        self.loop, self.stream = loop, stream
        self.buffer = bytearray(1 << 20)
        self.ended: list[Outcome] = []

    def touch(self) -> None:
        pass

    def end(self, outcome: Outcome, error: Any = None) -> None:
        self.ended.append(outcome)


@pytest.mark.parametrize("size", [3 * RECORD, 40 * RECORD])  # never paused; paused
def test_an_upload_goes_on_from_bytes_tls_holds(size):
    a, b = socket.socketpair()  # b is never written: a never becomes readable
    loop = EventLoop()
    payload = bytes(range(256)) * (size // 256)
    stream = _BufferedTLS(a, payload)
    channel = _Channel(loop, stream)
    sink = io.BytesIO()
    transfer = Transfer(Kind.UPLOAD, "/up", sink=sink)
    pool = _HeldPool()
    runner = threading.Thread(target=loop.run)
    runner.start()
    try:
        pump = RecvPump(channel, transfer, pool)  # type: ignore[arg-type]
        loop.call_soon_threadsafe(pump.start)
        paused = False
        for _ in range(size // RECORD + DEPTH):  # bounded: one write per round
            # a write lands only once reading has stopped (DEPTH in flight) or the
            # data ended, so a paused upload must resume from what TLS holds
            assert wait_until(lambda: channel.ended or (pool.jobs and (
                not pump.reading or pump.at_end)), "the pump to wait on its writes")
            if channel.ended:
                break
            paused = paused or pump.in_flight >= DEPTH
            released = threading.Event()
            loop.call_soon_threadsafe(_release, pool, released)
            assert released.wait(DEADLINE)
        assert channel.ended == [Outcome.OK]
        assert sink.getvalue() == payload and transfer.bytes_done == size
        assert paused is (size > 2 * CHUNK)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(DEADLINE)
        a.close()
        b.close()
        loop.close()

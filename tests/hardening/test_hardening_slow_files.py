"""Issue 11, point 1 (the transfer half): a file object without a descriptor is read and
written in the data pool, chunk by chunk, so a stuck ``read()`` or ``write()`` blocks
only its own transfer; at most ``DEPTH`` chunks are in flight; bytes arrive whole and in
order. Deterministic: a blocked call waits on a ``threading.Event``, never a clock."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ftpsupport import DEADLINE, wait_until
from hhelpers import Control, open_data

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS
from ftpd.io.chunks import CHUNK, DEPTH

BIG = bytes(range(256)) * (4 * CHUNK // 256 + 77)  # several chunks and a ragged tail


class Gate:
    """A call that blocks until the test opens the gate; counts who entered."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls = 0
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def pass_through(self) -> None:
        with self._lock:
            self.calls += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.set()
        try:
            assert self.opened.wait(DEADLINE), "the test never opened the gate"
        finally:
            with self._lock:
                self.inside -= 1


class GatedReader(io.RawIOBase):
    def __init__(self, data: bytes, gate: Gate) -> None:
        self._inner, self._gate = io.BytesIO(data), gate

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        self._gate.pass_through()
        return self._inner.read(size)


class GatedWriter(io.RawIOBase):
    """A sink without ``fileno()`` whose write() waits at the gate; keeps the bytes."""

    def __init__(self, gate: Gate, kept: bytearray) -> None:
        self._gate, self._kept = gate, kept

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:  # type: ignore[override]
        self._gate.pass_through()
        self._kept += b
        return len(b)


class SlowFS(MemoryFS):
    """MemoryFS whose ``slow*`` files read or write through a gate."""

    def __init__(self) -> None:
        self.gate, self.uploaded, self.armed = Gate(), bytearray(), False
        super().__init__({"/slow.bin": BIG, "/big.bin": BIG, "/a.txt": b"a\r\nb\nc\n"})
        self.armed = True

    def open_read(self, vpath: str) -> Any:
        if os.path.basename(vpath).startswith("slow"):
            return GatedReader(BIG, self.gate)
        return super().open_read(vpath)

    def open_write(self, vpath: str, **kwargs: Any) -> Any:
        if self.armed and os.path.basename(vpath).startswith("slow"):
            return GatedWriter(self.gate, self.uploaded)
        return super().open_write(vpath, **kwargs)


@pytest.fixture
def served() -> Iterator[tuple[SlowFS, FTPServer]]:
    fs = SlowFS()
    with FTPServer(fs, users={"user": "pw"}) as server:
        try:
            yield fs, server
        finally:
            fs.gate.opened.set()  # never leave a pool thread waiting


def _session(server: FTPServer, type_: str = "I") -> Control:
    c = Control(server.port)
    c.login()
    c.expect(f"TYPE {type_}", 200)
    return c


def _drain(sock: socket.socket) -> bytes:
    got = bytearray()
    for _ in range(100_000):
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    sock.close()
    return bytes(got)


def _pump(server: FTPServer) -> Any:
    """The pool-fed pump of the one session that is transferring."""
    for conn in list(server.server.connections):
        if conn.transferring and conn.data.pump is not None:
            return conn.data.pump
    return None


def test_a_stuck_read_blocks_only_its_own_transfer(served):
    fs, server = served
    stuck = _session(server)
    data = stuck.data()
    stuck.expect("RETR slow.bin", 150)
    assert fs.gate.entered.wait(DEADLINE)  # the pool thread is inside read()
    other = _session(server)
    other.expect("NOOP", 200)  # answered while the read is stuck
    listing = other.data()
    other.expect("LIST", 150)
    names = _drain(listing)
    assert b"big.bin" in names and b"slow.bin" in names
    assert other.reply()[0] == 226
    stuck.expect("NOOP", 200)  # the stuck session's own control channel answers too
    fs.gate.opened.set()
    assert hashlib.sha256(_drain(data)).digest() == hashlib.sha256(BIG).digest()
    assert stuck.reply()[0] == 226
    other.close()
    stuck.close()


@pytest.mark.parametrize("rest", [0, 1, CHUNK - 1, CHUNK, len(BIG) - 3])
def test_a_bytesio_is_served_byte_for_byte(served, rest):
    _fs, server = served
    c = _session(server)
    data = c.data()
    if rest:
        c.expect(f"REST {rest}", 350)
    c.expect("RETR big.bin", 150)
    assert _drain(data) == BIG[rest:]
    assert c.reply()[0] == 226
    c.close()


def test_type_a_download_from_a_bytesio(served):
    _fs, server = served
    c = _session(server, "A")
    data = c.data()
    c.expect("RETR a.txt", 150)
    assert _drain(data) == b"a\r\nb\r\nc\r\n"
    assert c.reply()[0] == 226
    c.close()


@pytest.mark.parametrize("type_", ["I", "A"])
def test_an_upload_into_a_sink_without_fileno_is_whole_and_in_order(served, type_):
    fs, server = served
    payload = BIG.replace(b"\r", b"") if type_ == "A" else BIG
    wire = payload.replace(b"\n", b"\r\n") if type_ == "A" else payload
    c = _session(server, type_)
    data = c.data()
    c.expect("STOR up.bin", 150)
    data.sendall(wire)
    data.close()
    assert c.reply()[0] == 226
    stored = fs.read_bytes("/up.bin") if hasattr(fs, "read_bytes") else _fetch(c, "up.bin")
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(payload).hexdigest()
    c.close()


def _fetch(c: Control, name: str) -> bytes:
    c.expect("TYPE I", 200)
    data = c.data()
    c.expect(f"RETR {name}", 150)
    got = _drain(data)
    assert c.reply()[0] == 226
    return got


def test_a_stuck_write_stops_reading_the_socket(served):
    """Back-pressure: with write() blocked, at most DEPTH chunks are held; the socket is
    not read meanwhile (the client's sendall cannot finish), and on release the upload
    lands whole, one write at a time."""
    fs, server = served
    payload = os.urandom(128 * CHUNK)  # far more than the socket buffers hold
    c = _session(server)
    data = c.data()
    data.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
    c.expect("STOR slow.bin", 150)
    sender = threading.Thread(target=lambda: (data.sendall(payload), data.close()))
    sender.start()
    assert fs.gate.entered.wait(DEADLINE)
    assert wait_until(lambda: (p := _pump(server)) is not None and p.in_flight == DEPTH
                      and not p.reading)
    pump = _pump(server)
    c.expect("NOOP", 200)  # the loop serves the control channel while the sink is stuck
    assert sender.is_alive()  # the payload cannot all be buffered: nobody reads it
    assert pump.in_flight == DEPTH and not pump.reading
    fs.gate.opened.set()
    sender.join(DEADLINE)
    assert c.reply()[0] == 226
    assert pump.peak_in_flight <= DEPTH
    assert fs.gate.most_inside == 1  # writes are made one at a time, in order
    assert hashlib.sha256(fs.uploaded).digest() == hashlib.sha256(payload).digest()
    c.close()


def test_abor_while_a_write_is_stuck_writes_nothing_more(served):
    fs, server = served
    c = _session(server)
    data = c.data()
    c.expect("STOR slow.bin", 150)
    sender = threading.Thread(target=lambda: _send_quietly(data, os.urandom(16 * CHUNK)))
    sender.start()
    assert fs.gate.entered.wait(DEADLINE)
    assert wait_until(lambda: (p := _pump(server)) is not None and p.in_flight == DEPTH)
    c.send_line("ABOR")
    codes = [c.reply()[0] for _ in range(2)]
    assert codes[-1] == 226 and codes[0] in (225, 226, 426), codes
    calls = fs.gate.calls
    fs.gate.opened.set()
    sender.join(DEADLINE)
    c.expect("NOOP", 200)  # a round trip: any late result has landed by now
    assert fs.gate.calls == calls  # the queued chunks were never written
    c.close()


def _send_quietly(sock: socket.socket, payload: bytes) -> None:
    try:
        sock.sendall(payload)
    except OSError:
        pass  # the server closed the data connection (ABOR)
    sock.close()


class RaisingFS(MemoryFS):
    """read()/write() raise a known OSError after the first chunk; counts the calls."""

    def __init__(self, error: int) -> None:
        self.error, self.calls, self.armed = error, 0, False
        super().__init__({"/f.bin": BIG})
        self.armed = True

    def open_read(self, vpath: str) -> Any:
        fs, inner = self, super().open_read(vpath)

        class Reader(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def read(self, size: int = -1) -> bytes:  # type: ignore[override]
                fs.calls += 1
                if fs.calls > 1:
                    raise OSError(fs.error, os.strerror(fs.error))
                return inner.read(size)

        return Reader()

    def open_write(self, vpath: str, **kwargs: Any) -> Any:
        fs = self
        if not self.armed:  # the initial files
            return super().open_write(vpath, **kwargs)

        class Writer(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, b: Any) -> int:  # type: ignore[override]
                fs.calls += 1
                raise OSError(fs.error, os.strerror(fs.error))

        return Writer()


@pytest.mark.parametrize(("error", "code"), [(errno.EIO, 550), (errno.ENOSPC, 452),
                                             (errno.ETIMEDOUT, 451)])
@pytest.mark.parametrize("command", ["RETR f.bin", "STOR new.bin"])
def test_a_known_oserror_mid_transfer_is_its_reply(error, code, command):
    fs = RaisingFS(error)
    with FTPServer(fs, users={"user": "pw"}) as server:
        c = _session(server)
        data = c.data()
        c.expect(command, 150)
        if command.startswith("RETR"):
            got = _drain(data)
            assert got == BIG[:len(got)]  # what came before the failure, in order
        else:
            _send_quietly(data, BIG)
        assert c.reply()[0] == code
        calls = fs.calls
        c.expect("NOOP", 200)  # the session goes on
        assert fs.calls == calls == (2 if command.startswith("RETR") else 1)  # no retries
        c.close()


def test_data_socket_is_given_back_when_the_server_closes_it(served):
    """After a pool-fed RETR the data connection is closed by the server (EOF seen)."""
    _fs, server = served
    c = _session(server)
    data = c.data()
    c.expect("RETR big.bin", 150)
    assert len(_drain(data)) == len(BIG)
    assert c.reply()[0] == 226
    other = open_data(*c.pasv())
    c.expect("RETR a.txt", 150)
    assert _drain(other) == b"a\r\nb\nc\n"
    assert c.reply()[0] == 226
    c.close()


class BrokenDirFS(MemoryFS):
    """A directory of 600 entries (three listing slices) whose 400th lstat raises."""

    def __init__(self) -> None:
        super().__init__({f"/d/e{i:03d}": b"." for i in range(600)})
        self.lstats = 0

    def lstat(self, vpath: str) -> os.stat_result:
        if vpath.startswith("/d/"):
            self.lstats += 1
            if vpath == "/d/e400":
                raise RuntimeError("lstat() failed")
        return super().lstat(vpath)


def test_a_listing_failing_mid_way_sends_what_came_before_then_426():
    fs = BrokenDirFS()
    with FTPServer(fs, users={"user": "pw"}) as server:
        c = _session(server)
        data = c.data()
        c.expect("LIST d", 150)
        got = _drain(data)
        assert c.reply()[0] == 426
        names = [line.rsplit(b" ", 1)[-1] for line in got.splitlines()]
        assert names == [b"e%03d" % i for i in range(256)]  # the whole first slice, in order
        calls = fs.lstats
        c.expect("NOOP", 200)
        assert fs.lstats == calls == 401  # nothing after the failing entry
        c.close()

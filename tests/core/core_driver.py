"""A test driver that plays the transport for a sans-IO ``Session``.

It answers every order the core gives the way a real transport would, but
synchronously and in memory, through ``Session.answer``/``Session.fail``: ``Call``
by calling it here (the real transport uses its worker pool), ``Authenticate`` from
an authorizer, ``ListenPassive`` with a fixed port, ``StartTransfer`` by pumping the
transfer's bytes through its transform, ``Wait`` by advancing a fake clock.
``StartTLS`` is left to the test (``d.process(d.session.answer())`` when the
handshake is "done"). Replies, events and actions are recorded in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ftpd.auth.base import AnonymousAuthorizer, ChainAuthorizer, SingleUserAuthorizer
from ftpd.core import actions as A
from ftpd.core.replies import Reply
from ftpd.core.session import Session, SessionConfig
from ftpd.fs.memory import MemoryFS

PEER = ("127.0.0.1", 40000)
LOCAL = ("127.0.0.1", 2121)
PASV_ADDR = ("127.0.0.1", 50000)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Tokens:
    """Deterministic "random" names: t0, t1, ... padded to the asked length."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, nbytes: int) -> str:
        self.count += 1
        return f"{self.count:0{2 * nbytes}x}"


class Driver:
    """One session and the in-memory transport around it."""

    def __init__(self, fs: MemoryFS | None = None, *, writable: bool = False,
                 config: SessionConfig | None = None, authorizer: Any = None,
                 peer: tuple[str, int] = PEER, local: tuple[str, int] = LOCAL,
                 clock: FakeClock | None = None, **config_kw: Any) -> None:
        self.fs = fs if fs is not None else MemoryFS()
        if config is None:
            self.clock = clock or FakeClock()
            config_kw.setdefault("token", Tokens())
            config = SessionConfig(fs_factory=lambda acc: self.fs, clock=self.clock, **config_kw)
        else:
            assert not config_kw
            self.clock = config.clock
        self.config = config
        self.authorizer = authorizer or ChainAuthorizer(
            AnonymousAuthorizer("/", writable=writable), SingleUserAuthorizer("alice", "pw", "/"))
        self.session = Session(config, peer, local, session_id="TEST")
        self.log: list[Any] = []  # everything the core produced, in order
        self.replies: list[Reply] = []
        self.events: list[A.Emit] = []
        self.waits: list[float] = []
        self.closed: A.Close | None = None
        self.downloads: list[bytes] = []  # one entry per completed "send" transfer
        self.upload = b""  # what the next "recv" transfer delivers
        self.chunk = 4  # bytes per pump step: small, to split CR from LF
        self.hold = False  # leave StartTransfer pending instead of running it
        self.pending: A.Transfer | None = None
        self.transfer_end = A.DONE  # what the next auto-run transfer reports
        self.auto_resume = True
        self.hold_calls = False  # leave Calls pending (``release``) instead of answering
        self.calls: list[A.Call] = []
        self.process(self.session.start())

    # -- carrying out actions ------------------------------------------------------
    def process(self, out: Iterable[Any]) -> None:
        for item in out:
            self.log.append(item)
            if isinstance(item, Reply):
                self.replies.append(item)
            elif isinstance(item, A.Emit):
                self.events.append(item)
            elif isinstance(item, A.Call):
                if self.hold_calls:
                    self.calls.append(item)
                else:
                    self.call(item)
            elif isinstance(item, A.Authenticate):
                account = self.authorizer.authenticate(item.username, item.password)
                self.process(self.session.answer(account))
            elif isinstance(item, A.ListenPassive):
                self.process(self.session.answer(PASV_ADDR[1]))
            elif isinstance(item, A.StartTransfer):
                if self.hold:
                    self.pending = item.transfer
                else:
                    self.pending = item.transfer
                    self.finish(self.transfer_end)
            elif isinstance(item, A.Wait):
                self.waits.append(item.seconds)
                if self.auto_resume:
                    self.clock.advance(item.seconds)
                    self.process(self.session.answer())
            elif isinstance(item, A.Close):
                self.closed = item

    def call(self, order: A.Call) -> None:
        """What io/control.py does with a Call, but at once and on this thread."""
        try:
            result = order.fn(*order.args)
        except Exception as exc:
            self.process(self.session.fail(exc))
            return
        if not self.session.expecting:  # the session closed meanwhile: drop the result
            getattr(result, "close", lambda: None)()
            return
        self.process(self.session.answer(result))

    def release(self) -> None:
        """Answer the oldest held Call."""
        self.call(self.calls.pop(0))

    def resume(self) -> None:
        """The pending Wait has elapsed."""
        self.process(self.session.answer())

    def pump(self, upload: bytes | None = None) -> bytes:
        """Move the pending transfer's bytes (without finishing it)."""
        t = self.pending
        assert t is not None, "no transfer pending"
        if t.direction is A.Direction.SEND:
            out = bytearray()
            src = t.source
            if hasattr(src, "read"):
                chunks: Iterable[bytes] = iter(lambda: src.read(self.chunk), b"")  # type: ignore[union-attr]
            else:
                chunks = src  # type: ignore[assignment]
            for chunk in chunks:
                data = t.transform(chunk) if t.transform else chunk
                out += data
                t.bytes_done += len(data)
            out += t.flush_transform()
            return bytes(out)
        data = self.upload if upload is None else upload
        assert t.sink is not None
        for i in range(0, len(data), self.chunk):
            piece = data[i:i + self.chunk]
            t.bytes_done += len(piece)
            t.sink.write(t.transform(piece) if t.transform else piece)
        tail = t.flush_transform()
        if tail:
            t.sink.write(tail)
        return b""

    def finish(self, end: A.TransferEnd = A.DONE, *, pump: bool = True) -> None:
        """End the pending transfer: pump it (unless told not to), then report *end*."""
        t = self.pending
        assert t is not None, "no transfer pending"
        if pump:
            data = self.pump()
            if t.direction is A.Direction.SEND:
                self.downloads.append(data)
        self.pending = None
        self.process(self.session.answer(end))

    # -- talking -------------------------------------------------------------------
    def raw(self, data: bytes) -> list[Reply]:
        start = len(self.replies)
        self.process(self.session.receive(data))
        return self.replies[start:]

    def send(self, line: str | bytes) -> list[Reply]:
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        return self.raw(line + b"\r\n")

    def dialogue(self, lines: Iterable[str | bytes]) -> list[Reply]:
        start = len(self.replies)
        for line in lines:
            self.send(line)
        return self.replies[start:]

    def login(self, user: str = "alice", password: str = "pw") -> None:
        replies = self.dialogue([f"USER {user}", f"PASS {password}"])
        assert replies[-1].code == 230, replies

    def retr(self, path: str) -> bytes:
        replies = self.dialogue(["PASV", f"RETR {path}"])
        assert [r.code for r in replies] == [227, 150, 226], replies
        return self.downloads[-1]

    def stor(self, path: str, data: bytes, verb: str = "STOR") -> list[Reply]:
        self.upload = data
        return self.dialogue(["PASV", f"{verb} {path}"])

    def listing(self, verb: str = "LIST", arg: str = "") -> str:
        replies = self.dialogue(["PASV", f"{verb} {arg}".strip()])
        assert [r.code for r in replies] == [227, 150, 226], replies
        return self.downloads[-1].decode("utf-8", "surrogateescape")

    def event_names(self) -> list[str]:
        return [e.name for e in self.events]


def shared_config(fs: MemoryFS, clock: FakeClock, **kw: Any) -> SessionConfig:
    """One config for several sessions (they share the login throttle)."""
    kw.setdefault("token", Tokens())
    return SessionConfig(fs_factory=lambda acc: fs, clock=clock, **kw)


def codes(replies: Iterable[Reply]) -> list[int]:
    return [r.code for r in replies]


def text(reply: Reply) -> str:
    return "\n".join(reply.lines)


_SINGLE = re.compile(rb"^[1-5]\d\d [^\r\n]*\r\n$")


def parse_wire(data: bytes) -> tuple[int, list[str]]:
    """Parse one encoded reply strictly as RFC 959 single or multi-line; returns
    (code, lines). Raises AssertionError when it is not well-formed."""
    assert data.endswith(b"\r\n"), data
    lines = data[:-2].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line, data
    if len(lines) == 1:
        assert _SINGLE.match(data), data
        return int(data[:3]), [data[4:-2].decode("utf-8", "surrogateescape")]
    first, last = lines[0], lines[-1]
    assert re.match(rb"^[1-5]\d\d-", first), data
    code = first[:3]
    assert last.startswith(code + b" "), data
    for inner in lines[1:-1]:
        # an inner line must never look like the end of the reply
        assert not inner.startswith(code + b" "), data
        assert not re.match(rb"^\d", inner), data
    return int(code), [ln.decode("utf-8", "surrogateescape") for ln in lines]



"""RESP2, the Redis protocol, as far as ftpd speaks it: commands out, replies in, parsed
incrementally from whatever bytes have arrived so far (the sink reads a non-blocking
socket; the consumer a blocking one). No I/O here."""

from __future__ import annotations

from typing import Any

CRLF = b"\r\n"


class RespError(Exception):
    """An error reply (``-ERR ...``). The parser returns it as a value, in its place in a
    pipeline, so that the other replies still match their commands."""

    @property
    def code(self) -> str:
        """The first word: ``ERR``, ``WRONGTYPE``, ``BUSYGROUP``, ``NOGROUP``, ..."""
        return str(self).split(" ", 1)[0]


class ProtocolError(ValueError):
    """Bytes that are not RESP: the connection is useless and is dropped."""


def bulk(value: bytes | str | int) -> bytes:
    """One bulk string: ``$<len>\\r\\n<bytes>\\r\\n``."""
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    return b"$%d\r\n%s\r\n" % (len(value), value)


def command(*args: bytes | str | int) -> bytes:
    """A command as an array of bulk strings, the form every Redis accepts."""
    return b"*%d\r\n" % len(args) + b"".join(bulk(arg) for arg in args)


_NEED = object()  # not enough bytes yet for a whole reply


class ReplyParser:
    """Feed bytes in, pop whole replies out as they complete.

    Simple strings come out as ``str``, bulk strings as ``bytes`` (``None`` for a nil),
    integers as ``int``, arrays as lists, errors as ``RespError`` values."""

    MAX_BULK = 512 << 20  # Redis's own limit on a string

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pop_reply(self) -> tuple[bool, Any]:
        """``(True, reply)`` for the next complete reply, ``(False, None)`` when there is none
        yet. Raises ProtocolError for bytes that are not RESP."""
        value, end = self._parse(self._pos)
        if value is _NEED:
            return False, None
        self._pos = end
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[:self._pos]
            self._pos = 0
        return True, value

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as replies."""
        return len(self._buf) - self._pos

    def _line(self, pos: int) -> tuple[bytes | None, int]:
        end = self._buf.find(CRLF, pos)
        if end < 0:
            if len(self._buf) - pos > 65536:
                raise ProtocolError("reply line too long")
            return None, pos
        return bytes(self._buf[pos:end]), end + 2

    def _parse(self, pos: int) -> tuple[Any, int]:
        if pos >= len(self._buf):
            return _NEED, pos
        kind = self._buf[pos:pos + 1]
        line, after = self._line(pos + 1)
        if line is None:
            return _NEED, pos
        if kind == b"+":
            return line.decode("utf-8", "replace"), after
        if kind == b"-":
            return RespError(line.decode("utf-8", "replace")), after
        if kind == b":":
            return _int(line), after
        if kind == b"$":
            size = _int(line)
            if size < 0:
                return None, after
            if size > self.MAX_BULK:
                raise ProtocolError(f"bulk string of {size} bytes")
            if len(self._buf) < after + size + 2:
                return _NEED, pos
            if self._buf[after + size:after + size + 2] != CRLF:
                raise ProtocolError("bulk string not followed by CRLF")
            return bytes(self._buf[after:after + size]), after + size + 2
        if kind == b"*":
            count = _int(line)
            if count < 0:
                return None, after
            items = []
            for _ in range(count):
                item, after = self._parse(after)
                if item is _NEED:
                    return _NEED, pos
                items.append(item)
            return items, after
        raise ProtocolError(f"unknown reply type {bytes(kind)!r}")


def _int(line: bytes) -> int:
    try:
        return int(line)
    except ValueError:
        raise ProtocolError(f"bad number {line[:40]!r}") from None

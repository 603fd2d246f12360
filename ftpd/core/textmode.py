"""TYPE A line-ending conversion, as stateful callables applied chunk by chunk."""

from __future__ import annotations


class ToNetwork:
    """Local LF (or CRLF) line ends to the network's CRLF."""

    def __init__(self) -> None:
        self._cr = False  # the previous chunk ended with CR

    def __call__(self, data: bytes) -> bytes:
        if not data:
            return data
        lead_lf = self._cr and data[:1] == b"\n"
        self._cr = data[-1:] == b"\r"
        out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return out[1:] if lead_lf else out

    def flush(self) -> bytes:
        return b""


class FromNetwork:
    """The network's CRLF to local LF; a CR split from its LF across chunks is held."""

    def __init__(self) -> None:
        self._held_cr = False

    def __call__(self, data: bytes) -> bytes:
        if self._held_cr:
            data = b"\r" + data
            self._held_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._held_cr = True
        return data.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        held, self._held_cr = self._held_cr, False
        return b"\r" if held else b""

"""Control-connection line framing: bytes in, command lines out.

Strips Telnet IAC sequences (clients send IAC IP / IAC DM before an urgent ABOR),
caps a line at MAX_LINE bytes and never holds more than that in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE = 2048

IAC = 0xFF
DONT, DO, WONT, WILL = 0xFE, 0xFD, 0xFC, 0xFB
SB, SE = 0xFA, 0xF0


@dataclass(frozen=True)
class LineTooLong:
    """Marker for a line that exceeded MAX_LINE bytes (its bytes were discarded)."""

    length: int


class LineFramer:
    """Turns a stream of control-connection bytes into lines (without CR LF)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._overflow = 0  # bytes discarded from the current over-long line
        self._iac = 0  # 0: none, 1: saw IAC, 2: saw IAC + option verb
        self._in_sb = False

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        """Feed raw bytes; return the complete lines they finish."""
        if self._iac or IAC in data or self._in_sb:
            data = self._strip_telnet(data)
        out: list[bytes | LineTooLong] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                self._append(data[start:])
                return out
            self._append(data[start:nl])
            start = nl + 1
            if self._overflow:
                out.append(LineTooLong(self._overflow + len(self._buf)))
                self._overflow = 0
            else:
                line = bytes(self._buf)
                out.append(line[:-1] if line.endswith(b"\r") else line)
            self._buf.clear()

    def _append(self, chunk: bytes) -> None:
        if not chunk:
            return
        room = self.max_line - len(self._buf)
        if self._overflow or len(chunk) > room:
            self._overflow += len(self._buf) + len(chunk)
            self._buf.clear()
        else:
            self._buf += chunk

    def _strip_telnet(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if self._in_sb:
                if self._iac:
                    self._iac = 0
                    if b == SE:
                        self._in_sb = False
                elif b == IAC:
                    self._iac = 1
                continue
            if self._iac == 1:
                if b == IAC:
                    out.append(IAC)
                    self._iac = 0
                elif b in (DONT, DO, WONT, WILL):
                    self._iac = 2
                elif b == SB:
                    self._in_sb = True
                    self._iac = 0
                else:  # IP, DM, AO, AYT, ... carry no data
                    self._iac = 0
            elif self._iac == 2:
                self._iac = 0  # the option byte
            elif b == IAC:
                self._iac = 1
            else:
                out.append(b)
        return bytes(out)

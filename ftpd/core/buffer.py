"""Control-connection line framing: bytes in, command lines out.

Strips Telnet commands (clients send IAC IP / IAC DM before an urgent ABOR),
caps a line at MAX_LINE bytes (its CR LF not counted) and never holds more than
that (and the CR) in memory.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_LINE = 2048

IAC = 0xFF
DONT, DO, WONT, WILL = 0xFE, 0xFD, 0xFC, 0xFB
NOP, GA = 0xF1, 0xF9  # NOP, DM, BRK, IP, AO, AYT, EC, EL, GA: commands without data


class LineTooLong(NamedTuple):
    """Marker for a line that exceeded MAX_LINE bytes (its bytes were discarded)."""

    length: int


class LineFramer:
    """Turns a stream of control-connection bytes into lines (without CR LF). The part
    of a line not yet ended is immutable ``bytes`` (empty: the shared ``b""``), so an
    idle session keeps no buffer of its own."""

    __slots__ = ("max_line", "_buf", "_overflow", "_iac")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = b""
        self._overflow = 0  # bytes discarded from the current over-long line
        self._iac = 0  # 0: none, 1: saw IAC, 2: saw IAC + option verb

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        """Feed raw bytes; return the complete lines they finish."""
        if self._iac or IAC in data:
            data = self._strip_telnet(data)
        last = len(data) - 1
        if not self._buf and not self._overflow and 0 <= last <= self.max_line \
                and data.find(b"\n") == last:  # one whole command: most reads
            return [data[:-2] if data.endswith(b"\r\n") else data[:-1]]
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
                line = self._buf
                if line.endswith(b"\r"):
                    line = line[:-1]
                # the buffer holds one byte more than a line, for its CR
                out.append(LineTooLong(len(self._buf)) if len(line) > self.max_line else line)
            self._buf = b""

    def _append(self, chunk: bytes) -> None:
        if not chunk:
            return
        room = self.max_line + 1 - len(self._buf)  # + 1: the CR of the CR LF
        if self._overflow or len(chunk) > room:
            self._overflow += len(self._buf) + len(chunk)
            self._buf = b""
        else:
            self._buf += chunk  # at most MAX_LINE + 1 bytes: copying is cheap

    def _strip_telnet(self, data: bytes) -> bytes:
        """Drop IAC + a Telnet command (IP, DM, NOP, ...; WILL/WONT/DO/DONT + option);
        IAC IAC is one literal 0xFF. Any other 0xFF is data, as ProFTPD treats it:
        clients send non-UTF-8 names' 0xFF bytes undoubled."""
        out = bytearray()
        for b in data:
            if self._iac == 1:
                self._iac = 0
                if b == IAC:
                    out.append(IAC)
                elif b in (DONT, DO, WONT, WILL):
                    self._iac = 2
                elif not NOP <= b <= GA:  # not a command: both bytes are data
                    out.append(IAC)
                    out.append(b)
            elif self._iac == 2:
                self._iac = 0  # the option byte
            elif b == IAC:
                self._iac = 1
            else:
                out.append(b)
        return bytes(out)

"""Replies and ProFTPD-style response chains.

A command's handlers add lines to a success chain or an error chain; when the
command ends exactly one chain is flushed as one RFC 959 reply.
"""

from __future__ import annotations

DUP = 0  # "continue the reply another handler started" (ProFTPD's R_DUP)


def _clean(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ").replace("\0", " ")


class Reply:
    """One complete reply: a code and one or more text lines (immutable)."""

    __slots__ = ("code", "lines")

    def __init__(self, code: int, lines: tuple[str, ...]) -> None:
        if not 100 <= code <= 599:
            raise ValueError(f"bad reply code {code}")
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "lines", tuple(lines))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Reply is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and (self.code, self.lines) == (other.code, other.lines)

    def __hash__(self) -> int:
        return hash((self.code, self.lines))

    def __repr__(self) -> str:
        return f"Reply(code={self.code}, lines={self.lines!r})"

    @classmethod
    def of(cls, code: int, *lines: str) -> Reply:
        return cls(code, tuple(lines) or ("",))

    def encode(self) -> bytes:
        """RFC 959 wire form; inner lines are indented so none can pass for a final line."""
        if len(self.lines) == 1:  # most replies: one line, nothing to clean
            line = self.lines[0]
            if "\r" in line or "\n" in line or "\0" in line:
                line = _clean(line)
            return f"{self.code} {line}\r\n".encode("utf-8", "surrogateescape")
        lines = [_clean(t) for t in self.lines]
        parts = [f"{self.code}-{lines[0]}\r\n"]
        parts.extend(f" {inner}\r\n" for inner in lines[1:-1])
        parts.append(f"{self.code} {lines[-1]}\r\n")
        return "".join(parts).encode("utf-8", "surrogateescape")


class ResponseChain:
    """Lines added by handlers; flushed as one reply whose code is the first added."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[int, str]] = []

    def __repr__(self) -> str:
        return f"ResponseChain({self.entries!r})"

    def add(self, code: int, text: str) -> None:
        self.entries.append((code, text))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def to_reply(self) -> Reply | None:
        entries = self.entries
        if len(entries) == 1 and entries[0][0] != DUP:  # the common case, without scans
            return Reply(entries[0][0], (entries[0][1],))
        code = next((c for c, _ in entries if c != DUP), None)
        if code is None:
            return None
        return Reply(code, tuple(text for _, text in self.entries))

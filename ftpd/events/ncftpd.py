"""NcFTPd-framed event messages (EVENTS.md): nothing here does I/O. Encoding is here; the
typed events and decode() load from ftpd.events.messages on first use, so a server that
only sends never builds them. The token layout is a contract; fields are only appended."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftpd.events.messages import (
        ChmodMessage,
        DeleteMessage,
        DownloadMessage,
        ListingMessage,
        LoginMessage,
        LogoutMessage,
        Message,
        MkdirMessage,
        RenameMessage,
        SymlinkMessage,
        UploadMessage,
        decode,
    )

__all__ = [
    "ENCODED_EVENTS", "MAX_BODY", "MalformedMessage", "encode", "shorten_path", "decode",
    "Message", "DownloadMessage", "UploadMessage", "ListingMessage", "DeleteMessage", "MkdirMessage",
    "RenameMessage", "SymlinkMessage", "ChmodMessage", "LoginMessage", "LogoutMessage",
]
_DECODING = frozenset(__all__[5:])

MAGIC = b"STR\n"
MAX_BODY = 999  # the length field has three digits
EMAIL_MAX = 64  # the email token is client-chosen: cap it first
_MIN_PATH = 16  # paths are never shortened below this before other tokens are cut
_CLEAN = bytes.maketrans(b"\n\r\0", b"???")


# -- encoding ------------------------------------------------------------------------------

def _tok(value: str) -> bytes:
    """A token's bytes: UTF-8 (undecodable file-name bytes restored), no \\n, \\r or NUL."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "replace")
    return raw.translate(_CLEAN)


def _cut_utf8(raw: bytes, limit: int) -> bytes:
    """The first *limit* bytes at most, without splitting a UTF-8 sequence."""
    if len(raw) <= limit:
        return raw
    end = max(limit, 0)
    while end > 0 and raw[end] & 0xC0 == 0x80:
        end -= 1
    return raw[:end]


def _tail_utf8(raw: bytes, limit: int) -> bytes:
    """The last *limit* bytes at most, starting on a UTF-8 character boundary."""
    start = len(raw) - max(limit, 0)
    while start < len(raw) and raw[start] & 0xC0 == 0x80:
        start += 1
    return raw[start:]


def shorten_path(raw: bytes, limit: int) -> bytes:
    """Shorten a path in the middle to at most *limit* bytes, keeping its start and its
    last component when they fit: ``/very/long/.../name.txt``."""
    if len(raw) <= limit:
        return raw
    if limit < 5:
        return _cut_utf8(raw, limit)
    room = limit - 3  # for "..."
    slash = raw.rfind(b"/")
    if 0 < slash and len(raw) - slash <= room - 1:
        tail = raw[slash:]
    else:
        tail = _tail_utf8(raw, room - room // 2)
    head = _cut_utf8(raw, room - len(tail))
    cut = head.rfind(b"/")
    if cut > 0 and tail.startswith(b"/"):
        head = head[:cut + 1]  # end the head on a component boundary
    return head + b"..." + tail


def _fit(toks: list[bytes], paths: tuple[int, ...], excess: int) -> None:
    """Make *toks* *excess* bytes shorter: paths first (shortened in the middle, the longest
    first, down to a common cap), then, only if that is not enough, other tokens from the
    end. Types and times are never touched."""
    if paths:
        lens = [len(toks[i]) for i in paths]

        def saved(cap: int) -> int:
            return sum(n - cap for n in lens if n > cap)

        lo, hi = _MIN_PATH, max(lens)
        if saved(lo) <= excess:
            cap = lo
        else:  # the largest cap that saves enough
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if saved(mid) >= excess:
                    lo = mid
                else:
                    hi = mid - 1
            cap = lo
        for i in paths:
            if len(toks[i]) > cap:
                excess -= len(toks[i])
                toks[i] = shorten_path(toks[i], cap)
                excess += len(toks[i])
    while excess > 0:  # pathological user names or hosts: cut the longest token
        i = max(range(2, len(toks)), key=lambda k: len(toks[k]))
        before = len(toks[i])
        toks[i] = _cut_utf8(toks[i], before - excess)
        excess -= before - len(toks[i])


def _transfer(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    d = float(ev.duration)
    rate = ev.bytes / 1024 / d if d > 0 else 0.0
    return ([ev.path, str(ev.bytes), f"{d:.3f}", f"{rate:.3f}", ev.status, ev.type,
             str(ev.offset), str(ev.file_size)], (6,))


def _listing(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, ev.status, ev.pattern, "RECURSIVE" if ev.recursive else ""], (6, 8)


def _delete(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, "dir" if ev.kind == "dir" else "file"], (6,)


def _rmdir(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, "dir"], (6,)


def _mkdir(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path], (6,)


def _rename(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.old_path, ev.new_path], (6, 7)


def _symlink(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.target, ev.link_path], (6, 7)


def _chmod(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [ev.path, f"{ev.mode:04o}"], (6,)


def _login(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return [], ()


def _logout(ev: Any) -> tuple[list[str], tuple[int, ...]]:
    return ([str(int(ev.duration)), str(ev.files_down), str(ev.bytes_down), str(ev.files_up),
             str(ev.bytes_up), ev.reason], ())


_ENCODERS = {
    "fs.download": (b"R", _transfer), "fs.upload": (b"S", _transfer),
    "fs.listing": (b"T", _listing), "fs.delete": (b"D", _delete), "fs.rmdir": (b"D", _rmdir),
    "fs.mkdir": (b"M", _mkdir), "fs.rename": (b"N", _rename), "fs.symlink": (b"L", _symlink),
    "fs.chmod": (b"C", _chmod), "session.login": (b"I", _login),
    "session.logout": (b"O", _logout),
}
ENCODED_EVENTS: tuple[str, ...] = tuple(_ENCODERS)
"""Bus event names that have an NcFTPd message; the sinks listen to exactly these."""


def encode(event_name: str, event_data: Any) -> bytes | None:
    """The framed message for a bus event (``ftpd.core.events`` data), or None when the
    event has no NcFTPd type. The result is always a valid frame of at most 1007 bytes.

    The common case costs one join and one encode for all tokens; only a message with a
    token to clean, an email to cut or too long for a frame takes the token-by-token
    path, which gives the same bytes for the others (tests/events/test_ncftpd.py checks)."""
    spec = _ENCODERS.get(event_name)
    if spec is None:
        return None
    letter, layout = spec
    info = event_data.session
    rest, paths = layout(event_data)
    when = int(event_data.time)
    email = info.email if info.anonymous else ""
    toks = ["anonymous" if info.anonymous else info.user, email, info.host, info.session_id,
            *rest]
    try:
        raw = "\n".join(toks).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = b"\r"  # a lone surrogate: the token path replaces it
    if (raw.count(b"\n") == len(toks) - 1 and b"\r" not in raw and b"\0" not in raw
            and (len(email) <= EMAIL_MAX and email.isascii())):
        body = b"%s\n%d\n%s\n" % (letter, when, raw)
        if len(body) <= MAX_BODY:
            return b"STR\n%3d\n" % len(body) + body
    body = _body_by_tokens(letter, when, _who(info), rest, paths)
    return b"STR\n%3d\n" % len(body) + body


def _body_by_tokens(letter: bytes, when: int, who: tuple[bytes, ...], rest: list[str],
                    paths: tuple[int, ...]) -> bytes:
    """The body token by token: each one cleaned, then cut to fit (the general path)."""
    toks = [letter, b"%d" % when, *who]
    toks.extend(_tok(value) for value in rest)
    size = sum(map(len, toks)) + len(toks)
    if size > MAX_BODY:
        _fit(toks, paths, size - MAX_BODY)
    return b"\n".join(toks) + b"\n"


def _who(info: Any) -> tuple[bytes, ...]:
    """Tokens 3-6 (user, email, host, session id), each cleaned; the email cut."""
    anonymous = info.anonymous
    return (_tok("anonymous" if anonymous else info.user),
            _cut_utf8(_tok(info.email), EMAIL_MAX) if anonymous else b"",
            _tok(info.host), _tok(info.session_id))


class MalformedMessage(ValueError):
    """The bytes are not a valid NcFTPd event message; receivers log and skip them."""


def __getattr__(name: str) -> Any:
    """decode() and the event classes, imported on first use (PEP 562)."""
    if name in _DECODING:
        from ftpd.events import messages

        value = getattr(messages, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

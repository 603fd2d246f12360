"""The digest of a stored file (HASH, XMD5, XSHA1, XSHA256, XCRC): read through the
session's FileSystem in chunks, so confinement, hidden names and permissions apply as
for RETR, and computed with hashlib or zlib.crc32. It blocks for as long as the file
takes to read: the core asks for it and the transport runs it in the worker pool, never
on the loop (hashlib releases the GIL on large chunks). hashlib and zlib are imported on
first use: start-up under inetd stays lean."""

from __future__ import annotations

from typing import Any

from ftpd.fs.base import FileSystem

ALGORITHMS = ("SHA-256", "SHA-1", "MD5", "CRC32")  # the IANA names the draft asks for
_HASHLIB_NAMES = {"SHA-256": "sha256", "SHA-1": "sha1", "MD5": "md5"}
CHUNK = 256 * 1024


class _Crc32:
    """zlib.crc32 behind hashlib's ``update``/``hexdigest`` (8 hex digits, as XCRC gives)."""

    def __init__(self) -> None:
        import zlib

        self._crc32 = zlib.crc32
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = self._crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def new_digest(algorithm: str) -> Any:
    """A fresh digest object for one of ALGORITHMS (KeyError for any other name)."""
    if algorithm == "CRC32":
        return _Crc32()
    import hashlib

    # a checksum, not a security decision: MD5 stays available on FIPS systems too
    return hashlib.new(_HASHLIB_NAMES[algorithm], usedforsecurity=False)


def file_digest(fs: FileSystem, vpath: str, algorithm: str, start: int = 0,
                end: int | None = None) -> tuple[str, int]:
    """The lowercase hex digest of the bytes ``[start, end)`` of *vpath* (*end* None: to
    its end) and how many bytes it covers (fewer than asked if the file is shorter now)."""
    digest = new_digest(algorithm)
    done = 0
    f = fs.open_read(vpath)
    try:
        if start:
            f.seek(start)
        while end is None or start + done < end:
            want = CHUNK if end is None else min(CHUNK, end - start - done)
            data = f.read(want)
            if not data:
                break
            digest.update(data)
            done += len(data)
    finally:
        f.close()
    return digest.hexdigest(), done

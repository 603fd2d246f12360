"""The digest of a stored file (HASH, XMD5, XSHA1, XSHA256, XCRC): read through the
session's FileSystem, so confinement, hidden names and permissions apply as for RETR,
and computed with hashlib or zlib.crc32. Reading blocks: the core asks for each step
and the transport runs it in the worker pool, never on the loop (hashlib releases the
GIL on large chunks).

A file is digested a slice (``SLICE`` bytes) per pool call, not in one: between two
slices the worker serves whatever else was queued, so a huge file never holds a worker
for long, and a session that goes away stops the reading at its slice (the transport
closes the ``DigestJob`` it no longer wants). hashlib and zlib are imported on first
use: start-up under inetd stays lean."""

from __future__ import annotations

from typing import Any, BinaryIO

from ftpd.fs.base import FileSystem

_HASHLIB_NAMES = {"SHA-256": "sha256", "SHA-1": "sha1", "MD5": "md5"}  # and CRC32
CHUNK = 256 * 1024  # one read
SLICE = 16 * CHUNK  # one pool call: 4 MiB


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
    """A fresh digest object for SHA-256, SHA-1, MD5 or CRC32 (KeyError for any other)."""
    if algorithm == "CRC32":
        return _Crc32()
    import hashlib

    # a checksum, not a security decision: MD5 stays available on FIPS systems too
    return hashlib.new(_HASHLIB_NAMES[algorithm], usedforsecurity=False)


class DigestJob:
    """One file being digested: ``step()`` (in the pool) until ``done``; then
    ``hexdigest`` (lowercase) and ``size``, the bytes it covers (fewer than asked for
    when the file is shorter). The file is closed when done, on an error, or by
    ``close()`` (the transport's, for a session that has gone)."""

    def __init__(self, f: BinaryIO, digest: Any, length: int | None) -> None:
        self.file: BinaryIO | None = f
        self.digest = digest
        self.left = length  # bytes still wanted; None: up to the end of the file
        self.size = 0
        self.hexdigest = ""

    @property
    def done(self) -> bool:
        return self.file is None

    def step(self) -> DigestJob:
        """Read and digest up to SLICE bytes; returns itself (the answer to the ask)."""
        f = self.file
        assert f is not None
        try:
            budget = SLICE if self.left is None else min(SLICE, self.left)
            while budget > 0:
                data = f.read(min(CHUNK, budget))
                if not data:
                    budget = self.left = 0  # end of file
                    break
                self.digest.update(data)
                self.size += len(data)
                budget -= len(data)
                if self.left is not None:
                    self.left -= len(data)
            if self.left == 0 or budget > 0:
                self.hexdigest = self.digest.hexdigest()
                self.close()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        f, self.file = self.file, None
        if f is not None:
            f.close()


def open_digest(fs: FileSystem, vpath: str, algorithm: str, start: int = 0,
                end: int | None = None) -> DigestJob:
    """Open *vpath* for the digest of its bytes ``[start, end)`` (*end* None: to its end)."""
    digest = new_digest(algorithm)  # an unknown name fails before anything is opened
    f = fs.open_read(vpath)
    try:
        if start:
            f.seek(start)
        return DigestJob(f, digest, None if end is None else end - start)
    except BaseException:
        f.close()
        raise


def file_digest(fs: FileSystem, vpath: str, algorithm: str, start: int = 0,
                end: int | None = None) -> tuple[str, int]:
    """The whole job in one call (for programs and tests): (hexdigest, bytes covered)."""
    job = open_digest(fs, vpath, algorithm, start, end)
    while not job.done:
        job.step()
    return job.hexdigest, job.size

"""Streaming file objects over S3 objects: bounded memory whatever the size.

``S3Reader`` is one streamed GET (``Range: bytes=N-`` after a seek, as REST needs);
``S3Writer`` buffers one part, then streams a multipart upload, and the object appears
only when ``close()`` completes it. ``abort()`` (or a writer dropped unclosed) discards
the upload, leaving neither an object nor a pending multipart upload.
"""

from __future__ import annotations

import atexit
import errno
import io
import weakref
from typing import Any

from ftpd.fs.s3errors import log, store_error

READ_CHUNK = 1024 * 1024  # what one step of the GET stream hands over at most
WRITE_CONCURRENCY = 2  # parts in flight: memory stays below part_size * 4

_unfinished: weakref.WeakSet[S3Writer] = weakref.WeakSet()


@atexit.register
def _abort_unfinished() -> None:
    """A server that stops with uploads under way leaves no pending multipart upload."""
    for writer in list(_unfinished):
        writer.abort()


class S3Reader(io.RawIOBase):
    """A streamed GET with seek; no ``fileno`` (the data channel copies through it)."""

    def __init__(self, store: Any, key: str, vpath: str, size: int) -> None:
        self._store, self._key, self._vpath, self._size = store, key, vpath, size
        self._pos = 0
        self._stream: Any = None
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        pos = base + offset
        if pos < 0:
            raise OSError(errno.EINVAL, "negative seek position", self._vpath)
        if pos != self._pos:
            self._pos, self._stream, self._pending = pos, None, memoryview(b"")
        return pos

    def _open(self) -> None:
        import obstore

        options: dict[str, Any] = {"range": {"offset": self._pos}} if self._pos else {}
        try:
            result = obstore.get(self._store, self._key, options=options)
            self._stream = iter(result.stream(min_chunk_size=READ_CHUNK))
        except Exception as exc:
            raise store_error(exc, "GET", self._vpath) from None

    def _next_chunk(self) -> bool:
        """The next piece of the GET; a stream that broke mid-way (a stalled read, the
        request's time limit on a slow client) is resumed once from where it stopped."""
        for attempt in (1, 2):
            if self._stream is None:
                self._open()
            try:
                self._pending = memoryview(next(self._stream))
                return True
            except StopIteration:
                return False
            except Exception as exc:
                self._stream = None
                if attempt == 2 or self._pos >= self._size:
                    raise store_error(exc, "GET", self._vpath) from None
                log.info("s3 GET %s broke at byte %d; resuming there", self._vpath, self._pos)
        return False

    def read(self, size: int | None = -1) -> bytes:
        """Up to *size* bytes, at most one piece of the stream per call (a short read,
        as from a socket); everything left with no size."""
        if self.closed:
            raise ValueError("read from a closed S3Reader")
        whole = size is None or size < 0
        want = self._size - self._pos if whole else min(size, self._size - self._pos)
        if not whole:  # the usual call (the data pool's): one copy, out of the piece
            return bytes(self._take(want))
        out = bytearray()
        while len(out) < want:
            if not self._pending and not self._next_chunk():
                break
            take = self._pending[:want - len(out)]
            out += take
            self._pos += len(take)
            self._pending = self._pending[len(take):]
        return bytes(out)

    def readinto(self, b: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed S3Reader")
        take = self._take(min(len(b), self._size - self._pos))
        b[:len(take)] = take
        return len(take)

    def _take(self, want: int) -> memoryview:
        """Up to *want* bytes of the current piece (the next one if it is used up),
        without copying them."""
        if want <= 0 or (not self._pending and not self._next_chunk()):
            return memoryview(b"")
        take = self._pending[:want]
        self._pos += len(take)
        self._pending = self._pending[len(take):]
        return take

    def close(self) -> None:
        self._stream, self._pending = None, memoryview(b"")
        super().close()


class S3Writer(io.RawIOBase):
    """Up to one part in memory; past that a multipart upload of *part_size* parts.

    A file that fits in one part is one PUT at ``close()`` (conditional with
    ``exclusive``: If-None-Match). Larger exclusive uploads check the key just before
    completing, since obstore's multipart upload has no conditional form."""

    def __init__(self, store: Any, key: str, vpath: str, part_size: int, *,
                 exclusive: bool = False) -> None:
        self._store, self._key, self._vpath = store, key, vpath
        self._part_size, self._exclusive = part_size, exclusive
        self._buffer = bytearray()
        self._upload: Any = None
        self._done = False
        _unfinished.add(self)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self._done:
            raise ValueError("write to a closed S3Writer")
        n = len(memoryview(b).cast("B"))
        if self._upload is None and len(self._buffer) + n <= self._part_size:
            self._buffer += b
            return n
        try:
            if self._upload is None:
                self._start_upload()
            # a copy: obstore keeps a reference to what it is given, and the data
            # channel reuses its receive buffer
            self._upload.write(bytes(b))
        except Exception as exc:
            self.abort()
            raise _as_oserror(exc, "multipart upload", self._vpath) from None
        return n

    def _start_upload(self) -> None:
        import obstore

        self._upload = obstore.open_writer(self._store, self._key, buffer_size=self._part_size,
                                           max_concurrency=WRITE_CONCURRENCY)
        head, self._buffer = bytes(self._buffer), bytearray()
        if head:
            self._upload.write(head)

    def close(self) -> None:
        """Complete the upload: the object appears now, whole."""
        if self._done:
            return super().close()
        self._done = True
        _unfinished.discard(self)
        try:
            if self._upload is None:
                self._put_whole()
            else:
                if self._exclusive:
                    self._refuse_existing()
                self._upload.close()
        except OSError:
            self._discard()
            raise
        except Exception as exc:
            self._discard()
            raise store_error(exc, "complete upload", self._vpath) from None
        finally:
            self._buffer = bytearray()
            super().close()

    def _put_whole(self) -> None:
        import obstore

        mode = "create" if self._exclusive else "overwrite"
        obstore.put(self._store, self._key, bytes(self._buffer), mode=mode, use_multipart=False)

    def _refuse_existing(self) -> None:
        import obstore

        try:
            obstore.head(self._store, self._key)
        except FileNotFoundError:
            return
        raise FileExistsError(errno.EEXIST, "File exists", self._vpath)

    def abort(self) -> None:
        """Discard the upload: no object, no pending multipart upload. Idempotent."""
        if not self._done:
            self._done = True
            _unfinished.discard(self)
            self._discard()
            self._buffer = bytearray()
        super().close()

    def _discard(self) -> None:
        upload, self._upload = self._upload, None
        if upload is None:
            return
        try:
            upload.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except Exception as exc:  # the store may be gone too; say so, once
            log.warning("s3 abort of the upload of %s failed: %s", self._vpath,
                        str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.abort()


def _as_oserror(exc: BaseException, what: str, vpath: str) -> OSError:
    return exc if isinstance(exc, OSError) and exc.errno else store_error(exc, what, vpath)

"""The filesystem interface the core talks to.

Every method takes *virtual* paths already normalised by ``core.paths.resolve``
("/" is the user's root). Failures are ``OSError`` with an errno; the core maps
errnos to replies. A filesystem must refuse (EACCES) any path whose real location
lies outside its root.

``rename(src, dst, replace=False)`` must not replace an existing *dst* (EEXIST
instead, atomically: STOU under ``--atomic-uploads`` finishes that way, so that a file
created at its unique name meanwhile survives); with ``replace=True`` (the default) it
replaces a file as ``os.rename`` does.

Optional: ``lstat_entries(vdir, names)`` yielding ``(name, lstat)`` for entries of one
directory, when the filesystem can do that faster than one ``lstat`` per path (LIST of
a large directory uses it).

Optional, on a writer returned by ``open_write``: ``abort()``, the way a server says
"discard this upload" (ABOR, a lost data connection, a server stop). ``close()`` means
the upload is complete; after ``abort()`` nothing of it may remain. An object store
needs it (S3FS: ``close()`` completes the multipart upload, ``abort()`` aborts it, so
no object and no pending upload is left); a plain file may do without. A server calls
``abort()`` instead of ``close()`` when the transfer failed, if the writer has it.

Optional: a true class attribute ``uploads_are_atomic``: what ``open_write`` writes appears
whole, only at ``close()`` (S3FS), so ``--atomic-uploads`` needs no temporary name and
rename (which on S3 would be a copy and a delete).
"""

from __future__ import annotations

import os
from typing import BinaryIO, Protocol, runtime_checkable


@runtime_checkable
class FileSystem(Protocol):
    def stat(self, vpath: str) -> os.stat_result: ...
    def lstat(self, vpath: str) -> os.stat_result: ...
    def listdir(self, vpath: str) -> list[str]: ...
    def readlink(self, vpath: str) -> str: ...
    def open_read(self, vpath: str) -> BinaryIO: ...
    def open_write(self, vpath: str, *, offset: int = 0, append: bool = False,
                   exclusive: bool = False) -> BinaryIO: ...
    def mkdir(self, vpath: str) -> None: ...
    def rmdir(self, vpath: str) -> None: ...
    def remove(self, vpath: str) -> None: ...
    def rename(self, src: str, dst: str, *, replace: bool = True) -> None: ...
    def chmod(self, vpath: str, mode: int) -> None: ...
    def utime(self, vpath: str, mtime: float) -> None: ...
    def symlink(self, target: str, vlink: str) -> None: ...


def isdir(fs: FileSystem, vpath: str) -> bool:
    import stat

    try:
        return stat.S_ISDIR(fs.stat(vpath).st_mode)
    except OSError:
        return False


def exists(fs: FileSystem, vpath: str) -> bool:
    try:
        fs.lstat(vpath)
    except OSError:
        return False
    return True

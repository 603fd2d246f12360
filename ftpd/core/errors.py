"""Errors that know their reply code; the dispatcher turns them into replies."""

from __future__ import annotations

import errno


class FTPError(Exception):
    """A command failed with this reply."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


_ERRNO_REPLIES = {
    errno.ENOENT: (550, "No such file or directory"),
    errno.EACCES: (550, "Permission denied"),
    errno.EPERM: (550, "Operation not permitted"),
    errno.EEXIST: (550, "File exists"),
    errno.ENOTDIR: (550, "Not a directory"),
    errno.EISDIR: (550, "Is a directory"),
    errno.ENOTEMPTY: (550, "Directory not empty"),
    errno.EXDEV: (550, "Cannot rename across filesystems"),
    errno.ENAMETOOLONG: (550, "File name too long"),
    errno.ELOOP: (550, "Too many levels of symbolic links"),
    errno.EINVAL: (550, "Invalid argument"),
    errno.ENOSPC: (452, "Insufficient storage space (disk full)"),
    errno.EDQUOT: (552, "Disk quota exceeded"),
    errno.EFBIG: (552, "File too large"),
    errno.EROFS: (550, "Read-only filesystem"),
    # remote storage (S3) that did not answer, or failed on its side: try again later
    errno.ETIMEDOUT: (451, "Storage not answering; try again later"),
    getattr(errno, "EREMOTEIO", errno.ETIMEDOUT): (451, "Storage error; try again later"),
}


def reply_for_oserror(exc: OSError) -> tuple[int, str]:
    """The (code, text) a filesystem error should be answered with."""
    return _ERRNO_REPLIES.get(exc.errno or 0, (550, exc.strerror or "Filesystem error"))

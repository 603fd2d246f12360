"""obstore's exceptions as ``OSError``s with an errno the core answers properly.

| store says | errno | FTP reply |
|---|---|---|
| not found, no such bucket | ENOENT | 550 |
| access denied, bad credentials | EACCES | 550 |
| already exists, precondition failed | EEXIST | 550 |
| bad request (a name the store refuses) | EINVAL | 550 |
| no answer, connection refused, timeout | ETIMEDOUT | 451 |
| a 5xx or anything else | EREMOTEIO | 451 |

Each error is logged once, on one line, here where it is made.
"""

from __future__ import annotations

import errno
import re

from ftpd.log import get_logger

log = get_logger("ftpd.fs.s3")

REMOTE_IO = getattr(errno, "EREMOTEIO", errno.ETIMEDOUT)  # both answered 451
_STATUS = re.compile(r"status code: (\d{3})")


def _errno_for(exc: BaseException) -> int:
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError) or name == "NotFoundError":
        return errno.ENOENT
    if name in ("PermissionDeniedError", "UnauthenticatedError"):
        return errno.EACCES
    if name in ("AlreadyExistsError", "PreconditionError"):
        return errno.EEXIST
    if isinstance(exc, ValueError) or name == "InvalidPathError":
        return errno.EINVAL
    match = _STATUS.search(str(exc))
    if match is None:  # no HTTP answer at all: refused, reset, timed out
        return errno.ETIMEDOUT
    status = int(match.group(1))
    if status == 400:  # the store refused the request as made (a name, say): final
        return errno.EINVAL
    if status in (401, 403):
        return errno.EACCES
    if status == 404:
        return errno.ENOENT
    if status in (409, 412):
        return errno.EEXIST
    return REMOTE_IO


def _summary(exc: BaseException) -> str:
    """The first line of obstore's long message (the rest is a Rust debug dump)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def store_error(exc: BaseException, what: str, vpath: str, *, quiet: bool = False) -> OSError:
    """An ``OSError`` for *exc* raised by obstore while doing *what* on *vpath*.

    A missing object is an everyday answer (``quiet``: not logged); everything else is
    one warning line naming the operation and what the store said."""
    code = _errno_for(exc)
    if code == errno.ENOENT and quiet:
        return FileNotFoundError(code, "No such file or directory", vpath)
    summary = _summary(exc)
    log.warning("s3 %s %r failed (%s): %s", what, vpath, errno.errorcode.get(code, code),
                summary)
    if code == errno.ETIMEDOUT:
        return TimeoutError(code, "s3 storage unreachable or not answering", vpath)
    return OSError(code, f"s3 storage: {summary}", vpath)


def unsupported(what: str, vpath: str) -> OSError:
    """``550`` with a message naming the storage: S3 objects have no mode, no settable
    mtime, no links and no appends."""
    return OSError(errno.EOPNOTSUPP, f"{what} is not supported by S3 object storage", vpath)

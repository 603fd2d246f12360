"""The one way a client's path string becomes a virtual path.

Virtual paths are absolute, normalised, start with "/" and never climb above it.
Mapping into the real filesystem (and re-checking symlinks) is the filesystem's job.
A path with a hidden name (``--hide``) in it is refused here, like a missing file, so
no command can forget it (``Session.resolve`` passes the server's ``Hidden``).
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Callable

from ftpd.core.errors import FTPError


def resolve(cwd: str, arg: str, hidden: Callable[[str], bool] | None = None) -> str:
    """Join *arg* to *cwd* and normalise; ``..`` stops at ``/``; NUL is refused. With
    *hidden*, a path any component of which it calls hidden raises the ENOENT a missing
    file does (the reply must not tell that a hidden name exists)."""
    if "\0" in arg:
        raise FTPError(501, "Path contains a NUL byte")
    path = arg if arg.startswith("/") else posixpath.join(cwd, arg)
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    if hidden and any(hidden(part) for part in parts):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    return "/" + "/".join(parts)


def parent(vpath: str) -> str:
    return posixpath.dirname(vpath) or "/"


def basename(vpath: str) -> str:
    return posixpath.basename(vpath)


def join(vdir: str, name: str) -> str:
    return vdir.rstrip("/") + "/" + name


def within(vpath: str, vdir: str) -> bool:
    """*vpath* is *vdir* or below it (both virtual paths)."""
    return vpath == vdir or vpath.startswith(vdir.rstrip("/") + "/")

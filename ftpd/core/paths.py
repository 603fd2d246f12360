"""The one way a client's path string becomes a virtual path.

Virtual paths are absolute, normalised, start with "/" and never climb above it.
Mapping into the real filesystem (and re-checking symlinks) is the filesystem's job.
"""

from __future__ import annotations

import posixpath

from ftpd.core.errors import FTPError


def resolve(cwd: str, arg: str) -> str:
    """Join *arg* to *cwd* and normalise; ``..`` stops at ``/``; NUL is refused."""
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
    return "/" + "/".join(parts)


def parent(vpath: str) -> str:
    return posixpath.dirname(vpath) or "/"


def basename(vpath: str) -> str:
    return posixpath.basename(vpath)


def join(vdir: str, name: str) -> str:
    return vdir.rstrip("/") + "/" + name

"""Checksums of stored files: HASH (draft-bryan-ftpext-hash-02, as FileZilla Server and
ProFTPD answer it) with the session's algorithm chosen by OPTS HASH (``info``), and the
legacy XMD5, XSHA1, XSHA256 and XCRC of ProFTPD's mod_digest. The file is opened through the
session's FileSystem and read in the worker pool a slice per call (``fs.digest``): a
large file holds up only the session that asked, never the loop, nor a worker for long.

Replies: ``213 SHA-256 0-LAST hexdigest pathname`` (LAST the offset of the last byte,
inclusive, as the draft's ``RANG 0 49`` -> ``0-49``; ``0-0`` for an empty file), 553
for a path that is not a regular file (the draft), 550 for one that does not exist or
may not be read (as RETR). The legacy commands answer ``250 hexdigest`` on one line
(lowercase hex, CRC32 as 8 digits), 550 for anything but a regular file, and take an
optional byte range as mod_digest does: ``XMD5 path START END`` digests the bytes
``[START, END)``, with ``0 <= START < END <= size`` (else 501). A path that ends in two
space-separated numbers is read as such a range."""

from __future__ import annotations

import stat
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ftpd.core.commands import ARG, Command, command
from ftpd.core.dispatch import Steps

if TYPE_CHECKING:
    from ftpd.core.session import Session
    from ftpd.fs.digest import DigestJob

# the draft's (IANA) names, as FEAT announces them; fs.digest, imported at the first
# checksum (not at start-up), computes each
ALGORITHMS = ("SHA-256", "SHA-1", "MD5", "CRC32")
LEGACY = {"XMD5": "MD5", "XSHA1": "SHA-1", "XSHA256": "SHA-256", "XCRC": "CRC32"}


def feature_line(s: Session) -> str:
    """FEAT's ``HASH SHA-256*;SHA-1;MD5;CRC32``: the session's choice starred."""
    return "HASH " + ";".join(a + "*" * (a == s.hash_algorithm) for a in ALGORITHMS)


def opts_hash(s: Session, cmd: Command, value: str) -> None:
    """``OPTS HASH``: the current algorithm; ``OPTS HASH name``: select it (any case)."""
    value = value.strip()
    if not value:
        cmd.add(200, s.hash_algorithm)
        return
    name = value.upper()
    if name not in ALGORITHMS:
        cmd.add_err(501, f"Unknown algorithm {value[:32]}, current selection not changed; "
                         f"use one of {', '.join(ALGORITHMS)}.")
        return
    s.hash_algorithm = name
    cmd.add(200, name)


def digest(s: Session, vpath: str, algorithm: str, start: int = 0,
           end: int | None = None) -> Generator[Any, Any, DigestJob]:
    """Open, then digest a slice per ask until done (each in the worker pool)."""
    from ftpd.fs.digest import open_digest

    job = yield s.ask(open_digest, s.fs, vpath, algorithm, start, end)
    while not job.done:
        job = yield s.ask(job.step)
    return job


@command("HASH", arg=ARG, perm="r", feat="HASH",
         help="HASH <sp> pathname (its digest, with the OPTS HASH algorithm)")
def hash_(s: Session, cmd: Command) -> Steps:
    assert s.fs is not None
    algorithm = s.hash_algorithm
    vpath = s.resolve(cmd.arg)
    st = yield s.ask(s.fs.stat, vpath)
    if not stat.S_ISREG(st.st_mode):
        cmd.add_err(553, f"{cmd.arg}: not a regular file.")
        return
    job = yield from digest(s, vpath, algorithm)
    cmd.add(213, f"{algorithm} 0-{max(job.size - 1, 0)} {job.hexdigest} {cmd.arg}")


def split_range(arg: str) -> tuple[str, int, int | None]:
    """``path [START END]``: the path and the range (END None: the whole file)."""
    words = arg.rsplit(" ", 2)
    if len(words) == 3 and words[0] and all(w.isascii() and w.isdigit() for w in words[1:]):
        return words[0], int(words[1]), int(words[2])
    return arg, 0, None


_LEGACY_HELP = "{} <sp> pathname [<sp> start <sp> end] (its {} digest)"


@command("XMD5", arg=ARG, perm="r", feat="XMD5", help=_LEGACY_HELP.format("XMD5", "MD5"))
@command("XSHA1", arg=ARG, perm="r", feat="XSHA1", help=_LEGACY_HELP.format("XSHA1", "SHA-1"))
@command("XSHA256", arg=ARG, perm="r", feat="XSHA256",
         help=_LEGACY_HELP.format("XSHA256", "SHA-256"))
@command("XCRC", arg=ARG, perm="r", feat="XCRC", help=_LEGACY_HELP.format("XCRC", "CRC32"))
def legacy_digest(s: Session, cmd: Command) -> Steps:
    assert s.fs is not None
    path, start, end = split_range(cmd.arg)
    vpath = s.resolve(path)
    st = yield s.ask(s.fs.stat, vpath)
    if not stat.S_ISREG(st.st_mode):
        cmd.add_err(550, f"{path}: not a regular file.")
        return
    if end is not None and not start < end <= st.st_size:
        cmd.add_err(501, f"{cmd.verb}: give a range START END with 0 <= START < END <= "
                         f"{st.st_size}, the file's size.")
        return
    job = yield from digest(s, vpath, LEGACY[cmd.verb], start, end)
    cmd.add(250, job.hexdigest)

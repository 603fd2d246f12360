"""LIST, NLST, MLSD, MLST and STAT: what is in the tree and how the session stands."""

from __future__ import annotations

import stat
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ftpd.core import actions as A
from ftpd.core.commands import OPT_ARG, Command, command
from ftpd.core.dispatch import Steps
from ftpd.core.errors import FTPError
from ftpd.core.handlers.flow import check_data_protection, run_transfer
from ftpd.core.listing import entries, has_wildcard, list_dir, ls_line, mlst_facts
from ftpd.core.paths import basename, parent
from ftpd.fs.base import FileSystem

if TYPE_CHECKING:
    from ftpd.core.session import Session

# A STAT listing travels on the control connection, whose transport cuts off a client
# with more than 4 MiB of unread replies: a bigger directory is refused, not sent.
STAT_MAX_BYTES = 1 << 20


def _options(arg: str) -> tuple[str, str]:
    """(the ``ls`` option letters, the rest) of a LIST/NLST/STAT argument: ``-a`` (or
    ``-A``) shows names beginning with ``.``, as ``ls`` does; the others (``-l``, ...)
    are accepted and ignored."""
    words = arg.split(" ")
    letters = ""
    while words and words[0].startswith("-") and len(words[0]) > 1:
        letters += words.pop(0)[1:]
    return letters, " ".join(words).strip()


def _dots(letters: str, pattern: str | None) -> bool:
    """Whether a LIST/NLST/STAT shows names beginning with ``.``: with ``-a``, or for
    a pattern that itself begins with one (as the shell's ``ls .*``)."""
    return "a" in letters or "A" in letters or bool(pattern and pattern[:1] == ".")


def _target(s: Session, arg: str) -> Generator[Any, Any, tuple[str, str | None, bool]]:
    """(virtual path, pattern or None, is_dir) for a LIST/NLST argument; the path (the
    working directory without one) goes through the path policy (``Session.resolve``)."""
    assert s.fs is not None
    vpath = s.resolve(arg or ".")
    pattern = None
    if arg and has_wildcard(basename(vpath)):
        pattern = basename(vpath)
        vpath = parent(vpath)
    st = yield s.ask(s.fs.stat, vpath)
    is_dir = stat.S_ISDIR(st.st_mode)
    if pattern is not None and not is_dir:
        raise FTPError(550, f"{arg}: No such file or directory.")
    return vpath, pattern, is_dir


def _names(s: Session, vpath: str, pattern: str | None,
           dots: bool) -> Generator[Any, Any, list[str]]:
    """The names of *vpath* a listing shows (never a hidden one; those beginning with
    ``.`` only with *dots*); with a pattern the listing matches them lazily, a slice at
    a time under one budget for the command (``list_dir``)."""
    assert s.fs is not None
    names = yield s.ask(entries, s.fs, vpath, None, s.config.hidden, dots)
    if pattern is None and len(names) > s.config.max_listing_entries:
        raise FTPError(550, f"Directory too large to list ({len(names)} entries).")
    return names


def _dir_part(arg: str) -> str:
    """``d/*.txt`` -> ``d/``: NLST names carry it, as ``ls d/*.txt`` prints them."""
    return arg[:arg.rfind("/") + 1]


# -- in the worker pool: these may block --------------------------------------------
def one_line(fs: FileSystem, vpath: str, now: float,
             owners: Callable[[int, int], tuple[str, str]]) -> str:
    """The ``ls -l`` line of one entry (LIST or STAT of a file)."""
    return ls_line(fs, vpath, basename(vpath), fs.lstat(vpath), now, owners)


def stat_lines(fs: FileSystem, vpath: str, names: list[str], now: float,
               owners: Callable[[int, int], tuple[str, str]], pattern: str | None,
               limit: int, arg: str) -> list[str]:
    """A whole ``ls -l`` of a directory, for a STAT reply: it travels on the control
    connection, so it is built at once (off the loop), and refused past STAT_MAX_BYTES."""
    lines, size = [], 0
    for chunk in list_dir(fs, vpath, names, "list", now=now, pattern=pattern, limit=limit,
                          owners=owners):
        size += len(chunk)
        if size > STAT_MAX_BYTES:
            raise FTPError(550, f"{arg}: too large for a STAT reply; use LIST.")
        lines += [line for line in chunk.decode("utf-8", "surrogateescape").split("\r\n")
                  if line]
    return lines


def _listing(s: Session, cmd: Command, fmt: str) -> Steps:
    assert s.fs is not None
    # MLSD lists names beginning with "." always: RFC 3659 clients decide what to show
    letters, arg = _options(cmd.arg) if fmt != "mlsd" else ("a", cmd.arg.strip())
    check_data_protection(s)  # a listing is data too
    if s.data_mode is None:
        raise FTPError(425, "Use PORT, EPRT, PASV or EPSV first.")
    vpath, pattern, is_dir = yield from _target(s, arg)
    perms = s.account.perm if s.account else ""
    if is_dir:
        names = yield from _names(s, vpath, pattern, _dots(letters, pattern))
        prefix = _dir_part(arg) if pattern is not None and fmt == "nlst" else ""
        source = list_dir(s.fs, vpath, names, fmt, perms, s.mlst_facts, s.now(),
                          pattern=pattern, prefix=prefix, limit=s.config.max_listing_entries,
                          owners=s.config.owner_names)
    elif fmt == "mlsd":
        raise FTPError(501, f"{arg}: not a directory.")
    elif fmt == "nlst":
        source = iter([(arg + "\r\n").encode("utf-8", "surrogateescape")])
    else:
        line = yield s.ask(one_line, s.fs, vpath, s.now(), s.config.owner_names)
        source = iter([(line + "\r\n").encode("utf-8", "surrogateescape")])
    t = A.Transfer(A.Kind.LISTING, vpath, source=source, pattern=pattern or "")
    yield from run_transfer(s, cmd, t, "Here comes the directory listing.")


@command("LIST", arg=OPT_ARG, perm="l", help="LIST [<sp> pathname]")
def list_(s: Session, cmd: Command) -> Steps:
    return _listing(s, cmd, "list")


@command("NLST", arg=OPT_ARG, perm="l", help="NLST [<sp> pathname]")
def nlst(s: Session, cmd: Command) -> Steps:
    return _listing(s, cmd, "nlst")


@command("MLSD", arg=OPT_ARG, perm="l", help="MLSD [<sp> pathname]")
def mlsd(s: Session, cmd: Command) -> Steps:
    return _listing(s, cmd, "mlsd")


@command("MLST", arg=OPT_ARG, perm="l", help="MLST [<sp> pathname]", feat="MLST")
def mlst(s: Session, cmd: Command) -> Steps:
    assert s.fs is not None
    vpath = s.resolve(cmd.arg if cmd.arg.strip() else ".")
    st = yield s.ask(s.fs.stat, vpath)
    perms = s.account.perm if s.account else ""
    cmd.add(250, f"Listing {vpath}")
    cmd.add(250, mlst_facts(vpath, st, perms, s.mlst_facts))
    cmd.add(250, "End.")


@command("STAT", arg=OPT_ARG, login=False, during_transfer=True,
         help="STAT [<sp> pathname]")
def stat_(s: Session, cmd: Command) -> Steps:
    t = s.transfer
    if t is not None:
        cmd.add(213, f"Status: transferring {t.path}; {t.bytes_done} bytes so far.")
        return
    letters, arg = _options(cmd.arg)
    if not arg:
        _server_status(s, cmd)
        return
    if s.account is None:
        cmd.add_err(530, "Please log in with USER and PASS first.")
        return
    if not s.account.can("l"):
        cmd.add_err(550, "Permission denied.")
        return
    assert s.fs is not None
    vpath, pattern, is_dir = yield from _target(s, arg)
    if is_dir:
        names = yield from _names(s, vpath, pattern, _dots(letters, pattern))
        lines = yield s.ask(stat_lines, s.fs, vpath, names, s.now(), s.config.owner_names,
                            pattern, s.config.max_listing_entries, arg)
    else:
        lines = [(yield s.ask(one_line, s.fs, vpath, s.now(), s.config.owner_names))]
    cmd.add(213, f"Status of {arg}:")
    for line in lines:
        cmd.add(213, line)
    cmd.add(213, "End of status.")


def _server_status(s: Session, cmd: Command) -> None:
    acc = s.account
    cmd.add(211, "FTP server status:")
    cmd.add(211, f"Connected to {s.peer_host}")
    cmd.add(211, f"Logged in as {acc.username}" if acc else "Not logged in")
    cmd.add(211, f"TYPE: {'ASCII' if s.type == 'A' else 'BINARY'}, STRUcture: File, "
                 "MODE: Stream")
    mode = s.data_mode
    cmd.add(211, "Data connection: " + ("none" if mode is None else
                                        "active" if isinstance(mode, A.Active) else "passive"))
    cmd.add(211, f"Control connection: {'TLS' if s.tls_active else 'plain'}")
    cmd.add(211, "End of status.")

"""MKD, RMD, DELE, RNFR/RNTO, SIZE, MDTM, MFMT and the SITE commands that change files."""

from __future__ import annotations

import stat
import time
from typing import TYPE_CHECKING

from ftpd.core.commands import ARG, OPT_ARG, Command, command
from ftpd.core.dispatch import Steps
from ftpd.core.events import ChmodEvent, PathEvent, RenameEvent, SymlinkEvent
from ftpd.core.handlers.nav import quote

if TYPE_CHECKING:
    from ftpd.core.session import Session


def _fs(s: Session):
    assert s.fs is not None
    return s.fs


@command("MKD", arg=ARG, perm="m", help="MKD <sp> pathname")
@command("XMKD", arg=ARG, perm="m", help="XMKD <sp> pathname")
def mkd(s: Session, cmd: Command) -> Steps:
    vpath = s.resolve(cmd.arg)
    yield s.ask(_fs(s).mkdir, vpath)
    cmd.add(257, f"{quote(vpath)} directory created.")
    s.emit("fs.mkdir", PathEvent(s.info(), s.now(), vpath, "dir"))


@command("RMD", arg=ARG, perm="d", help="RMD <sp> pathname")
@command("XRMD", arg=ARG, perm="d", help="XRMD <sp> pathname")
def rmd(s: Session, cmd: Command) -> Steps:
    vpath = s.resolve(cmd.arg)
    if vpath == "/":
        cmd.add_err(550, "Can't remove the root directory.")
        return
    yield s.ask(_fs(s).rmdir, vpath)
    cmd.add(250, "Directory removed.")
    s.emit("fs.rmdir", PathEvent(s.info(), s.now(), vpath, "dir"))


@command("DELE", arg=ARG, perm="d", help="DELE <sp> pathname")
def dele(s: Session, cmd: Command) -> Steps:
    vpath = s.resolve(cmd.arg)
    quota = s.account is not None and s.account.quota
    st = (yield s.ask(_fs(s).lstat, vpath)) if quota else None
    yield s.ask(_fs(s).remove, vpath)
    if st is not None and stat.S_ISREG(st.st_mode):
        s.config.ledger.grow(s.account.username, -st.st_size)  # the quota's room grows
    cmd.add(250, "File removed.")
    s.emit("fs.delete", PathEvent(s.info(), s.now(), vpath, "file"))


@command("RNFR", arg=ARG, perm="f", help="RNFR <sp> pathname")
def rnfr(s: Session, cmd: Command) -> Steps:
    vpath = s.resolve(cmd.arg)
    if vpath == "/":
        cmd.add_err(550, "Can't rename the root directory.")
        return
    ran = s.commands_run
    yield s.ask(_fs(s).lstat, vpath)
    s.rnfr = (vpath, ran)
    cmd.add(350, "Ready for destination name.")


@command("RNTO", arg=ARG, perm="f", help="RNTO <sp> pathname")
def rnto(s: Session, cmd: Command) -> Steps:
    pending, s.rnfr = s.rnfr, None
    if pending is None or pending[1] != s.commands_run - 1:  # RNFR just before, or nothing
        cmd.add_err(503, "Bad sequence of commands: use RNFR first.")
        return
    src, dst = pending[0], s.resolve(cmd.arg)
    yield s.ask(_fs(s).rename, src, dst)
    cmd.add(250, "Rename successful.")
    s.emit("fs.rename", RenameEvent(s.info(), s.now(), src, dst))


@command("SIZE", arg=ARG, perm="l", help="SIZE <sp> pathname", feat="SIZE")
def size(s: Session, cmd: Command) -> Steps:
    st = yield s.ask(_fs(s).stat, s.resolve(cmd.arg))
    if not stat.S_ISREG(st.st_mode):
        cmd.add_err(550, f"{cmd.arg}: not a regular file.")
    elif s.type == "A":
        cmd.add_err(550, "SIZE not allowed in ASCII mode; use TYPE I.")
    else:
        cmd.add(213, str(st.st_size))


def format_mdtm(mtime: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime))


def parse_mdtm(text: str) -> float:
    """YYYYMMDDHHMMSS[.sss] (UTC) to a timestamp; ValueError if malformed."""
    main, _, frac = text.partition(".")
    if len(main) != 14 or not main.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(text)
    import calendar

    t = time.strptime(main, "%Y%m%d%H%M%S")
    return calendar.timegm(t) + (float("0." + frac) if frac else 0.0)


@command("MDTM", arg=ARG, perm="l", help="MDTM <sp> pathname", feat="MDTM")
def mdtm(s: Session, cmd: Command) -> Steps:
    st = yield s.ask(_fs(s).stat, s.resolve(cmd.arg))
    if not stat.S_ISREG(st.st_mode):
        cmd.add_err(550, f"{cmd.arg}: not a regular file.")
        return
    cmd.add(213, format_mdtm(st.st_mtime))


@command("MFMT", arg=ARG, perm="T", help="MFMT <sp> YYYYMMDDHHMMSS <sp> pathname",
         feat="MFMT")
def mfmt(s: Session, cmd: Command) -> Steps:
    stamp, _, path = cmd.arg.partition(" ")
    try:
        mtime = parse_mdtm(stamp)
    except ValueError:
        cmd.add_err(501, "Syntax error: MFMT YYYYMMDDHHMMSS pathname.")
        return
    if not path:
        cmd.add_err(501, "Syntax error: MFMT YYYYMMDDHHMMSS pathname.")
        return
    vpath = s.resolve(path)
    yield s.ask(_fs(s).utime, vpath, mtime)
    cmd.add(213, f"Modify={stamp}; {vpath}")


@command("SITE", arg=ARG, login=False, help="SITE <sp> subcommand (see SITE HELP)",
         subcommands=True)
def site(s: Session, cmd: Command) -> None:
    """Reached only when the argument names no SITE subcommand: a known one is run by
    dispatch like any verb (its generic checks, PRE hooks, handler, POST hooks)."""
    sub = cmd.arg.strip().partition(" ")[0]
    cmd.add_err(500, f"Unknown SITE command {sub.upper()[:32]}; try SITE HELP.")


_OCTAL_DIGITS = frozenset("01234567")


@command("CHMOD", arg=ARG, perm="M", help="SITE CHMOD <sp> mode <sp> pathname", site=True)
def site_chmod(s: Session, cmd: Command) -> Steps:
    mode_text, _, path = cmd.arg.strip().partition(" ")
    octal = bool(mode_text) and set(mode_text) <= _OCTAL_DIGITS
    if not path or not octal or int(mode_text, 8) > 0o7777:
        cmd.add_err(501, "Syntax error: SITE CHMOD <octal mode> <path>.")
        return
    mode = int(mode_text, 8) & 0o777  # never setuid, setgid or sticky (as vsftpd)
    vpath = s.resolve(path)
    yield s.ask(_fs(s).chmod, vpath, mode)
    cmd.add(200, "SITE CHMOD command successful.")
    s.emit("fs.chmod", ChmodEvent(s.info(), s.now(), vpath, mode))


@command("SYMLINK", arg=ARG, perm="L", help="SITE SYMLINK <sp> target <sp> link", site=True)
def site_symlink(s: Session, cmd: Command) -> Steps:
    parts = cmd.arg.strip().split(" ")
    if len(parts) != 2 or not all(parts):
        cmd.add_err(501, "Syntax error: SITE SYMLINK <target> <link>.")
        return
    target, link = s.resolve(parts[0]), s.resolve(parts[1])
    fs = _fs(s)
    yield s.ask(fs.stat, target)  # the target must exist inside the root
    yield s.ask(fs.symlink, target, link)
    cmd.add(200, "SITE SYMLINK command successful.")
    s.emit("fs.symlink", SymlinkEvent(s.info(), s.now(), target, link))


@command("HELP", arg=OPT_ARG, login=False, help="SITE HELP [<sp> subcommand]", site=True)
def site_help(s: Session, cmd: Command) -> None:
    from ftpd.core.handlers.info import help_for

    if help_for(cmd, s.table.site, "SITE command"):
        return
    cmd.add(214, "The following SITE commands are recognized:")
    for spec in sorted(s.table.site.values(), key=lambda sp: sp.name):
        cmd.add(214, spec.help)
    cmd.add(214, "Direct comments to the site administrator.")

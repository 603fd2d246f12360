"""CWD, CDUP, PWD and their X-variants, SMNT: where the session is."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

from ftpd.core.commands import ARG, Command, command
from ftpd.core.dispatch import Steps

if TYPE_CHECKING:
    from ftpd.core.session import Session


def quote(path: str) -> str:
    """RFC 959 257-reply quoting: double every quote inside the path."""
    return '"' + path.replace('"', '""') + '"'


def change_dir(s: Session, cmd: Command, arg: str) -> Steps:
    assert s.fs is not None
    vpath = s.resolve(arg)
    st = yield s.ask(s.fs.stat, vpath)
    if not stat.S_ISDIR(st.st_mode):
        cmd.add_err(550, f"{arg}: Not a directory.")
        return
    s.cwd = vpath
    cmd.add(250, f"Directory successfully changed to {quote(vpath)}.")


@command("CWD", arg=ARG, perm="e", help="CWD <sp> pathname")
@command("XCWD", arg=ARG, perm="e", help="XCWD <sp> pathname")
def cwd(s: Session, cmd: Command) -> Steps:
    return change_dir(s, cmd, cmd.arg)


@command("CDUP", perm="e", help="CDUP (go to the parent directory)")
@command("XCUP", perm="e", help="XCUP (go to the parent directory)")
def cdup(s: Session, cmd: Command) -> Steps:
    return change_dir(s, cmd, "..")


@command("PWD", help="PWD (print the working directory)")
@command("XPWD", help="XPWD (print the working directory)")
def pwd(s: Session, cmd: Command) -> None:
    cmd.add(257, f"{quote(s.cwd)} is the current directory.")


@command("SMNT", arg=ARG, help="SMNT <sp> pathname (not implemented)")
def smnt(s: Session, cmd: Command) -> None:
    cmd.add_err(502, "SMNT not implemented.")

"""``--anonymous-upload DIR``: the classic ``incoming/`` drop box, as a rule on paths and
permission letters. ``Session.resolve`` asks it (``check``) for every path an anonymous
session names, with the letter of the command (``dispatch.check`` records it), so no
command can forget it; ``may`` is the generic letter check's part, and STOR's exclusive
create (``upload_into``) the one thing a handler adds.

Inside the box anonymous may CWD into DIR itself and store new files directly in it
(STOR, STOU; letter ``w``), and nothing else: no listing, download, SIZE, MDTM, delete,
rename, append, MKD, RMD, CHMOD or MFMT, in DIR or below it (what an administrator put
in a subdirectory stays closed too). Anonymous may not move or remove DIR or a directory
above it either. Outside the box anonymous keeps its own letters: read-only, or with
``--write`` writable (the box's rules still hold inside it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftpd.core.errors import FTPError
from ftpd.core.paths import parent, within

if TYPE_CHECKING:
    from ftpd.core.commands import Command
    from ftpd.core.session import Session


def allows(box: str, vpath: str, letter: str | None, may_write: bool) -> bool:
    """May an anonymous session name *vpath* in a command needing *letter* (None: a
    command without one, such as STAT), given drop box *box*? *may_write*: whether the
    account has ``w`` itself (``--write``)."""
    if within(vpath, box):
        if letter == "e":
            return vpath == box
        return letter == "w" and vpath != box and parent(vpath) == box
    if letter in ("d", "f") and within(box, vpath):
        return False  # the box stays where it is
    return letter != "w" or may_write


def check(s: Session, cmd: Command | None, vpath: str) -> None:
    """Refuse (550) *vpath* for the anonymous session *s* running *cmd*, unless allowed."""
    box, acc = s.config.anonymous_upload, s.account
    assert box is not None and acc is not None
    letter = cmd.info.get("perm") if cmd is not None else None
    if not allows(box, vpath, letter, acc.can("w")):
        if cmd is not None:
            cmd.info["refused"] = True
        raise FTPError(550, "Permission denied.")


def may(s: Session, letter: str) -> bool:
    """The generic check: the account's letter; an anonymous session may store (``w``)
    when there is a drop box as well (where, ``check`` decides once it sees the path)."""
    acc = s.account
    if acc is None:
        return False
    if acc.can(letter):
        return True
    return letter == "w" and acc.anonymous and s.config.anonymous_upload is not None


def upload_into(s: Session, vpath: str) -> bool:
    """An anonymous upload into the drop box: new files only (an exclusive create)."""
    box = s.config.anonymous_upload
    return box is not None and s.anonymous and parent(vpath) == box

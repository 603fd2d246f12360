"""``--anonymous-upload DIR``: the classic ``incoming/`` drop box, as a rule on paths and
permission letters. ``Session.resolve`` asks it for every path an anonymous session
names, with the letter of the command (``dispatch.check`` records it), so no command
can forget it; STOR's exclusive create is the one thing a handler adds.

Inside the box anonymous may CWD into DIR itself and store new files directly in it
(STOR, STOU; letter ``w``), and nothing else: no listing, download, SIZE, MDTM, delete,
rename, append, MKD, RMD, CHMOD or MFMT, in DIR or below it (what an administrator put
in a subdirectory stays closed too). Anonymous may not move or remove DIR or a directory
above it either. Outside the box anonymous keeps its own letters: read-only, or with
``--write`` writable (the box's rules still hold inside it)."""

from __future__ import annotations

from ftpd.core.paths import parent, within


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

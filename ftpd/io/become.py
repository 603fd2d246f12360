"""A system account's session acts as the account: its process becomes it, once.

A process can change its identity for good only once, and the worker pools of the
storage boundary run filesystem calls on other threads, so switching the effective uid
around each call (pyftpdlib's way) is unsafe. Hence a system account is admitted only
in a process that serves that one session (``-I``, Accept=yes, or the child the
shared-loop modes hand each connection to under ``--pam``: ``ftpd.launch.persession``),
which becomes the account right after PAM said yes and before the home is opened.
setgroups/setgid/setuid apply to every thread of the process (glibc broadcasts them)."""

from __future__ import annotations

import os
from typing import Any

from ftpd.log import get_logger

log = get_logger("ftpd.become")

_became: tuple[int, int, tuple[int, ...]] | None = None  # this process's account, once


class BecomeError(Exception):
    """The process could not become the account (the session is refused and closed)."""


def become(uid: int, gid: int, groups: tuple[int, ...]) -> None:
    """Drop root to (uid, gid, groups) for good, and check that it took: the real,
    effective and saved ids are the account's and root cannot be regained."""
    if uid == 0 or gid == 0:
        raise BecomeError("refusing to become root")
    if os.geteuid() != 0:
        raise BecomeError("not running as root")
    try:
        os.setgroups(list(groups))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise BecomeError(exc.strerror or str(exc)) from None
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or \
            set(os.getgroups()) != set(groups):
        raise BecomeError("the ids did not change")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise BecomeError("root could be regained")


def _preload(server: Any) -> None:
    """What serving imports later, imported while the standard library is surely
    readable (a Python under /root is not, to the account); the log handler installed
    now and its file kept open (its directory may be closed to the account)."""
    from ftpd import log as ftpd_log
    from ftpd.launch.daemon import preload

    preload(server)
    ftpd_log.keep_open()


def admit(conn: Any, account: Any) -> bool:
    """Called by the control connection with each account the authorizer accepted.
    True: go on with the login. False: refused with 530 and the session closed."""
    global _became
    target = account.system
    if target is None and _became is None:
        return True  # not a system account, and nobody became anyone here: as ever
    if _became is not None:  # after a REIN: only the account the process became
        if target == _became:
            return True
        return _refuse(conn, account, "this session's process already acts as another "
                       "account")
    if not conn.server.launch.per_connection or len(conn.server.connections) != 1:
        return _refuse(conn, account, "a system account needs a process of its own "
                       "(-I, Accept=yes, or --pam, which gives each session one)")
    try:
        _preload(conn.server)
        become(*target)
    except (BecomeError, ImportError) as exc:
        return _refuse(conn, account, str(exc))
    _became = target
    log.info("session acts as %s (uid %d, gid %d)", account.username, target[0], target[1])
    return True


def _refuse(conn: Any, account: Any, reason: str) -> bool:
    from ftpd.core import actions as A
    from ftpd.core.replies import Reply
    from ftpd.sessionlog import field
    from ftpd.sessionlog import log as session_log

    log.error("%s: cannot act as %s: %s; closing the session", conn.peer[0],
              account.username, reason)
    session_log.info("[%s] LOGIN FAILED user=%s from=%s", conn.session.session_id,
                     field(account.username), conn.peer[0])  # as a refused password (fail2ban)
    conn.process([Reply(530, ("Login incorrect.",)), A.Close("ERROR")])
    return False

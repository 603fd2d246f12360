"""Detaching (``-d`` with python-daemon) and dropping root (``--run-as``), both after
the sockets are bound."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not ``typing``'s: importing it costs ~6 ms per inetd start
if TYPE_CHECKING:
    from typing import Any


class PrivilegeError(Exception):
    """--run-as cannot be honoured (one line; exit 1)."""


def parse_run_as(text: str) -> tuple[int, int, str]:
    """USER[:GROUP] to (uid, gid, name); ValueError names what is unknown."""
    import grp
    import pwd

    user, _, group = text.partition(":")
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"unknown user {user!r}") from None
    gid = entry.pw_gid
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise ValueError(f"unknown group {group!r}") from None
    return entry.pw_uid, gid, entry.pw_name


# What serving imports lazily, imported before --run-as drops root: after the drop the
# standard library may not be readable (a Python under /root, say). The one list:
# tests/launch/test_launch_preload.py serves a session touching every command under
# ``python -X importtime`` and fails naming any module imported after the drop.
PRELOAD = (
    "calendar", "_strptime",  # MFMT (time.strptime imports _strptime on first use)
    "concurrent.futures",  # the worker pools
    "copy",  # SessionConfig.replace
    "ctypes",  # LocalFS: openat2, renameat2
    "fcntl",  # splice uploads
    "grp", "pwd",  # listing owners
    "hashlib", "zlib", "ftpd.fs.digest",  # HASH, XMD5, XCRC, ...
    "hmac",  # -u/-P
    "ipaddress",  # EPRT, --proxy-protocol, --allow/--deny
    "random",  # passive ports
    "secrets",  # STOU, atomic uploads
    "tomllib",  # SIGHUP reload
    "ftpd.core.handlers",
    "ftpd.fs.local",  # each login's filesystem
    "ftpd.launch.standalone",  # addresses, re-parsed on reload
)


def preload(server: Any) -> None:
    """Import every module of PRELOAD, and those the configuration asked for
    (``server.preload``: the S3 client for an ``s3://`` root, say), now; start the
    worker pools."""
    import importlib

    for name in (*PRELOAD, *server.preload):
        importlib.import_module(name)
    server.start_workers()


def drop_privileges(run_as: str) -> None:
    uid, gid, name = parse_run_as(run_as)
    if os.geteuid() != 0:
        if os.geteuid() == uid:
            return
        raise PrivilegeError(f"--run-as {run_as}: only root can switch users")
    os.setgroups([])
    try:
        os.initgroups(name, gid)
    except OSError:
        pass
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise PrivilegeError(f"--run-as {run_as}: could not drop root")


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _fix(what: str, path: str, name: str, group: str) -> str:
    if what == "--users":
        return (f"{what} {path}: --run-as {name} cannot read it, so SIGHUP could not "
                f"reload it; fix: chgrp {group} {path} && chmod g+r {path} (and let "
                f"{name} search its directories)")
    return (f"{what} {path}: --run-as {name} cannot append to it, so SIGHUP could not "
            f"reopen it; fix: chown {name}:{group} {path} (and let {name} search its "
            "directories)")


def check_run_as_access(run_as: str, files: list[tuple[str, str, int]]) -> None:
    """Before the drop: can the --run-as account open each file as a SIGHUP will (the
    users file to read, the xferlog to append)? Tried in a forked child that drops
    first, so groups and ACLs count exactly as they will. The first it cannot open is a
    ConfigError naming the file and the fix (exit 2), not a surprise at the first reload.
    Call it before any thread starts (the child only opens files and exits)."""
    uid, gid, name = parse_run_as(run_as)
    if os.geteuid() != 0 or uid == 0 or not files:
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 0
        try:
            os.close(r)
            drop_privileges(run_as)
            for index, (_, path, flags) in enumerate(files):
                try:
                    os.close(os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC))
                except OSError:
                    os.write(w, bytes([index]))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    with open(r, "rb") as pipe:
        failed = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not failed:  # a drop that fails is reported by the real one
        return
    from ftpd.config import ConfigError

    what, path, _ = files[failed[0]]
    raise ConfigError(_fix(what, path, name, _group_name(gid)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def detach(keep_fds: list[int], pidfile: str | None) -> Any:
    """Become a daemon (python-daemon), keeping our sockets; returns the open context."""
    import daemon

    lock = None
    if pidfile:
        from daemon.pidfile import TimeoutPIDLockFile

        lock = TimeoutPIDLockFile(os.path.abspath(pidfile), acquire_timeout=0)
        holder = lock.read_pid() if lock.is_locked() else None
        if holder is not None and _alive(holder):
            raise PrivilegeError(f"--pidfile {pidfile}: held by running process {holder}")
        if holder is not None:
            lock.break_lock()  # stale: its process is gone
    context = daemon.DaemonContext(files_preserve=keep_fds, pidfile=lock, signal_map={},
                                   working_directory="/", umask=os.umask(0o022))
    context.open()
    return context

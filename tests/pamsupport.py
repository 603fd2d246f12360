"""Throwaway system accounts and a throwaway PAM service, for the ``--pam`` tests.

Accounts are made with ``useradd -m`` and given a password with ``chpasswd``, removed
with ``userdel -r`` afterwards; the shipped ``contrib/pam.d/ftpd`` is installed as
``/etc/pam.d/ftpdtest-<random>`` for the test and removed (a file under /etc/pam.d, not
a running service). All of it needs root: CI runs as root and installs python-pam, so
these tests run there; elsewhere they skip saying why."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

CONTRIB_PAM = Path(__file__).resolve().parents[1] / "contrib" / "pam.d" / "ftpd"
PREFIX = "ftpdt-"


def skip_reason() -> str | None:
    """Why the system-user tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (useradd, /etc/pam.d, setuid); CI runs as root"
    try:
        import pam  # noqa: F401
    except ImportError:
        return "python-pam is not installed (pip install 'ftpd[pam]')"
    for tool in ("useradd", "userdel", "chpasswd"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not os.path.exists("/etc/pam.d/common-auth"):
        return "contrib/pam.d/ftpd includes Debian's common-auth, missing here"
    return None


needs_system_users = pytest.mark.skipif(skip_reason() is not None,
                                        reason=skip_reason() or "")


class SystemAccount(NamedTuple):
    name: str
    password: str
    uid: int
    gid: int
    home: Path


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True, timeout=60)


@contextmanager
def system_account(uid: int | None = None) -> Iterator[SystemAccount]:
    """A fresh account with a home and a random password; *uid* given (0: a second
    name for root, ``useradd -o``) for the root test. Removed afterwards."""
    import pwd

    name = PREFIX + secrets.token_hex(4)
    password = "Pw-" + secrets.token_urlsafe(12)
    argv = ["useradd", "-m", "-s", "/bin/sh"]
    if uid is not None:
        argv += ["-o", "-u", str(uid), "-N", "-g", "0"] if uid == 0 else ["-u", str(uid)]
    _run(*argv, name)
    try:
        _run("chpasswd", stdin=f"{name}:{password}\n")
        entry = pwd.getpwnam(name)
        yield SystemAccount(name, password, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))
    finally:
        # -f: a uid-0 alias is "in use" by every root process
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True, timeout=60)


@contextmanager
def pam_service() -> Iterator[str]:
    """The shipped contrib/pam.d/ftpd installed under a random service name."""
    name = "ftpdtest-" + secrets.token_hex(4)
    path = Path("/etc/pam.d") / name
    shutil.copyfile(CONTRIB_PAM, path)
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)

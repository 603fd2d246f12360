"""System users through PAM (``--pam [SERVICE]``, the optional extra ``ftpd[pam]``).

A local account logs in with its system password; its root is its home directory and
the account it yields carries the uid, gid and groups the session's process becomes
(``ftpd.io.become``). ``root`` (uid 0) and the names in ``--ftpusers`` are refused
before PAM is asked, so a refused name never reaches a password check.
"""

from __future__ import annotations

import os
import pwd

from ftpd.auth.base import ALL_PERMS, Account
from ftpd.log import get_logger

log = get_logger("ftpd.auth.pam")

DEFAULT_SERVICE = "ftpd"
DEFAULT_FTPUSERS = "/etc/ftpusers"


class PamUnavailable(Exception):
    """python-pam is not installed (the ``ftpd[pam]`` extra)."""


def read_ftpusers(path: str) -> frozenset[str]:
    """The names of an ftpusers(5) file: one a line, ``#`` comments, blanks ignored."""
    names = set()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            name = line.split("#", 1)[0].strip()
            if name:
                names.add(name)
    return frozenset(names)


def default_ftpusers() -> str | None:
    """``/etc/ftpusers`` when it exists (vsftpd's and ProFTPD's default), else none."""
    return DEFAULT_FTPUSERS if os.path.isfile(DEFAULT_FTPUSERS) else None


class PamAuthorizer:
    """Local accounts by their PAM service (authentication and account management).

    Not ``cheap``: PAM may take seconds (pam_unix's failure delay, a network directory),
    so the server calls it from the auth worker pool."""

    cheap = False

    def __init__(self, service: str = DEFAULT_SERVICE, ftpusers: str | None = None,
                 perm: str = ALL_PERMS) -> None:
        try:
            import pam  # noqa: F401  (python-pam: loads libpam once)
        except ImportError:
            raise PamUnavailable("--pam needs python-pam: pip install 'ftpd[pam]'") from None
        self.service = service
        self.ftpusers = read_ftpusers(ftpusers) if ftpusers else frozenset()
        self.perm = perm

    def refused(self, username: str) -> str | None:
        """Why *username* may not log in whatever its password, or None."""
        if username in self.ftpusers:
            return "listed in ftpusers"
        try:
            entry = pwd.getpwnam(username)
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            return "no such account"
        if entry.pw_uid == 0:
            return "root may not log in"
        return None

    def authenticate(self, username: str, password: str) -> Account | None:
        import pam

        reason = self.refused(username)
        if reason is not None:
            log.info("pam: %r refused: %s", username, reason)
            return None
        checker = pam.pam()  # one per call: a PamAuthenticator is not thread-safe
        try:
            ok = checker.authenticate(username, password, service=self.service,
                                      resetcreds=False)
        except ValueError:  # a NUL in the name or password
            return None
        if not ok:
            log.info("pam: %r refused: %s", username, checker.reason)
            return None
        return self.account(username)

    def account(self, username: str) -> Account | None:
        """The account PAM accepted, as the passwd database has it now."""
        try:
            entry = pwd.getpwnam(username)
        except KeyError:
            return None
        if entry.pw_uid == 0:  # renamed or re-added meanwhile: still root
            return None
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return Account(entry.pw_name, entry.pw_dir, self.perm,
                       system=(entry.pw_uid, entry.pw_gid, groups))

"""The authorizer interface and the account it yields.

``authenticate`` may be slow (scrypt): the server calls it off the event loop.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

ALL_PERMS = "elradfmwMTL"
READ_PERMS = "elr"
ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})


class Account(NamedTuple):
    """A logged-in user: name, home directory (the root they see) and permission letters
    (pyftpdlib's: e CWD, l LIST, r RETR, a APPE, d DELE/RMD, f RNFR/RNTO, m MKD,
    w STOR/STOU, M SITE CHMOD, T MFMT, plus L SITE SYMLINK), and the account's limits:
    ``max_rate`` bytes/s per direction per session (None: the server's ``--max-rate``;
    0: unlimited), ``max_sessions`` concurrent sessions and ``quota`` bytes of storage
    under the home (0: no limit).

    ``system`` is set for a local account (``--pam``): its (uid, gid, groups), which the
    session's process becomes before it opens the home (``ftpd.io.become``)."""

    username: str
    home: str
    perm: str = READ_PERMS
    anonymous: bool = False
    email: str = ""
    system: tuple[int, int, tuple[int, ...]] | None = None
    max_rate: int | None = None
    max_sessions: int = 0
    quota: int = 0

    def can(self, letter: str) -> bool:
        if letter == "L" and self.anonymous:
            return False
        return letter in self.perm


@runtime_checkable
class Authorizer(Protocol):
    """``authenticate`` runs in a worker thread, off the loop, unless the authorizer
    sets ``cheap = True`` (no hashing, no I/O): then it is answered on the loop."""

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account for these credentials, or None. May block unless ``cheap``."""
        ...


class AnonymousAuthorizer:
    """``anonymous``/``ftp`` with any password, rooted at *home*."""

    cheap = True

    def __init__(self, home: str, writable: bool = False) -> None:
        self.home = home
        self.perm = "elradfmwMT" if writable else READ_PERMS

    def authenticate(self, username: str, password: str) -> Account | None:
        if username.lower() not in ANONYMOUS_NAMES:
            return None
        return Account("anonymous", self.home, self.perm, anonymous=True, email=password[:64])


class SingleUserAuthorizer:
    """The one full-rights user of ``-u``/``-P``."""

    cheap = True

    def __init__(self, username: str, password: str, home: str, perm: str = ALL_PERMS) -> None:
        self.username, self._password, self.home, self.perm = username, password, home, perm

    def authenticate(self, username: str, password: str) -> Account | None:
        import hmac

        if username == self.username and hmac.compare_digest(
                password.encode("utf-8", "surrogateescape"),
                self._password.encode("utf-8", "surrogateescape")):
            return Account(username, self.home, self.perm)
        return None


class ChainAuthorizer:
    """Asks each authorizer in turn; the first account wins."""

    def __init__(self, *authorizers: Authorizer) -> None:
        self.authorizers = [a for a in authorizers if a is not None]
        self.cheap = all(getattr(a, "cheap", False) for a in self.authorizers)

    def authenticate(self, username: str, password: str) -> Account | None:
        for authorizer in self.authorizers:
            account = authorizer.authenticate(username, password)
            if account is not None:
                return account
        return None

"""What a PRE/POST hook sees of a session: a small view, not the session (as aiosmtpd
hands its handlers small objects). A hook watches or refuses other commands; it reads
who and where the client is, keeps its own data in the scopes, asks for a filesystem
call off the loop, raises events — and cannot reach the session's state machine, its
queue, its transfer or its configuration, so no hook can put a session in a state its
transition table does not know."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ftpd.auth.base import Account
from ftpd.core.actions import Call
from ftpd.core.errors import FTPError
from ftpd.core.events import SessionInfo
from ftpd.core.paths import resolve
from ftpd.fs.base import FileSystem

if TYPE_CHECKING:
    from ftpd.core.session import Session

# the names ``ask("listdir", ...)`` may give: the FileSystem interface's methods
FS_METHODS = frozenset(name for name in vars(FileSystem) if not name.startswith("_"))


class SessionView:
    """One session as its hooks see it; everything read-only but the two scopes."""

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def peer(self) -> tuple[str, int]:
        """The client's (host, port)."""
        s = self._session
        return s.peer_host, s.peer_port

    @property
    def user(self) -> str | None:
        """The logged-in user's name, else the name USER gave (None before USER)."""
        acc = self._session.account
        return acc.username if acc is not None else self._session.username

    @property
    def account(self) -> Account | None:
        """The logged-in account (an immutable record), None before login."""
        return self._session.account

    @property
    def anonymous(self) -> bool:
        return self._session.anonymous

    @property
    def cwd(self) -> str:
        return self._session.cwd

    @property
    def type(self) -> str:
        """The representation type: "A" (ASCII) or "I" (binary)."""
        return self._session.type

    @property
    def rest(self) -> int:
        """The restart offset a REST set for the next transfer (0: none)."""
        return self._session.rest

    @property
    def scope(self) -> dict[str, Any]:
        """This session's storage for modules."""
        return self._session.scope

    @property
    def server_scope(self) -> dict[str, Any]:
        """The server-wide storage shared by every module and session."""
        return self._session.config.server_scope

    def resolve(self, path: str) -> str:
        """*path* (absolute, or relative to the cwd) as a normalised virtual path."""
        return resolve(self._session.cwd, path)

    def ask(self, what: str | Callable[..., Any], *args: Any) -> Call:
        """The order for a filesystem call off the loop: ``names = yield
        view.ask("listdir", path)`` calls the session's filesystem method by name; a
        function is called as ``what(filesystem, *args)`` (several calls in one trip to
        the worker pool; the filesystem is None before login). The answer, or the
        exception raised, comes back at the ``yield``."""
        fs = self._session.fs
        if not isinstance(what, str):
            return Call(what, (fs, *args))
        if what not in FS_METHODS:
            raise ValueError(f"ask({what!r}): not a FileSystem method "
                             f"({', '.join(sorted(FS_METHODS))})")
        if fs is None:
            raise FTPError(530, "Please log in with USER and PASS first.")
        return Call(getattr(fs, what), args)

    def emit(self, name: str, data: Any = None) -> None:
        """Raise an event; it reaches the bus after the command's reply is sent."""
        self._session.emit(name, data)

    def now(self) -> float:
        """The session's clock (injected: event times)."""
        return self._session.now()

    def info(self) -> SessionInfo:
        """Who the session is, as events carry it."""
        return self._session.info()

    def __repr__(self) -> str:
        return f"SessionView({self.session_id!r}, user={self.user!r}, cwd={self.cwd!r})"

"""The control-connection state machine: everything that changes session state lives here.

Bytes come in through ``receive``; each public method returns the replies and
actions (``core.actions``) the transport must carry out, in order. Nothing here
does I/O on sockets; the filesystem is reached through the ``FileSystem`` object.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ftpd.auth.base import ANONYMOUS_NAMES, Account
from ftpd.core import actions as A
from ftpd.core.buffer import MAX_LINE, LineFramer, LineTooLong
from ftpd.core.commands import (
    ARG,
    DEFAULT_TABLE,
    NO_ARG,
    Command,
    CommandSpec,
    CommandTable,
    is_verb,
)
from ftpd.core.errors import FTPError, reply_for_oserror
from ftpd.core.events import LogoutEvent, SessionInfo
from ftpd.core.paths import resolve
from ftpd.core.replies import Reply
from ftpd.core.throttle import LoginThrottle
from ftpd.fs.base import FileSystem
from ftpd.log import get_logger

log = get_logger("ftpd.session")

MAX_QUEUED_LINES = 64


_FS_CACHE: dict[str, Any] = {}  # home -> LocalFS


def _local_fs(account: Account) -> FileSystem:
    from ftpd.fs.local import LocalFS

    fs = _FS_CACHE.get(account.home)
    if fs is None or fs.replaced():  # the home was moved or recreated: a fresh handle
        fs = _FS_CACHE[account.home] = LocalFS(account.home)
    return fs


class SessionConfig:
    """What every session of one server shares: policy, limits and the command table.
    Keywords only; ``replace(**changes)`` gives a modified copy."""

    def __init__(self, *, table: CommandTable | None = None,
                 fs_factory: Callable[[Account], FileSystem] = _local_fs,
                 banner: str = "ftpd ready.", masquerade_address: str | None = None,
                 passive_ports: range | None = None, permit_foreign_addresses: bool = False,
                 max_bad_commands: int = 20, max_login_attempts: int = 3,
                 throttle: LoginThrottle | None = None, atomic_uploads: bool = False,
                 max_listing_entries: int = 200_000, tls_mode: str = "off",
                 tls_anonymous: bool = False, tls_available: bool = False,
                 implicit_tls: bool = False, server_scope: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time, shutting_down: bool = False) -> None:
        self.table = table if table is not None else _default_table()
        self.fs_factory = fs_factory
        self.banner = banner
        self.masquerade_address = masquerade_address
        self.passive_ports = passive_ports
        self.permit_foreign_addresses = permit_foreign_addresses
        self.max_bad_commands = max_bad_commands
        self.max_login_attempts = max_login_attempts
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.atomic_uploads = atomic_uploads
        self.max_listing_entries = max_listing_entries
        self.tls_mode = tls_mode  # off, explicit, required
        self.tls_anonymous = tls_anonymous
        self.tls_available = tls_available
        self.implicit_tls = implicit_tls
        self.server_scope: dict[str, Any] = server_scope if server_scope is not None else {}
        self.clock = clock
        self.shutting_down = shutting_down

    def replace(self, **changes: Any) -> SessionConfig:
        import copy

        new = copy.copy(self)
        for name, value in changes.items():
            if not hasattr(new, name):
                raise TypeError(f"SessionConfig has no setting {name!r}")
            setattr(new, name, value)
        return new


def _default_table() -> CommandTable:
    import ftpd.core.handlers  # noqa: F401  (registers the built-in commands)

    return DEFAULT_TABLE


class Session:
    """One FTP control connection, without its socket."""

    __slots__ = ("_current", "_deferred", "_framer", "_out", "_queue", "_resume", "_waiting",
                 "account", "bad_commands", "closed", "config", "cwd", "data_mode", "epsv_all",
                 "fs", "lines_received", "local_host", "local_port", "login_failures",
                 "mlst_facts", "pbsz_set", "peer_host", "peer_port", "prot", "rest", "rnfr",
                 "scope", "session_id", "started", "starting_tls", "stats", "table",
                 "tls_active", "transfer", "type", "username", "pending_quit", "__weakref__")

    def __init__(self, config: SessionConfig, peer: tuple[str, int], local: tuple[str, int],
                 session_id: str = "") -> None:
        self.config = config
        self.table = config.table
        self.peer_host, self.peer_port = peer
        self.local_host, self.local_port = local
        self.session_id = session_id
        self.scope: dict[str, Any] = {}  # per-session storage for modules
        self.started = config.clock()
        self._framer = LineFramer(MAX_LINE)
        self._out: list[Any] = []
        self._queue: deque[bytes | LineTooLong] = deque()
        self._deferred: Command | None = None
        self._current: Command | None = None
        self._waiting = False
        self._resume: Callable[[], None] | None = None
        self.closed = False
        self.reset_login()
        self.stats = {"files_down": 0, "bytes_down": 0, "files_up": 0, "bytes_up": 0}
        self.bad_commands = 0
        self.login_failures = 0
        self.lines_received = 0  # the transport's idle clock counts whole lines only
        # TLS state (control protection, data protection level)
        self.tls_active = config.implicit_tls
        self.starting_tls = False  # AUTH TLS accepted, handshake not done yet
        self.pbsz_set = config.implicit_tls
        self.prot = "P" if config.implicit_tls else "C"

    def reset_login(self) -> None:
        """The state REIN returns to."""
        self.username: str | None = None
        self.account: Account | None = None
        self.fs: FileSystem | None = None
        self.cwd = "/"
        self.type = "A"
        self.rest = 0
        self.rnfr: str | None = None
        self.data_mode: tuple[Any, ...] | None = None
        self.epsv_all = False
        self.transfer: A.Transfer | None = None
        self.pending_quit: Command | None = None  # QUIT sent during a transfer
        self.mlst_facts = ["type", "size", "modify", "perm", "unique", "unix.mode"]

    # -- outputs -------------------------------------------------------------
    def _take(self) -> list[Any]:
        out, self._out = self._out, []
        return out

    def reply(self, code: int, *lines: str) -> None:
        """Send a reply outside the response chains (preliminary 150/125, 421)."""
        self._out.append(Reply.of(code, *lines))

    def act(self, action: Any) -> None:
        self._out.append(action)

    def emit(self, name: str, data: Any = None) -> None:
        """Raise an event; it reaches the bus after the current reply is sent."""
        cmd = self._current or self._deferred
        (cmd.after if cmd is not None else self._out).append(A.Emit(name, data))

    def info(self) -> SessionInfo:
        acc = self.account
        return SessionInfo(self.session_id, self.peer_host,
                           acc.username if acc else (self.username or ""),
                           acc.email if acc else "", bool(acc and acc.anonymous))

    def now(self) -> float:
        return self.config.clock()

    # -- the transport's entry points ----------------------------------------
    def start(self) -> list[Any]:
        """The greeting (or 421 when the server is full or stopping)."""
        from ftpd.core.events import ConnectEvent

        self.reply(220, *self.config.banner.split("\n"))  # a multi-line banner: 220-
        self.emit("session.connect", ConnectEvent(self.info(), self.now()))
        return self._take()

    def refuse(self, text: str) -> list[Any]:
        """Greet with 421 and close (connection caps, server stopping)."""
        self.reply(421, text)
        self.act(A.Close("REFUSED"))
        self.closed = True
        return self._take()

    def receive(self, data: bytes) -> list[Any]:
        """Bytes from the client; returns what to do about them."""
        for line in self._framer.feed(data):
            if self.closed:
                break
            self.lines_received += 1
            self._on_line(line)
            if self.starting_tls:
                # Nothing sent in the clear after AUTH TLS may run inside the protected
                # session (STARTTLS command injection): drop the rest of this input.
                self._framer = LineFramer(MAX_LINE)
                self._queue.clear()
                break
        return self._take()

    def passive_listening(self, host: str, port: int) -> list[Any]:
        cmd = self._deferred
        if cmd is not None and cmd.verb in ("PASV", "EPSV"):
            self.data_mode = ("passive",)
            if cmd.verb == "PASV":
                addr = self.config.masquerade_address or host
                h = addr.replace(".", ",")
                cmd.add(227, f"Entering Passive Mode ({h},{port >> 8},{port & 0xFF}).")
            else:
                cmd.add(229, f"Entering Extended Passive Mode (|||{port}|)")
            self._complete(cmd)
        return self._take()

    def passive_failed(self, reason: str) -> list[Any]:
        cmd = self._deferred
        if cmd is not None and cmd.verb in ("PASV", "EPSV"):
            cmd.add_err(425, f"Can't open passive connection: {reason}")
            self._complete(cmd)
        return self._take()

    def auth_result(self, account: Account | None) -> list[Any]:
        from ftpd.core.handlers.login import finish_login

        cmd = self._deferred
        if cmd is not None and cmd.verb == "PASS":
            finish_login(self, cmd, account)
        return self._take()

    def resume(self) -> list[Any]:
        """A ``Wait`` has elapsed."""
        self._waiting = False
        cont, self._resume = self._resume, None
        if cont is not None:
            cont()
        self._drain()
        return self._take()

    def transfer_finished(self, error: str | OSError | None = None) -> list[Any]:
        """The transport finished (or failed) the current transfer. *error*: None for
        success, "connect" (no data connection), "timeout", "reset" (lost mid-way),
        "aborted", or the OSError a file operation raised."""
        from ftpd.core.handlers.transfer import end_transfer

        if self.transfer is not None and self._deferred is not None:
            end_transfer(self, self._deferred, error)
        return self._take()

    def timeout(self) -> list[Any]:
        """The control connection was idle too long."""
        if self.transfer is None:
            self.reply(421, "Timeout: closing control connection.")
            self._close("TIMEOUT")
        return self._take()

    def shutdown(self) -> list[Any]:
        """The server is stopping: idle sessions go now, a transfer finishes first."""
        self.config.shutting_down = True
        if self.transfer is None and not self.closed:
            self.reply(421, "Server shutting down.")
            self._close("SHUTDOWN")
        return self._take()

    def connection_lost(self) -> list[Any]:
        """The client went away (EOF or error) without QUIT."""
        if not self.closed:
            if self.transfer is not None and self._deferred is not None:
                from ftpd.core.handlers.transfer import end_transfer

                end_transfer(self, self._deferred, "reset")
            self._close("EOF", send=False)
        return self._take()

    def tls_established(self) -> list[Any]:
        self.tls_active = True
        self.starting_tls = False
        return self._take()

    # -- dispatch --------------------------------------------------------------
    def _busy(self) -> bool:
        return self._deferred is not None or self._waiting

    def _on_line(self, line: bytes | LineTooLong) -> None:
        if not self._busy():
            self._execute(line)
            return
        if self.transfer is not None and self._acts_now(line):
            self._execute(line)
            return
        if len(self._queue) >= MAX_QUEUED_LINES:
            self.reply(421, "Too many pipelined commands.")
            self._close("ERROR")
            return
        self._queue.append(line)

    def _acts_now(self, line: bytes | LineTooLong) -> bool:
        """During a transfer, may *line* overtake what is queued? A ``during_transfer``
        command acts at once only while nothing is queued, so replies keep the order of
        the commands; ``ABOR`` alone always acts at once (it ends the transfer the
        queued lines wait for)."""
        if isinstance(line, LineTooLong):
            return False
        verb = line.lstrip(b" ").split(b" ", 1)[0].upper()
        if verb == b"ABOR":
            return True
        if self._queue:
            return False
        spec = self.table.commands.get(verb.decode("ascii", "replace"))
        return spec is not None and spec.during_transfer

    def _drain(self) -> None:
        while self._queue and not self._busy() and not self.closed:
            self._execute(self._queue.popleft())
            if self.starting_tls:  # queued cleartext never runs inside TLS
                self._queue.clear()
                self._framer = LineFramer(MAX_LINE)

    def _execute(self, line: bytes | LineTooLong) -> None:
        if isinstance(line, LineTooLong):
            self._bad(500, f"Command line too long (limit {MAX_LINE} bytes).")
            return
        text = line.decode("utf-8", "surrogateescape").lstrip(" ")
        if "\0" in text:
            self._bad(501, "Command contains a NUL byte.")
            return
        verb, _, arg = text.partition(" ")
        if not verb:
            self._bad(500, "Empty command.")
            return
        if not is_verb(verb):
            self._bad(500, "Syntax error, command unrecognized.")
            return
        verb = verb.upper()
        spec = self.table.commands.get(verb)
        if spec is None:
            self._bad(500, f"Unknown command {verb}.")
            return
        log.debug("[%s] %s %s", self.session_id, verb, "****" if verb == "PASS" else arg)
        self.run(spec, Command(verb, arg))

    def _bad(self, code: int, text: str) -> None:
        self.reply(code, text)
        self._count_bad(code)

    def _count_bad(self, code: int) -> None:
        if code in (500, 501, 502, 503, 504):
            self.bad_commands += 1
            if self.bad_commands >= self.config.max_bad_commands:
                self.reply(421, "Too many bad commands, closing control connection.")
                self._close("ERROR")
        else:
            self.bad_commands = 0

    def check(self, spec: CommandSpec, cmd: Command) -> bool:
        """The generic checks every command gets: argument rule, login, permission."""
        if spec.arg == ARG and not cmd.arg.strip():
            cmd.add_err(501, f"Syntax error: {spec.name} needs an argument.")
        elif spec.arg == NO_ARG and cmd.arg.strip():
            cmd.add_err(501, f"Syntax error: {spec.name} takes no argument.")
        elif spec.login and self.account is None:
            cmd.add_err(530, "Please log in with USER and PASS first.")
        elif spec.perm and self.account is not None and not self.account.can(spec.perm):
            cmd.add_err(550, "Permission denied.")
            cmd.info["refused"] = True
        return not cmd.failed

    def run(self, spec: CommandSpec, cmd: Command) -> None:
        """Checks, PRE hooks, the handler, then (unless deferred) POST hooks and the reply."""
        outer, self._current = self._current, cmd
        try:
            if self.check(spec, cmd):
                for hook in self.table.hooks("pre", spec.name):
                    self._call(hook, cmd)
                    if cmd.failed:
                        break
                if not cmd.failed:
                    self._call(spec.handler, cmd)
        finally:
            self._current = outer
        if spec.name not in ("RNFR", "RNTO"):
            self.rnfr = None
        if not cmd.deferred:
            self._complete(cmd)
        elif self._deferred is None:
            self._deferred = cmd

    def _call(self, fn: Callable[[Session, Command], None], cmd: Command) -> None:
        try:
            fn(self, cmd)
        except FTPError as exc:
            cmd.add_err(exc.code, exc.text)
        except OSError as exc:
            cmd.add_err(*reply_for_oserror(exc))
            cmd.info["errno"] = exc.errno
        except Exception:
            log.exception("[%s] internal error in %s", self.session_id, cmd.verb)
            cmd.deferred = False
            cmd.add_err(451, f"Internal error while processing {cmd.verb}; the session goes on.")

    def _complete(self, cmd: Command) -> None:
        """POST hooks, then exactly one reply from the chain matching the outcome."""
        if self._deferred is cmd:
            self._deferred = None
        cmd.deferred = False
        outer, self._current = self._current, cmd
        when = "post_err" if cmd.failed else "post"
        try:
            for hook in self.table.hooks(when, cmd.verb):
                self._call(hook, cmd)
            sub = cmd.info.get("site")  # a SITE subcommand's own hooks follow SITE's
            if sub is not None:
                for hook in self.table.hooks(when, "SITE " + sub, everywhere=False):
                    self._call(hook, cmd)
        finally:
            self._current = outer
        chain = cmd.err if cmd.failed else cmd.ok
        try:
            reply = chain.to_reply()
        except ValueError:  # a module added a code outside 100-599
            log.error("[%s] %s produced a malformed reply", self.session_id, cmd.verb)
            reply = Reply.of(451, f"Internal error: {cmd.verb} produced a malformed reply.")
        if reply is None:
            log.error("[%s] %s produced no reply", self.session_id, cmd.verb)
            reply = Reply.of(451, f"Internal error: {cmd.verb} produced no reply.")
        self._out.append(reply)
        self._out.extend(cmd.after)
        self._count_bad(reply.code)
        if any(isinstance(a, A.Close) for a in cmd.after):
            self.closed = True
        if self._current is None:
            self._after_transfer()
            self._drain()

    def _after_transfer(self) -> None:
        """Once the transfer is over and no command is running (ABOR's own 226 included):
        answer a QUIT that waited for it, or leave if the server is stopping."""
        if self.transfer is not None or self.closed:
            return
        quit_cmd, self.pending_quit = self.pending_quit, None
        if quit_cmd is not None:
            quit_cmd.add(221, "Goodbye.")
            quit_cmd.after.extend(self.closing_actions("QUIT"))
            self._complete(quit_cmd)
        elif self.config.shutting_down and not self._busy():
            self.reply(421, "Server shutting down.")
            self._close("SHUTDOWN")

    def defer_reply(self, cmd: Command, seconds: float, then: Callable[[], None]) -> None:
        """Hold *cmd*'s reply for *seconds* (the loop goes on), then run *then*."""
        cmd.deferred = True
        self._deferred = cmd
        self._waiting = True
        self._resume = then
        self._out.append(A.Wait(seconds))

    def _close(self, reason: str, send: bool = True) -> None:
        if not self.closed:
            self.closed = True
            self._out.extend(self.closing_actions(reason))

    def closing_actions(self, reason: str) -> list[Any]:
        """What ends a session: the disconnect event (always: the session log's DISCONNECT
        line), the logout event (if logged in), then the closes."""
        out: list[Any] = [A.Emit("session.disconnect", self.logout_event(reason))]
        if self.account is not None:
            out.append(A.Emit("session.logout", self.logout_event(reason)))
        return out + [A.CloseData(), A.Close(reason)]

    def logout_event(self, reason: str) -> LogoutEvent:
        now = self.now()
        return LogoutEvent(self.info(), now, now - self.started, reason=reason, **self.stats)

    # -- helpers for handlers ----------------------------------------------------
    def resolve(self, arg: str) -> str:
        return resolve(self.cwd, arg)

    @property
    def anonymous(self) -> bool:
        return bool(self.account and self.account.anonymous)

    def is_anonymous_name(self, name: str) -> bool:
        return name.lower() in ANONYMOUS_NAMES

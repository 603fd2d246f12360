"""The control-connection state machine: everything that changes session state lives here.

Bytes come in through ``receive``; each public method returns the replies and
actions (``core.actions``) the transport must carry out, in order. Nothing here does
I/O: what the session needs from outside — the filesystem, a login check, a passive
port, a delay — a command asks for by yielding an order, and the transport's
``answer(result)`` / ``fail(exc)`` resumes it (``core.dispatch``). The session's
state is one of ``core.states.State``, changed only through its transition table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ftpd.auth.base import ANONYMOUS_NAMES, Account
from ftpd.core import actions as A
from ftpd.core import dispatch, dropbox
from ftpd.core import states as st
from ftpd.core.buffer import MAX_LINE, LineFramer, LineTooLong
from ftpd.core.commands import Command, CommandSpec
from ftpd.core.events import LogoutEvent, SessionInfo
from ftpd.core.paths import resolve
from ftpd.core.replies import Reply
from ftpd.core.sessionconfig import SessionConfig
from ftpd.core.states import ON_LINE, Event, transition
from ftpd.fs.base import FileSystem
from ftpd.log import get_logger

log = get_logger("ftpd.session")

MAX_QUEUED_LINES = 64
_ASKS: tuple[type, ...] = A.Ask.__args__  # the orders a command may yield and wait for
Output = Reply | A.Action  # what every entry point returns, in the order to carry it out
_EVENT_OF = {A.StartTransfer: st.ON_TRANSFER, A.StartTLS: st.ON_TLS}
_ABORTED = A.TransferEnd(A.Outcome.ABORTED)
_RESET = A.TransferEnd(A.Outcome.RESET)
# An idle session holds none of its own: the shared empty tuple stands for an empty queue
# or waiting list (a list is made when a line or command first waits), and the default
# MLST facts are one tuple every session reads (OPTS MLST gives a session its own list).
_NONE: tuple[()] = ()
DEFAULT_MLST_FACTS = ("type", "size", "modify", "perm", "unique", "unix.mode")
_NO_STATS = {"files_down": 0, "bytes_down": 0, "files_up": 0, "bytes_up": 0}


class Suspended(NamedTuple):
    """A command waiting at a ``yield``: its continuation is the generator itself."""

    cmd: Command
    steps: dispatch.Steps
    order: Any


class Session:
    """One FTP control connection, without its socket."""

    __slots__ = ("_admitted", "_closing", "_current", "_framer", "_out", "_queue", "_scope",
                 "_stats", "_suspended", "_waiters", "account", "bad_commands", "commands_run",
                 "config", "cwd", "data_mode", "epsv_all", "fs", "hash_algorithm",
                 "lines_received", "local_host", "local_port", "login_failures", "mlst_facts",
                 "pbsz_set", "peer_host", "peer_port", "prot", "rest", "rnfr", "session_id",
                 "started", "state", "table", "tls_active", "transfer", "type", "username",
                 "__weakref__")

    def __init__(self, config: SessionConfig, peer: tuple[str, int], local: tuple[str, int],
                 session_id: str = "") -> None:
        self.config = config
        self.table = config.table
        self.peer_host, self.peer_port = peer
        self.local_host, self.local_port = local
        self.session_id = session_id
        self._scope: dict[str, Any] | None = None  # ``scope``, made when a module uses it
        self.started = config.clock()
        self.state = st.GREETING
        self._framer = LineFramer(MAX_LINE)
        self._out: list[Output] = []
        self._queue: list[bytes | LineTooLong] | tuple[()] = _NONE  # lines waiting to run
        self._current: Command | None = None  # the command whose code runs now
        self._suspended: Suspended | None = None  # the command the transport will answer
        self._waiters: list[Suspended] | tuple[()] = _NONE  # waiting for it (QUIT, ABOR)
        self._closing: str | None = None  # closed; the closing actions after its cleanup
        self._admitted: str | None = None  # the user this session counts for (Ledger)
        self.reset_login()
        self._stats: dict[str, int] | None = None  # ``stats``, made by the first transfer
        self.bad_commands = 0
        self.login_failures = 0
        self.commands_run = 0
        self.lines_received = 0  # the transport's idle clock counts whole lines only
        self.tls_active = config.implicit_tls
        self.pbsz_set = config.implicit_tls
        self.prot = "P" if config.implicit_tls else "C"

    def reset_login(self) -> None:
        """The state REIN returns to."""
        self.leave()
        self.username: str | None = None
        self.account: Account | None = None
        self.fs: FileSystem | None = None
        self.cwd = "/"
        self.type = "A"
        self.rest = 0
        self.rnfr: tuple[str, int] | None = None  # (path, commands_run when RNFR ran)
        self.data_mode: A.DataMode | None = None
        self.epsv_all = False
        self.transfer: A.Transfer | None = None
        self.mlst_facts: tuple[str, ...] | list[str] = DEFAULT_MLST_FACTS
        self.hash_algorithm = "SHA-256"  # HASH's, chosen by OPTS HASH (draft: REIN resets)

    def admit(self, name: str, most: int) -> bool:
        """Count this session as one of *name*'s (max-sessions *most*, 0: no limit)."""
        self.leave()
        if not self.config.ledger.admit(name, most):
            return False
        self._admitted = name
        return True

    def leave(self) -> None:
        """This session no longer counts for its user (REIN, the end)."""
        name, self._admitted = self._admitted, None
        if name is not None:
            self.config.ledger.leave(name)

    @property
    def scope(self) -> dict[str, Any]:
        """Per-session storage for modules (made on first use: most sessions have none)."""
        if self._scope is None:
            self._scope = {}
        return self._scope

    @property
    def stats(self) -> dict[str, int]:
        """Files and bytes moved each way (made by the first transfer that counts)."""
        if self._stats is None:
            self._stats = dict(_NO_STATS)
        return self._stats

    @property
    def max_rate(self) -> int:
        """Bytes/s per direction for this session's transfers: the account's own, else
        the server's ``--max-rate``; 0: unlimited."""
        acc = self.account
        if acc is not None and acc.max_rate is not None:
            return acc.max_rate
        return self.config.max_rate

    @property
    def closed(self) -> bool:
        return self.state is st.CLOSED

    @property
    def expecting(self) -> bool:
        """Whether a command waits for the transport's answer (else one is dropped)."""
        return self._suspended is not None

    def _to(self, event: Event) -> None:
        self.state = transition(self.state, event)

    # -- outputs -------------------------------------------------------------
    def _take(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def reply(self, code: int, *lines: str) -> None:
        """Send a reply outside the response chains (preliminary 150/125, 421)."""
        if not self.closed:
            self._out.append(Reply.of(code, *lines))

    def act(self, action: A.Action) -> None:
        self._out.append(action)

    def emit(self, name: str, data: Any = None) -> None:
        """Raise an event; it reaches the bus after the current reply is sent."""
        if not self.config.listens(name):
            return
        cmd = self._current
        (cmd.after if cmd is not None else self._out).append(A.Emit(name, data))

    def ask(self, fn: Callable[..., Any], *args: Any) -> A.Call:
        """The order for ``fn(*args)`` off the loop: ``result = yield s.ask(fn, ...)``."""
        return A.Call(fn, args)

    def cleanup(self, fn: Callable[..., Any], *args: Any) -> A.Call:
        """``ask`` for a call that must happen even if the client has gone."""
        return A.Call(fn, args, cleanup=True)

    def info(self) -> SessionInfo:
        acc = self.account
        return SessionInfo(self.session_id, self.peer_host,
                           acc.username if acc else (self.username or ""),
                           acc.email if acc else "", bool(acc and acc.anonymous))

    def now(self) -> float:
        return self.config.clock()

    # -- the transport's entry points ----------------------------------------
    def start(self, greeted: bool = False) -> list[Reply | A.Action]:
        """The greeting; *greeted*: the transport wrote this very 220 already (inetd
        no-wait writes it before the server is built: ``ftpd.launch.inetd.greet``)."""
        from ftpd.core.events import ConnectEvent

        self._to(st.ON_START)
        if not greeted:
            self.reply(220, *self.config.banner.split("\n"))  # a multi-line banner: 220-
        if self.config.listens("session.connect"):
            self.emit("session.connect", ConnectEvent(self.info(), self.now()))
        self._settle()
        return self._take()

    def refuse(self, text: str) -> list[Reply | A.Action]:
        """Greet with 421 and close (connection caps, server stopping)."""
        self.reply(421, text)
        self.act(A.Close("REFUSED"))
        self._to(st.ON_CLOSE)
        return self._take()

    def receive(self, data: bytes) -> list[Reply | A.Action]:
        """Bytes from the client; returns what to do about them."""
        for line in self._framer.feed(data):
            rule = ON_LINE[self.state]
            if rule == "drop":
                self._drop_cleartext()
                break
            self.lines_received += 1
            self._on_line(line, rule)
            if self.state is st.STARTING_TLS:
                self._drop_cleartext()
                break
        return self._take()

    def answer(self, result: Any = None) -> list[Reply | A.Action]:
        """The transport carried out the order the suspended command yielded (for
        ``StartTransfer``: a ``TransferEnd``)."""
        self._wake(result, None)
        self._settle()
        return self._take()

    def fail(self, exc: BaseException) -> list[Reply | A.Action]:
        """The order failed: *exc* is raised in the command at its ``yield``."""
        self._wake(None, exc)
        self._settle()
        return self._take()

    def abort_transfer(self) -> None:
        """ABOR: the transfer's command goes on from its ``yield``, ABORTED."""
        if self.state is st.TRANSFER:
            self._wake(_ABORTED, None)

    def timeout(self) -> list[Reply | A.Action]:
        """The control connection was idle too long."""
        if self._may_close_now():
            self.reply(421, "Timeout: closing control connection.")
            self._close("TIMEOUT")
        return self._take()

    def shutdown(self) -> list[Reply | A.Action]:
        """The server is stopping: idle sessions go now, a transfer finishes first."""
        self.config.shutting_down = True
        if self._may_close_now():
            self.reply(421, "Server shutting down.")
            self._close("SHUTDOWN")
        return self._take()

    def connection_lost(self) -> list[Reply | A.Action]:
        """The client went away (EOF or error) without QUIT: a running transfer ends
        RESET (its end still closes the file), then the session closes."""
        self._close("EOF")
        self._settle()
        return self._take()

    # -- running commands ------------------------------------------------------
    def _drop_cleartext(self) -> None:
        # Nothing sent in the clear after AUTH TLS may run inside the protected
        # session (STARTTLS command injection): drop the rest of this input.
        self._framer = LineFramer(MAX_LINE)
        self._queue = _NONE

    def _on_line(self, line: bytes | LineTooLong, rule: str) -> None:
        if (rule == "run" and not self._queue) or (rule == "urgent" and self._acts_now(line)):
            self._execute(line)
        elif len(self._queue) >= MAX_QUEUED_LINES:
            self.reply(421, "Too many pipelined commands.")
            self._close("ERROR")
        elif self._queue:
            self._queue.append(line)
        else:
            self._queue = [line]
        self._settle()

    def _acts_now(self, line: bytes | LineTooLong) -> bool:
        """During a transfer, may *line* overtake what is queued? A ``during_transfer``
        command acts at once only while nothing is queued, so replies keep the order of
        the commands; ``ABOR`` alone always acts at once (it ends the transfer the
        queued lines wait for)."""
        verb = dispatch.line_verb(line)
        spec = self.table.commands.get(verb) if verb else None
        if spec is None or not spec.during_transfer:
            return False
        return not self._queue or spec.overtakes

    def _execute(self, line: bytes | LineTooLong) -> None:
        parsed = dispatch.parse(line, self.table)
        if isinstance(parsed[0], int):
            self.reply(*parsed)
            self._count_bad(parsed[0])
            return
        spec, cmd = parsed
        log.debug("[%s] %s %s", self.session_id, cmd.name, "****" if spec.secret else cmd.arg)
        self.run(spec, cmd)

    def run(self, spec: CommandSpec, cmd: Command) -> None:
        """Checks, PRE hooks, the handler; then (now or once it stops waiting) POST
        hooks and the reply."""
        self.commands_run += 1
        outer, self._current = self._current, cmd
        try:
            steps = dispatch.start(self, spec, cmd)
        finally:
            self._current = outer
        if steps is None:
            self._complete(cmd)
        else:
            self._advance(Suspended(cmd, steps, None), None, None)

    def _advance(self, at: Suspended, value: Any, exc: BaseException | None) -> None:
        """Run a command on from its ``yield`` (or its start) to its next order or end."""
        outer, self._current = self._current, at.cmd
        try:
            order = at.steps.throw(exc) if exc is not None else at.steps.send(value)
        except StopIteration:
            order = None
        finally:
            self._current = outer
        if order is None:
            self._complete(at.cmd)
        else:
            self._suspend(Suspended(at.cmd, at.steps, order))

    def _suspend(self, at: Suspended) -> None:
        order = at.order
        if isinstance(order, A.AwaitCommand):
            if self._suspended is None:  # nothing to wait for
                self._advance(at, None, None)
            else:
                waiters = self._waiters
                self._waiters = [at, *waiters] if order.first else [*waiters, at]
            return
        if not isinstance(order, _ASKS) or self._suspended is not None:
            problem = TypeError(f"{at.cmd.verb} yielded {order!r}" if self._suspended is None
                                else f"{at.cmd.verb} may not wait while another command does")
            self._advance(at, None, problem)
            return
        if getattr(order, "after_reply", False):
            self._count_bad(self._send_reply(at.cmd))
        self._suspended = at
        self._to(_EVENT_OF.get(type(order), st.ON_ASK))
        self._out.append(order)

    def _wake(self, value: Any, exc: BaseException | None) -> None:
        at = self._suspended
        if at is not None:
            self._suspended = None
            self._to(st.ON_ANSWER)
            self._advance(at, value, exc)

    def _complete(self, cmd: Command) -> None:
        """POST hooks, then exactly one reply from the chain matching the outcome."""
        code = None if cmd.replied else self._send_reply(cmd)
        self._out.extend(cmd.after)
        if cmd.after and any(isinstance(a, A.Close) for a in cmd.after):
            self._close(None)
        if code is not None:
            self._count_bad(code)

    def _send_reply(self, cmd: Command) -> int:
        outer, self._current = self._current, cmd
        try:
            dispatch.run_post_hooks(self, cmd)
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
        cmd.replied = True
        if not self.closed:  # after the close, a cleanup's reply has nobody to go to
            self._out.append(reply)
        return reply.code

    def _settle(self) -> None:
        """Once no command waits for the transport: the commands that waited for it
        (ABOR, a QUIT sent during a transfer), a close that waited for a cleanup, the
        server's stop, then the queued lines, in order. During a transfer: the queued
        lines that act during one."""
        while self._current is None:
            if self._suspended is not None:
                line = self._queued_urgent() if self.state is st.TRANSFER else None
                if line is None:
                    return
                self._execute(line)
            elif self._waiters:
                self._advance(self._waiters.pop(0), None, None)
            elif self._closing is not None:
                reason, self._closing = self._closing, None
                self._out.extend(self.closing_actions(reason))
            elif self.closed:
                return
            elif self.config.shutting_down:
                self.reply(421, "Server shutting down.")
                self._close("SHUTDOWN")
            elif self._queue and self.state is st.READY:
                self._execute(self._queue.pop(0))  # at most MAX_QUEUED_LINES
                if self.state is st.STARTING_TLS:  # queued cleartext never runs in TLS
                    self._drop_cleartext()
            else:
                return

    def _queued_urgent(self) -> bytes | LineTooLong | None:
        """A line queued while a command waited that may act now its transfer runs, as
        if it had come just now: the head of the queue if it acts during a transfer, else
        an ABOR anywhere in it. Removed from the queue."""
        for i, line in enumerate(self._queue):
            verb = dispatch.line_verb(line)
            spec = self.table.commands.get(verb) if verb else None
            if spec is not None and spec.during_transfer and (i == 0 or spec.overtakes):
                del self._queue[i]
                return line
        return None

    def _may_close_now(self) -> bool:
        """No transfer runs and no cleanup must finish first (timeout, shutdown)."""
        if self.closed or self.state in (st.TRANSFER, st.STARTING_TLS):
            return False
        at = self._suspended
        return at is None or not (isinstance(at.order, A.Call) and at.order.cleanup)

    def _count_bad(self, code: int) -> None:
        if code in (500, 501, 502, 503, 504):
            self.bad_commands += 1
            if self.bad_commands >= self.config.max_bad_commands:
                self.reply(421, "Too many bad commands, closing control connection.")
                self._close("ERROR")
        else:
            self.bad_commands = 0

    def _close(self, reason: str | None) -> None:
        """End the session; *reason* None: the closing actions are already out (QUIT).
        A running transfer ends RESET and its command finishes (the file closed,
        the event raised) before the closing actions; any other waiting command is
        abandoned (the transport drops its answer)."""
        if self.closed:
            return
        transferring = self.state is st.TRANSFER
        self._to(st.ON_CLOSE)
        self.leave()
        self._queue = _NONE
        for waiter in self._waiters:
            waiter.steps.close()
        self._waiters = _NONE
        if transferring:
            self._wake(_RESET, None)
        at = self._suspended
        if at is not None and not (isinstance(at.order, A.Call) and at.order.cleanup):
            self._suspended = None
            at.steps.close()
        if reason is not None:
            if self._suspended is not None:
                self._closing = reason
            else:
                self._out.extend(self.closing_actions(reason))

    def closing_actions(self, reason: str) -> list[A.Action]:
        """What ends a session: the disconnect event (always: the session log's DISCONNECT
        line), the logout event (if logged in), then the closes."""
        listens, out = self.config.listens, []
        if listens("session.disconnect"):
            out.append(A.Emit("session.disconnect", self.logout_event(reason)))
        if self.account is not None and listens("session.logout"):
            out.append(A.Emit("session.logout", self.logout_event(reason)))
        return out + [A.CloseData(), A.Close(reason)]

    def logout_event(self, reason: str) -> LogoutEvent:
        now = self.now()
        return LogoutEvent(self.info(), now, now - self.started, reason=reason,
                           **(self._stats or _NO_STATS))

    # -- helpers for handlers ----------------------------------------------------
    def resolve(self, arg: str) -> str:
        """The virtual path a client's *arg* names, and the one place the path policy
        applies, for every command: a ``--hide`` name anywhere in it is refused as if
        it did not exist (550, ENOENT); an anonymous session gets the drop box's rules
        (``core.dropbox``)."""
        vpath = resolve(self.cwd, arg, self.config.hidden)
        if self.config.anonymous_upload is not None and self.anonymous:
            dropbox.check(self, self._current, vpath)
        return vpath

    @property
    def anonymous(self) -> bool:
        return bool(self.account and self.account.anonymous)

    def is_anonymous_name(self, name: str) -> bool:
        return name.lower() in ANONYMOUS_NAMES

"""From a command line to a running command: parsing the verb, the generic checks,
and running a handler (or hook) that may be a generator.

A handler is a plain function, or a generator function that yields orders
(``core.actions``: ``Call``, ``StartTransfer``, ...) and receives each answer at its
``yield`` (an exception the order failed with is raised there). ``guarded`` turns
whatever a handler raises into the command's error chain, so the reply mapping is
the same whether the failure happened before or after a ``yield``."""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable, Generator
from types import GeneratorType
from typing import TYPE_CHECKING, Any

from ftpd.core import dropbox
from ftpd.core.buffer import MAX_LINE, LineTooLong
from ftpd.core.commands import ARG, NO_ARG, Command, CommandSpec, CommandTable, is_verb
from ftpd.core.errors import FTPError, reply_for_oserror
from ftpd.core.view import SessionView
from ftpd.log import get_logger

if TYPE_CHECKING:
    from ftpd.core.session import Session

log = get_logger("ftpd.session")

Steps = Generator[Any, Any, None]

# OSErrors that are the client's business (a missing file, no permission): answered,
# not logged. Any other errno (EIO, ESTALE, ...) is a fault of the storage: logged once.
_EXPECTED_ERRNOS = frozenset({
    _errno.ENOENT, _errno.EACCES, _errno.EPERM, _errno.EEXIST, _errno.ENOTDIR,
    _errno.EISDIR, _errno.ENOTEMPTY, _errno.EXDEV, _errno.ENAMETOOLONG, _errno.ELOOP,
    _errno.EINVAL, _errno.ENOSPC, _errno.EDQUOT, _errno.EFBIG, _errno.EROFS})


def parse(line: bytes | LineTooLong, table: CommandTable) -> tuple[CommandSpec, Command] | tuple[int, str]:
    """The spec and command for *line*, or the (code, text) refusing it."""
    if isinstance(line, LineTooLong):
        return 500, f"Command line too long (limit {MAX_LINE} bytes)."
    text = line.decode("utf-8", "surrogateescape").lstrip(" ")
    if "\0" in text:
        return 501, "Command contains a NUL byte."
    verb, _, arg = text.partition(" ")
    if not verb:
        return 500, "Empty command."
    if not is_verb(verb):
        return 500, "Syntax error, command unrecognized."
    verb = verb.upper()
    spec = table.commands.get(verb)
    if spec is None:
        return 500, f"Unknown command {verb}."
    cmd = Command(verb, arg)
    if spec.subcommands:  # SITE NAME: that subcommand runs like any verb
        spec = table.subcommand(spec, cmd)
    return spec, cmd


def line_verb(line: bytes | LineTooLong) -> str | None:
    """The verb of a raw line (for deciding whether it may overtake a queue)."""
    if isinstance(line, LineTooLong):
        return None
    return line.lstrip(b" ").split(b" ", 1)[0].upper().decode("ascii", "replace")


def check(s: Session, spec: CommandSpec, cmd: Command) -> bool:
    """The generic checks every command gets: argument rule, login, permission."""
    if spec.arg == ARG and not cmd.arg.strip():
        cmd.add_err(501, f"Syntax error: {cmd.name} needs an argument.")
    elif spec.arg == NO_ARG and cmd.arg.strip():
        cmd.add_err(501, f"Syntax error: {cmd.name} takes no argument.")
    elif spec.login and s.account is None:
        cmd.add_err(530, "Please log in with USER and PASS first.")
    elif spec.perm and s.account is not None and not dropbox.may(s, spec.perm):
        cmd.add_err(550, "Permission denied.")
        cmd.info["refused"] = True
    elif spec.perm:
        cmd.info["perm"] = spec.perm  # the letter the path policy checks (Session.resolve)
    return not cmd.failed


def invoke(fn: Callable[..., Any], s: Session | SessionView, cmd: Command) -> Steps:
    """Run a handler (given the session) or a hook (given its view); a generator one is
    run to its end, its orders passed up."""
    result = fn(s, cmd)
    if type(result) is GeneratorType:
        yield from result


def failed(s: Session | SessionView, cmd: Command, exc: Exception) -> None:
    """What a handler raised, as the command's error chain (and one log line for a fault)."""
    if isinstance(exc, FTPError):
        cmd.add_err(exc.code, exc.text)
    elif isinstance(exc, OSError):
        cmd.add_err(*reply_for_oserror(exc))
        cmd.info["errno"] = exc.errno
        if exc.errno not in _EXPECTED_ERRNOS:
            log.warning("[%s] %s: storage error: %s", s.session_id, cmd.name, exc)
    else:
        log.error("[%s] internal error in %s", s.session_id, cmd.name, exc_info=exc)
        cmd.add_err(451, f"Internal error while processing {cmd.verb}; the session goes on.")


def guarded(fn: Callable[..., Any], s: Session | SessionView, cmd: Command) -> Steps:
    """``invoke`` with every failure turned into the command's error chain."""
    return _guarding(invoke(fn, s, cmd), s, cmd)


def _guarding(steps: Steps, s: Session | SessionView, cmd: Command) -> Steps:
    """*steps* with whatever they raise turned into the command's error chain."""
    try:
        yield from steps
    except Exception as exc:
        failed(s, cmd, exc)


def start(s: Session, spec: CommandSpec, cmd: Command) -> Steps | None:
    """One command, a verb or a SITE subcommand alike: the generic checks, PRE hooks,
    the handler. Run as far as it goes without waiting: None when it is done (the
    generic checks refused it, or a plain handler ran), else the steps to go on with
    (a generator handler, or PRE hooks). Most commands never build a generator."""
    if not check(s, spec, cmd):
        return None
    hooks = s.table.hooks("pre", cmd)
    if hooks:
        return _hooked_steps(s, spec, cmd, hooks)
    try:
        result = spec.handler(s, cmd)
    except Exception as exc:
        failed(s, cmd, exc)
        return None
    return _guarding(result, s, cmd) if type(result) is GeneratorType else None


def _hooked_steps(s: Session, spec: CommandSpec, cmd: Command, hooks: list[Any]) -> Steps:
    """PRE hooks (any error refuses the command), then the handler."""
    view = SessionView(s)
    for hook in hooks:
        yield from guarded(hook, view, cmd)
        if cmd.failed:
            return
    yield from guarded(spec.handler, s, cmd)


def run_post_hooks(s: Session, cmd: Command) -> None:
    """POST (or POST_ERR) hooks, each once. They run on the loop and may not yield (a
    generator hook is an internal error, logged)."""
    hooks = s.table.hooks("post_err" if cmd.failed else "post", cmd)
    if not hooks:
        return
    view = SessionView(s)
    for hook in hooks:
        steps = guarded(hook, view, cmd)
        for _order in steps:
            steps.close()
            log.error("[%s] a POST hook of %s may not wait for anything", s.session_id,
                      cmd.name)
            break

"""The command table: one entry per verb with its argument rule, whether login is
needed, its permission letter, help text and FEAT line. Dispatch does the generic
checks once; HELP, FEAT and the man page read the same table. Modules extend a
copy of it with commands, SITE subcommands and PRE/POST hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ftpd.core.record import Record
from ftpd.core.replies import ResponseChain

if TYPE_CHECKING:
    from ftpd.core.actions import Action
    from ftpd.core.session import Session
    from ftpd.core.view import SessionView

NO_ARG, ARG, OPT_ARG = "none", "required", "optional"
MAX_VERB = 16
_NO_HOOKS: list = []  # shared, never mutated

# A handler returns None, or is a generator function yielding orders (core.actions)
# and receiving their answers (see core.dispatch). A command's handler gets the
# session; a hook, which watches or refuses other commands, a view of it (core.view).
Handler = Callable[["Session", "Command"], Any]
Hook = Callable[["SessionView", "Command"], Any]


def is_verb(name: str) -> bool:
    """A name dispatch can reach: ASCII letters and digits, starting with a letter
    (``XMD5``, ``XSHA256``), at most MAX_VERB long. ASCII is checked first:
    ``str.upper()`` maps some non-ASCII letters to ASCII ("\u017f" -> "S")."""
    return name.isascii() and name[:1].isalpha() and name.isalnum() and len(name) <= MAX_VERB


class Command(Record):
    """One command being executed: its argument and its two response chains. *name* is
    what its hooks are registered under: the verb, or ``"SITE NAME"`` for a SITE
    subcommand (whose *arg* is then the subcommand's argument)."""

    __slots__ = ("verb", "name", "arg", "ok", "err", "replied", "after", "info")

    def __init__(self, verb: str, arg: str) -> None:
        self.verb, self.name, self.arg = verb, verb, arg
        self.ok = ResponseChain()
        self.err = ResponseChain()
        self.replied = False  # the final reply went out before the command ended (AUTH)
        self.after: list[Action] = []  # actions to run after the reply
        self.info: dict[str, Any] = {}  # shared between PRE, main, POST

    def add(self, code: int, text: str) -> None:
        """Add to the success chain (code DUP continues another handler's reply)."""
        self.ok.add(code, text)

    def add_err(self, code: int, text: str) -> None:
        """Add to the error chain: the command has failed."""
        self.err.add(code, text)

    @property
    def failed(self) -> bool:
        return bool(self.err)


class CommandSpec(NamedTuple):
    name: str
    handler: Handler
    arg: str = NO_ARG
    login: bool = True
    perm: str | None = None
    help: str = ""
    feat: str | None = None
    during_transfer: bool = False  # acted on while data flows (ABOR, STAT, QUIT, NOOP)
    secret: bool = False  # the argument is never logged (PASS)
    overtakes: bool = False  # during a transfer, acts at once even before queued lines (ABOR)
    subcommands: bool = False  # the argument's first word names a SITE subcommand (SITE)


class CommandTable:
    """Verbs, SITE subcommands and hooks. ``copy()`` gives a server its own table."""

    def __init__(self) -> None:
        self.commands: dict[str, CommandSpec] = {}
        self.site: dict[str, CommandSpec] = {}
        self.pre: dict[str, list[Hook]] = {}
        self.post: dict[str, list[Hook]] = {}
        self.post_err: dict[str, list[Hook]] = {}

    def command(self, name: str, *, arg: str = NO_ARG, login: bool = True,
                perm: str | None = None, help: str = "", feat: str | None = None,
                during_transfer: bool = False, site: bool = False,
                secret: bool = False, overtakes: bool = False,
                subcommands: bool = False) -> Callable[[Handler], Handler]:
        """Decorator registering a handler for *name* (a SITE subcommand if *site*;
        with *subcommands*, a command whose argument names one: dispatch runs that one
        instead, and the handler only when the argument names none); ValueError if
        *name* is not a verb dispatch could reach (``is_verb``)."""
        if not is_verb(name):
            raise ValueError(f"command name {name[:32]!r}: use ASCII letters and digits, "
                             f"starting with a letter, at most {MAX_VERB}")

        def register(handler: Handler) -> Handler:
            spec = CommandSpec(name.upper(), handler, arg, login, perm, help, feat,
                               during_transfer, secret, overtakes, subcommands)
            (self.site if site else self.commands)[spec.name] = spec
            return handler

        return register

    def add_hook(self, when: str, verb: str, hook: Hook) -> None:
        """Run *hook* before ("pre"), after success ("post") or after failure
        ("post_err") of *verb* (``"*"`` for every verb, ``"SITE NAME"`` for a SITE
        subcommand: those run after the ``"SITE"`` hooks)."""
        table = {"pre": self.pre, "post": self.post, "post_err": self.post_err}[when]
        table.setdefault(" ".join(verb.split()).upper(), []).append(hook)

    def subcommand(self, spec: CommandSpec, cmd: Command) -> CommandSpec:
        """The SITE subcommand *cmd*'s argument names, with *cmd* made that command
        (``name`` "SITE NAME", ``arg`` the rest, ``info["site"]`` NAME); *spec* itself
        when it names none (its handler answers that)."""
        word, _, rest = cmd.arg.strip().partition(" ")
        sub = self.site.get(word.upper())
        if sub is None:
            return spec
        cmd.name, cmd.arg = f"{cmd.verb} {sub.name}", rest
        cmd.info["site"] = sub.name
        return sub

    def hooks(self, when: str, cmd: Command) -> list[Hook]:
        """The hooks to run for *cmd*, each once: the ``"*"`` ones, then its verb's, then
        (a SITE subcommand) its name's, ``"SITE NAME"``."""
        table = self.pre if when == "pre" else self.post if when == "post" else self.post_err
        if not table:  # the common case: nothing to build
            return _NO_HOOKS
        star, own = table.get("*"), table.get(cmd.verb)
        sub = table.get(cmd.name) if cmd.name != cmd.verb else None
        if sub:
            return [*(star or ()), *(own or ()), *sub]
        if star and own:
            return star + own
        return star or own or _NO_HOOKS

    def copy(self) -> CommandTable:
        new = CommandTable()
        new.commands = dict(self.commands)
        new.site = dict(self.site)
        for name in ("pre", "post", "post_err"):
            setattr(new, name, {k: list(v) for k, v in getattr(self, name).items()})
        return new

    def features(self) -> list[str]:
        return sorted({spec.feat for spec in self.commands.values() if spec.feat})


DEFAULT_TABLE = CommandTable()
command = DEFAULT_TABLE.command

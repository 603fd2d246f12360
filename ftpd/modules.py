"""Modules: replace or extend any part (ColoradoFTP's idea, in Python). A module is a
Python module with ``setup(ftpd)``, loaded by name from the config
(``modules = ["mypkg.ftpmod"]``) or from the ``ftpd.modules`` entry-point group. Through
the ``ModuleContext`` it adds commands and SITE subcommands, PRE/POST hooks that add to
the response chains (a PRE hook refuses a command by adding to the error chain), event
listeners, and shares data through the server scope (``ftpd.scope``) and each session's
scope. Hooks get a view of the session (``core.view.SessionView``); commands and SITE
subcommands, like the built-in ones, the session itself (docs/MODULES.md says why)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from ftpd.core.commands import CommandTable, Handler, Hook
from ftpd.log import get_logger

log = get_logger("ftpd.modules")

ENTRY_POINT_GROUP = "ftpd.modules"


class ModuleError(Exception):
    """A configured module cannot be loaded (one line; exit 2)."""


class ModuleContext:
    """What ``setup()`` receives."""

    def __init__(self, table: CommandTable, bus: Any, scope: dict[str, Any]) -> None:
        self.table, self.bus, self.scope = table, bus, scope

    def command(self, name: str, **spec: Any) -> Callable[[Handler], Handler]:
        """Decorator: a new (or replaced) command, ``handler(session, cmd)``. Keywords as
        ``core.commands.command``."""
        return self.table.command(name, **spec)

    def site(self, name: str, **spec: Any) -> Callable[[Handler], Handler]:
        """Decorator: a new ``SITE`` subcommand, ``handler(session, cmd)``."""
        return self.table.command(name, site=True, **spec)

    def pre(self, verb: str, hook: Hook) -> None:
        """Run ``hook(view, cmd)`` before *verb* (``"SITE NAME"`` for a SITE subcommand,
        ``"*"`` for all)."""
        self.table.add_hook("pre", verb, hook)

    def post(self, verb: str, hook: Hook) -> None:
        self.table.add_hook("post", verb, hook)

    def post_err(self, verb: str, hook: Hook) -> None:
        self.table.add_hook("post_err", verb, hook)

    def on(self, event: str, callback: Callable[[Any, Any], object], user_data: Any = None) -> None:
        """Listen on the events bus."""
        self.bus.register(event, callback, user_data)


def _setup_of(obj: Any, name: str) -> Callable[[ModuleContext], object]:
    setup = getattr(obj, "setup", None)
    if callable(setup):
        return setup
    if callable(obj):
        return obj
    raise ModuleError(f"module {name!r} has no setup(ftpd) function")


def _entry_points_declared() -> bool:
    """Cheap pre-check (importlib.metadata costs ~25 ms to import, paid by every
    inetd no-wait start): does any installed distribution declare our group?"""
    needle = f"[{ENTRY_POINT_GROUP}]"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(entry, name, "entry_points.txt")) as f:
                        if needle in f.read():
                            return True
                except OSError:
                    continue
    return False


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, however the exception was worded."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_setup(obj: Any, name: str, what: str, ctx: ModuleContext) -> None:
    setup = _setup_of(obj, name)
    try:
        setup(ctx)
    except Exception as exc:
        raise ModuleError(f"{what} {name!r}: setup() failed: {_one_line(exc)}") from None


def load_modules(names: list[str], ctx: ModuleContext, entry_points: bool = True) -> list[str]:
    """Load configured modules, then entry-point modules; returns what was loaded. Any
    failure, in the import or in ``setup()``, is one ModuleError line."""
    loaded: list[str] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise ModuleError(f"modules: cannot import {name!r}: {_one_line(exc)}") from None
        _run_setup(module, name, "modules:", ctx)
        loaded.append(name)
    if entry_points and _entry_points_declared():
        from importlib.metadata import entry_points as find

        for ep in find(group=ENTRY_POINT_GROUP):
            if ep.value in loaded or ep.name in loaded:
                continue
            try:
                obj = ep.load()
            except Exception as exc:
                raise ModuleError(f"entry point {ep.name!r}: cannot load: "
                                  f"{_one_line(exc)}") from None
            _run_setup(obj, ep.name, "entry point", ctx)
            loaded.append(ep.name)
    for name in loaded:
        log.info("module loaded: %s", name)
    return loaded

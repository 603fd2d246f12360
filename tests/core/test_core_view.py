"""Hooks see a view, not the session (issue 11, point 9), and a SITE subcommand goes
through the same dispatch as every verb: its generic checks, then the ``"*"``, ``"SITE"``
and ``"SITE NAME"`` PRE hooks, the handler, the POST hooks, each exactly once."""

from __future__ import annotations

import pytest
from core_driver import Driver, codes, text

from ftpd.core.commands import Command
from ftpd.core.session import Session
from ftpd.core.sessionconfig import _default_table
from ftpd.core.view import SessionView
from ftpd.modules import ModuleContext

PUBLIC = {"session_id", "peer", "user", "account", "anonymous", "cwd", "type", "rest",
          "scope", "server_scope", "resolve", "ask", "emit", "now", "info"}


@pytest.fixture
def table():
    return _default_table().copy()


def _module(table) -> ModuleContext:
    return ModuleContext(table, bus=None, scope={})


def test_a_modules_pre_hook_gets_a_view_without_the_sessions_insides(table, memfs):
    seen = []

    def look(view, cmd):
        seen.append(view)
        assert view.user == "alice" and view.cwd == "/pub" and view.peer == ("127.0.0.1", 40000)
        assert view.session_id == "TEST" and view.account.username == "alice"
        assert view.resolve("x") == "/pub/x" and view.type == "A" and view.rest == 0
        for private in ("_queue", "_out", "_suspended", "state", "config", "fs", "table",
                        "transfer", "data_mode", "account_set", "reply", "act"):
            assert not hasattr(view, private), private

    _module(table).pre("DELE", look)
    d = Driver(fs=memfs, table=table)
    d.login()
    d.send("CWD pub")
    assert codes(d.send("DELE a.txt")) == [250]
    view = seen[0]
    assert type(view) is SessionView and not isinstance(view, Session)
    assert {n for n in dir(view) if not n.startswith("_")} == PUBLIC
    with pytest.raises(AttributeError):
        view.cwd = "/"  # read-only
    with pytest.raises(AttributeError):
        view.anything = 1  # nothing can be stuck on it
    with pytest.raises(AttributeError):
        view.account.perm = "elradfmwMT"  # an immutable record


def test_a_hook_asks_the_filesystem_by_method_name_or_with_a_function(table, memfs):
    def sizes(fs, *paths):
        return [fs.stat(p).st_size for p in paths]

    def pre(view, cmd):
        st = yield view.ask("stat", view.resolve(cmd.arg))
        both = yield view.ask(sizes, "/hello.txt", "/pub/a.txt")
        view.scope["seen"] = (st.st_size, both)

    table.add_hook("pre", "SIZE", pre)
    table.add_hook("post", "SIZE", lambda view, cmd: cmd.add(0, f"seen {view.scope['seen']}"))
    d = Driver(fs=memfs, table=table)
    d.login()
    d.send("TYPE I")
    r = d.send("SIZE hello.txt")
    assert r[0].lines == ("12", "seen (12, [12, 1])")


def test_a_hook_may_ask_only_for_filesystem_methods_and_after_login(table, memfs, caplog):
    table.add_hook("pre", "MKD", lambda view, cmd: (yield view.ask("__init__")))
    table.add_hook("pre", "SYST", lambda view, cmd: (yield view.ask("stat", "/")))
    d = Driver(fs=memfs, table=table)
    r = d.send("SYST")
    assert codes(r) == [530]  # before login there is no filesystem to ask
    d.login()
    assert codes(d.send("MKD new")) == [451]
    assert "not a FileSystem method" in caplog.text
    assert "new" not in memfs.listdir("/")


def test_module_commands_get_the_session_hooks_the_view(table, memfs):
    got = {}
    mod = _module(table)

    @mod.command("XWHO", login=False)
    def xwho(s, cmd):
        got["command"] = type(s)
        cmd.add(200, "ok")

    @mod.site("XWHO", login=False)
    def site_xwho(s, cmd):
        got["site"] = type(s)
        cmd.add(200, "ok")

    mod.pre("XWHO", lambda view, cmd: got.setdefault("pre", type(view)))
    mod.post("SITE XWHO", lambda view, cmd: got.setdefault("post", type(view)))
    d = Driver(fs=memfs, table=table)
    assert codes(d.send("XWHO")) == [200] and codes(d.send("SITE XWHO")) == [200]
    assert got == {"command": Session, "site": Session, "pre": SessionView,
                   "post": SessionView}


def _record_all(table, seen, verbs=("*", "SITE", "SITE CHMOD")):
    for when in ("pre", "post", "post_err"):
        for verb in verbs:
            table.add_hook(when, verb,
                           lambda v, cmd, w=when, n=verb: seen.append((w, n, cmd.name)))


def test_every_hook_of_a_site_subcommand_runs_exactly_once(table, memfs):
    seen = []
    _record_all(table, seen)
    d = Driver(fs=memfs, table=table)
    d.login()
    seen.clear()
    assert codes(d.send("SITE CHMOD 640 hello.txt")) == [200]
    assert seen == [("pre", "*", "SITE CHMOD"), ("pre", "SITE", "SITE CHMOD"),
                    ("pre", "SITE CHMOD", "SITE CHMOD"), ("post", "*", "SITE CHMOD"),
                    ("post", "SITE", "SITE CHMOD"), ("post", "SITE CHMOD", "SITE CHMOD")]
    seen.clear()
    assert codes(d.send("SITE CHMOD 640 nothere")) == [550]
    assert [w for w, _, _ in seen].count("pre") == 3
    assert seen[3:] == [("post_err", "*", "SITE CHMOD"), ("post_err", "SITE", "SITE CHMOD"),
                        ("post_err", "SITE CHMOD", "SITE CHMOD")]


def test_the_star_hook_runs_once_for_site_chmod_and_once_for_every_other_verb(table, memfs):
    seen = []
    table.add_hook("pre", "*", lambda view, cmd: seen.append(("pre", cmd.name)))
    table.add_hook("post", "*", lambda view, cmd: seen.append(("post", cmd.name)))
    d = Driver(fs=memfs, table=table)
    d.login()
    seen.clear()
    d.send("SITE CHMOD 640 hello.txt")
    d.send("NOOP")
    assert seen == [("pre", "SITE CHMOD"), ("post", "SITE CHMOD"), ("pre", "NOOP"),
                    ("post", "NOOP")]


def test_a_site_subcommand_gets_the_generic_checks_before_any_hook(table, memfs):
    """As for every verb: a subcommand refused by its own checks (login, permission,
    argument) runs no PRE hook, and its POST_ERR hooks run once."""
    seen = []
    _record_all(table, seen)
    d = Driver(fs=memfs, table=table)
    assert codes(d.send("SITE CHMOD 640 hello.txt")) == [530]  # not logged in
    d.login("anonymous", "a@b")  # anonymous may not chmod (no M)
    seen.clear()
    assert codes(d.send("SITE CHMOD 640 hello.txt")) == [550]
    r = d.send("SITE CHMOD")
    assert codes(r) == [501] and text(r[0]) == "Syntax error: SITE CHMOD needs an argument."
    assert [w for w, _, _ in seen] == ["post_err"] * 6


def test_an_unknown_site_subcommand_runs_the_site_hooks_once(table, memfs):
    seen = []
    _record_all(table, seen)
    d = Driver(fs=memfs, table=table)
    d.login()
    seen.clear()
    r = d.send("SITE NOSUCH x")
    assert codes(r) == [500] and "Unknown SITE command NOSUCH" in text(r[0])
    assert seen == [("pre", "*", "SITE"), ("pre", "SITE", "SITE"), ("post_err", "*", "SITE"),
                    ("post_err", "SITE", "SITE")]


def test_a_site_subcommand_may_ask_and_wait_like_any_command(table, memfs):
    @table.command("COUNT", arg="optional", site=True)
    def site_count(s, cmd: Command):
        names = yield s.ask(s.fs.listdir, s.resolve(cmd.arg or "."))
        cmd.add(200, f"{len(names)} entries")

    d = Driver(fs=memfs, table=table)
    d.login()
    assert text(d.send("SITE COUNT pub")[0]) == "4 entries"
    assert codes(d.send("NOOP")) == [200]

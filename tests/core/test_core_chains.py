"""Response chains (ProFTPD's design), the one-reply rule, PRE/POST hooks, modules
extending a copy of the command table, scopes, and Reply.encode's wire format."""

from __future__ import annotations

import pytest
from core_driver import Driver, codes, parse_wire, text

from ftpd.core.commands import ARG, Command
from ftpd.core.replies import DUP, Reply, ResponseChain
from ftpd.core.sessionconfig import _default_table


@pytest.fixture
def table():
    return _default_table().copy()


# -- Reply.encode --------------------------------------------------------------------------
def test_single_line():
    assert Reply.of(200, "OK").encode() == b"200 OK\r\n"
    assert Reply.of(200).encode() == b"200 \r\n"


def test_multi_line_format():
    r = Reply.of(211, "first", "inner", "last")
    assert r.encode() == b"211-first\r\n inner\r\n211 last\r\n"
    assert Reply.of(211, "a", "b").encode() == b"211-a\r\n211 b\r\n"


def test_inner_lines_cannot_look_final():
    r = Reply.of(211, "Status:", "211 not the end", "211-nor this", "123 digits", "End")
    wire = r.encode()
    assert parse_wire(wire) == (211, ["211-Status:", " 211 not the end", " 211-nor this",
                                      " 123 digits", "211 End"])
    assert wire.count(b"\r\n211 ") == 1


def test_line_breaks_inside_text_are_neutralised():
    wire = Reply.of(550, "evil\r\n200 OK", "x\ry\nz\0").encode()
    assert wire == b"550-evil  200 OK\r\n550 x y z \r\n"
    parse_wire(wire)


def test_surrogates_round_trip():
    assert Reply.of(550, "caf\udce9").encode() == b"550 caf\xe9\r\n"


def test_bad_code_rejected():
    with pytest.raises(ValueError):
        Reply.of(99, "x")
    with pytest.raises(ValueError):
        Reply.of(600, "x")


# -- ResponseChain ----------------------------------------------------------------------------
def test_chain_code_is_first_code_added():
    chain = ResponseChain()
    assert not chain and chain.to_reply() is None
    chain.add(DUP, "orphan continuation")
    assert chain.to_reply() is None  # only DUPs: no code to send
    chain.add(213, "b")
    assert chain.to_reply() == Reply(213, ("orphan continuation", "b"))


def test_proftpd_dup_example(table):
    """seeds/proftpd-response-handlers.txt: three modules, one multi-line reply."""

    @table.command("XFOO", login=False)
    def module_a(s, cmd):
        cmd.add(200, "Command successfully completed")

    table.add_hook("post", "XFOO",
                   lambda s, cmd: cmd.add(DUP, f"Statistics for command '{cmd.verb}': none"))
    table.add_hook("post", "XFOO", lambda s, cmd: cmd.add(DUP, "XFOO post_cmd handler ran"))
    d = Driver(table=table)
    r = d.send("XFOO")
    assert len(r) == 1
    assert r[0].encode() == (b"200-Command successfully completed\r\n"
                             b" Statistics for command 'XFOO': none\r\n"
                             b"200 XFOO post_cmd handler ran\r\n")


def test_only_the_matching_chain_is_sent(table):
    @table.command("XBOTH", login=False)
    def both(s, cmd):
        cmd.add(200, "would be success")
        cmd.add_err(550, "but it failed")

    d = Driver(table=table)
    r = d.send("XBOTH")
    assert codes(r) == [550] and r[0].lines == ("but it failed",)


def test_one_final_reply_per_command(alice):
    lines = ["NOOP", "SYST", "PWD", "CWD pub", "CDUP", "FEAT", "HELP", "STAT", "TYPE I",
             "SIZE bin.dat", "MDTM hello.txt", "MKD d", "RMD d", "RNFR hello.txt", "RNTO h",
             "RNFR h", "RNTO hello.txt", "PASV", "RETR hello.txt", "EPSV", "LIST", "PASV",
             "NLST", "EPSV", "MLSD", "MLST", "PASV", "STOR up", "REST 2", "PASV", "RETR up",
             "SITE HELP", "OPTS UTF8 ON", "ALLO 5", "MODE S", "STRU F", "FROB", "CWD",
             "ABOR", "DELE up", "REIN", "USER anonymous", "PASS x", "QUIT"]
    alice.upload = b"uploaded data"
    start = len(alice.replies)
    for line in lines:
        alice.send(line)
    replies = alice.replies[start:]
    finals = [r for r in replies if r.code >= 200]
    assert len(finals) == len(lines)
    prelim = [r for r in replies if r.code < 200]
    assert len(prelim) == 6  # the 150s


def test_pre_hook_refuses_command(table, memfs):
    ran = []

    def no_deletes(s, cmd):
        if cmd.arg.endswith(".txt"):
            cmd.add_err(550, "Text files are protected here.")

    table.add_hook("pre", "DELE", no_deletes)
    table.add_hook("post", "DELE", lambda s, cmd: ran.append(("post", cmd.arg)))
    table.add_hook("post_err", "DELE", lambda s, cmd: ran.append(("post_err", cmd.arg)))
    d = Driver(fs=memfs, table=table)
    d.login()
    r = d.send("DELE hello.txt")
    assert codes(r) == [550] and r[0].lines == ("Text files are protected here.",)
    assert "hello.txt" in memfs.listdir("/")  # the command did not run
    assert codes(d.send("DELE bin.dat")) == [250]
    assert ran == [("post_err", "hello.txt"), ("post", "bin.dat")]


def test_post_hooks_see_success_and_failure(table, memfs):
    seen = []
    table.add_hook("post", "*", lambda s, cmd: seen.append(("ok", cmd.verb, cmd.ok.to_reply().code)))
    table.add_hook("post_err", "*",
                   lambda s, cmd: seen.append(("err", cmd.verb, cmd.err.to_reply().code)))
    d = Driver(fs=memfs, table=table)
    d.login()
    d.send("CWD pub")
    d.send("CWD nothere")
    d.send("TYPE I")
    d.dialogue(["PASV", "RETR a.txt"])
    assert seen[-5:] == [("ok", "CWD", 250), ("err", "CWD", 550), ("ok", "TYPE", 200),
                         ("ok", "PASV", 227), ("ok", "RETR", 226)]


def test_post_hook_runs_after_deferred_reply(table, memfs):
    """A POST hook of a command whose reply comes later (transfer) runs once, at the end."""
    calls = []
    table.add_hook("post", "RETR", lambda s, cmd: calls.append(cmd.ok.to_reply().code))
    table.add_hook("post", "RETR", lambda s, cmd: cmd.add(DUP, "have a nice day"))
    d = Driver(fs=memfs, table=table)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.dialogue(["PASV", "RETR hello.txt"])
    assert calls == []
    d.finish()
    assert calls == [226]
    assert d.replies[-1].lines == ("Transfer complete.", "have a nice day")


def test_pre_hook_exception_is_451(table):
    def broken(s, cmd):
        raise KeyError("oops")

    table.add_hook("pre", "NOOP", broken)
    d = Driver(table=table)
    assert codes(d.send("NOOP")) == [451]
    assert codes(d.send("SYST")) == [215]


def test_module_adds_command_and_site_subcommand(table):
    @table.command("XHELLO", arg=ARG, login=False, help="XHELLO <sp> name", feat="XHELLO")
    def xhello(s, cmd: Command):
        cmd.add(200, f"Hello, {cmd.arg}.")

    @table.command("UPTIME", login=False, help="SITE UPTIME", site=True)
    def uptime(s, cmd: Command):
        cmd.add(200, f"Up {s.now() - s.started:.0f} seconds.")

    d = Driver(table=table)
    assert d.send("XHELLO world")[0].lines == ("Hello, world.",)
    assert codes(d.send("XHELLO")) == [501]  # the generic argument rule applies
    assert codes(d.send("SITE UPTIME")) == [200]
    assert "SITE UPTIME" in text(d.send("SITE HELP")[0])
    assert "XHELLO" in text(d.send("HELP")[0])
    assert "XHELLO" in d.send("FEAT")[0].lines
    # other servers' tables are untouched
    plain = Driver()
    assert codes(plain.send("XHELLO world")) == [500]
    assert codes(plain.send("SITE UPTIME")) == [500]


def test_site_subcommand_hooks(table, memfs):
    table.add_hook("pre", "SITE CHMOD",
                   lambda s, cmd: cmd.add_err(550, "chmod is disabled") if "777" in cmd.arg
                   else None)
    d = Driver(fs=memfs, table=table)
    d.login()
    assert codes(d.send("SITE CHMOD 777 hello.txt")) == [550]
    assert codes(d.send("SITE CHMOD 640 hello.txt")) == [200]


def test_verbs_with_digits_are_registered_and_dispatched(table, memfs):
    """Letters and digits, starting with a letter (XMD5, XSHA256, as other servers)."""
    for verb in ("XMD5", "XSHA256", "xcrc32"):
        table.command(verb, arg=ARG, login=False)(
            lambda s, cmd: cmd.add(251, f"{cmd.verb} of {cmd.arg}"))
    d = Driver(fs=memfs, table=table)
    assert d.send("XMD5 hello.txt")[0].lines == ("XMD5 of hello.txt",)
    assert d.send("xsha256 hello.txt")[0].lines == ("XSHA256 of hello.txt",)
    assert codes(d.send("XCRC32 f")) == [251]
    for bad in ("5XMD", "X-MD5", "XMD5\u0661", "X" * 17):
        assert codes(d.send(f"{bad} hello.txt")) == [500], bad


@pytest.mark.parametrize("name", ["5XMD", "X-MD5", "", "X MD5", "XMD\u0665", "X" * 17])
def test_a_verb_that_cannot_be_dispatched_cannot_be_registered(table, name):
    with pytest.raises(ValueError, match="letters and digits"):
        table.command(name)(lambda s, cmd: None)


def test_star_pre_hook_runs_once_for_a_site_command(table, memfs):
    seen = []
    table.add_hook("pre", "*", lambda s, cmd: seen.append(("*", cmd.verb, cmd.arg)))
    table.add_hook("pre", "SITE", lambda s, cmd: seen.append(("SITE", cmd.verb, cmd.arg)))
    table.add_hook("pre", "SITE CHMOD",
                   lambda s, cmd: seen.append(("SITE CHMOD", cmd.verb, cmd.arg)))
    d = Driver(fs=memfs, table=table)
    d.login()
    seen.clear()
    assert codes(d.send("SITE CHMOD 640 hello.txt")) == [200]
    # one dispatch: every hook, each once, sees the same command, the subcommand's
    assert seen == [("*", "SITE", "640 hello.txt"), ("SITE", "SITE", "640 hello.txt"),
                    ("SITE CHMOD", "SITE", "640 hello.txt")]


def test_post_hooks_for_a_site_subcommand_run(table, memfs):
    seen = []
    for when in ("post", "post_err"):
        for verb in ("*", "SITE", "SITE CHMOD", "SITE HELP"):
            table.add_hook(when, verb, lambda s, cmd, w=when, v=verb: seen.append((w, v)))
    table.add_hook("post", "SITE CHMOD", lambda s, cmd: cmd.add(DUP, "mode noted"))
    d = Driver(fs=memfs, table=table)
    d.login()
    seen.clear()
    r = d.send("SITE CHMOD 640 hello.txt")
    assert r[0].lines == ("SITE CHMOD command successful.", "mode noted")
    assert seen == [("post", "*"), ("post", "SITE"), ("post", "SITE CHMOD")]
    seen.clear()
    assert codes(d.send("SITE CHMOD 640 nothere")) == [550]
    assert seen == [("post_err", "*"), ("post_err", "SITE"), ("post_err", "SITE CHMOD")]
    seen.clear()
    assert codes(d.send("SITE NOSUCH")) == [500]  # no subcommand: the SITE hooks only
    assert seen == [("post_err", "*"), ("post_err", "SITE")]


def test_site_subcommand_pre_hook_failure_is_an_error_reply(table, memfs):
    def broken(s, cmd):
        raise KeyError("oops")

    table.add_hook("pre", "SITE CHMOD", broken)
    d = Driver(fs=memfs, table=table)
    d.login()
    assert codes(d.send("SITE CHMOD 640 hello.txt")) == [451]
    assert codes(d.send("NOOP")) == [200]


def test_module_overrides_a_builtin(table):
    table.command("SYST", login=False)(lambda s, cmd: cmd.add(215, "UNIX Type: L8 (custom)"))
    assert Driver(table=table).send("SYST")[0].lines == ("UNIX Type: L8 (custom)",)
    assert Driver().send("SYST")[0].lines == ("UNIX Type: L8",)


def test_scopes_shared_between_hooks_and_sessions(table):
    def count(view, cmd):
        view.server_scope["noops"] = view.server_scope.get("noops", 0) + 1
        view.scope["noops"] = view.scope.get("noops", 0) + 1
        cmd.info["counted"] = True

    table.add_hook("pre", "NOOP", count)
    table.add_hook("post", "NOOP",
                   lambda view, cmd: cmd.add(DUP, f"session {view.scope['noops']}, server "
                                                  f"{view.server_scope['noops']}")
                   if cmd.info.get("counted") else None)
    from core_driver import shared_config

    from ftpd.fs.memory import MemoryFS

    cfg = shared_config(MemoryFS(), Driver().clock, table=table)
    a, b = Driver(config=cfg), Driver(config=cfg)
    a.send("NOOP")
    a.send("NOOP")
    r = b.send("NOOP")
    assert r[0].lines[-1] == "session 1, server 3"


def test_events_follow_the_reply(alice):
    from ftpd.core import actions as A

    start = len(alice.log)
    alice.send("MKD evdir")
    out = alice.log[start:]
    assert isinstance(out[0], A.Call)  # the mkdir, asked of the worker pool
    out = out[1:]
    assert isinstance(out[0], Reply) and out[0].code == 257
    assert isinstance(out[1], A.Emit) and out[1].name == "fs.mkdir"


def test_hook_event_emitted_from_pre_hook_follows_reply(table):
    from ftpd.core import actions as A

    table.add_hook("pre", "NOOP", lambda s, cmd: s.emit("mod.noop", {"x": 1}))
    d = Driver(table=table)
    start = len(d.log)
    d.send("NOOP")
    out = d.log[start:]
    assert [type(x) for x in out] == [Reply, A.Emit]
    assert out[1].name == "mod.noop"

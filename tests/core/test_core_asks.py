"""Commands that ask the transport and wait: a generator handler or PRE hook, what a
session does with an idle timeout or a server stop while a command waits, and the
orders a handler may not yield."""

from __future__ import annotations

import logging

import pytest
from core_driver import Driver, codes, text

from ftpd.core import actions as A
from ftpd.core.sessionconfig import _default_table
from ftpd.core.states import State


@pytest.fixture
def table():
    return _default_table().copy()


def test_a_generator_pre_hook_asks_and_refuses(table, memfs, clock):
    def cap(view, cmd):
        names = yield view.ask("listdir", "/pub")
        if len(names) >= 4:
            cmd.add_err(552, "/pub is full.")

    table.add_hook("pre", "STOR", cap)
    d = Driver(fs=memfs, table=table, clock=clock)
    d.login()
    d.upload = b"x"
    assert codes(d.dialogue(["PASV", "STOR pub/new"])) == [227, 552]
    assert codes(d.dialogue(["PASV", "STOR new"])) == [227, 552]  # /pub holds 4 still
    assert "new" not in memfs.listdir("/")


def test_a_module_command_that_asks_gets_the_answer(table, memfs, clock):
    @table.command("XCOUNT", arg="optional")
    def xcount(s, cmd):
        names = yield s.ask(s.fs.listdir, s.cwd)
        cmd.add(211, f"{len(names)} entries")

    d = Driver(fs=memfs, table=table, clock=clock)
    d.login()
    d.send("CWD pub")
    assert text(d.send("XCOUNT")[0]) == "4 entries"


def test_an_idle_timeout_while_a_call_is_under_way_closes_and_drops_its_answer(alice):
    alice.hold_calls = True
    alice.send("SIZE hello.txt")
    assert alice.session.state is State.WAITING
    alice.process(alice.session.timeout())
    assert codes(alice.replies[-1:]) == [421] and alice.session.closed
    before = len(alice.log)
    alice.release()
    assert alice.log[before:] == []


def test_a_server_stop_waits_for_a_transfers_cleanup_then_says_421(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR hello.txt"])
    alice.hold_calls = True
    alice.finish()  # the transfer is done; closing its file is under way
    assert alice.session.state is State.WAITING
    assert alice.session.shutdown() == []  # not now: the 226 is still to come
    alice.release()
    assert codes(alice.replies[-2:]) == [226, 421]


def test_a_handler_yielding_something_else_is_an_internal_error(table, memfs, clock, caplog):
    @table.command("XODD", login=False)
    def odd(s, cmd):
        yield "not an order"
        cmd.add(200, "never")

    d = Driver(fs=memfs, table=table, clock=clock)
    caplog.set_level(logging.ERROR, logger="ftpd")
    assert codes(d.send("XODD")) == [451]
    assert len([r for r in caplog.records if "XODD" in r.getMessage()]) == 1
    assert codes(d.send("NOOP")) == [200]


def test_a_command_that_asks_during_a_transfer_is_refused_and_the_transfer_goes_on(
        table, memfs, clock):
    @table.command("XPEEK", during_transfer=True)
    def peek(s, cmd):
        st = yield s.ask(s.fs.stat, "/hello.txt")
        cmd.add(200, str(st.st_size))

    d = Driver(fs=memfs, table=table, clock=clock)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.dialogue(["PASV", "RETR hello.txt"])
    assert codes(d.send("XPEEK")) == [451]
    assert d.session.state is State.TRANSFER
    d.finish()
    assert codes(d.replies[-1:]) == [226] and d.downloads[-1] == b"hello world\n"
    assert codes(d.send("XPEEK")) == [200]  # outside a transfer it may wait


def test_every_order_a_command_waits_for_is_carried_out_once(alice):
    alice.send("TYPE I")
    start = len(alice.log)
    alice.retr("hello.txt")
    asks = [type(x).__name__ for x in alice.log[start:] if isinstance(x, A.Ask)]
    assert asks == ["ListenPassive", "Call", "Call", "StartTransfer", "Call"]

"""Bad input never kills a session: each gets a 5xx naming the problem and the
session goes on, until too many bad commands in a row end it with 421."""

from __future__ import annotations

from core_driver import codes, text

from ftpd.core import actions as A
from ftpd.core.commands import NO_ARG


def test_line_too_long(alice):
    r = alice.raw(b"NOOP " + b"x" * 3000 + b"\r\nNOOP\r\n")
    assert codes(r) == [500, 200]
    assert "too long" in text(r[0])
    assert alice.closed is None


def test_line_too_long_fed_in_pieces(alice):
    for _ in range(10):
        assert alice.raw(b"y" * 1000) == []
    r = alice.raw(b"\r\nPWD\r\n")
    assert codes(r) == [500, 257]


def test_line_at_the_limit_is_accepted(alice):
    alice.send("MKD " + "d" * 200)
    arg = "/".join(["d" * 200] * 10)  # 2010 bytes of argument, within 2048
    line = f"CWD {arg[:2040]}"
    assert len(line) <= 2046
    assert alice.send(line)[0].code in (250, 550)


def test_a_2048_byte_line_is_accepted_and_2049_is_not(alice):
    alice.send("MKD " + "d" * 200)
    arg = "/".join(["d" * 200] * 10) + "/" + "e" * 50
    line = f"CWD {arg}"[:2048]
    assert len(line) == 2048
    assert codes(alice.send(line)) == [550]  # no such directory, but the line was read
    assert codes(alice.send(line + "e")) == [500]
    assert "too long" in text(alice.replies[-1])


def test_nul_byte(alice):
    assert codes(alice.raw(b"CWD pub\x00x\r\n")) == [501]
    assert codes(alice.raw(b"NOOP\x00\r\n")) == [501]
    r = alice.raw(b"\x00\r\n")
    assert codes(r) == [501] and "NUL" in text(r[0])
    assert alice.session.cwd == "/"
    assert codes(alice.send("NOOP")) == [200]


def test_unknown_verb(ftp):
    r = ftp.send("FROB x")
    assert codes(r) == [500] and "FROB" in text(r[0])


def test_non_ascii_verb(ftp):
    assert codes(ftp.raw(b"N\xc3\x96OP\r\n")) == [500]
    assert codes(ftp.raw(b"\xff\xfeNOOP\r\n")) == [500]
    assert codes(ftp.raw(b"NO\xe9P\r\n")) == [500]


def test_non_ascii_verb_that_uppercases_to_a_known_one(ftp):
    # "\u017f" (long s) upper-cases to "S", "\ufb06" (st ligature) to "ST": a verb that
    # is not ASCII is refused, whatever str.upper() makes of it
    assert codes(ftp.send("\u017fYST")) == [500]
    assert codes(ftp.send("\ufb06at")) == [500]
    ftp.login()
    ftp.send("PASV")
    assert codes(ftp.send("\ufb06or x")) == [500]
    assert "x" not in ftp.fs.listdir("/")


def test_empty_line(ftp):
    assert codes(ftp.raw(b"\r\n")) == [500]
    assert codes(ftp.raw(b"   \r\n")) == [500]


def test_lowercase_and_leading_spaces(ftp):
    assert codes(ftp.send("noop")) == [200]
    assert codes(ftp.send("  NoOp")) == [200]


def test_bare_lf(ftp):
    assert codes(ftp.raw(b"NOOP\nSYST\n")) == [200, 215]


def test_missing_argument(make):
    alice = make(max_bad_commands=100)
    alice.login()
    for verb in ["USER", "CWD", "RETR", "STOR", "DELE", "MKD", "RMD", "RNFR", "RNTO", "TYPE",
                 "MODE", "STRU", "PORT", "EPRT", "REST", "SIZE", "MDTM", "MFMT", "SITE",
                 "OPTS", "ACCT", "SMNT", "ALLO", "APPE"]:
        r = alice.send(verb)
        assert codes(r) == [501], verb
        assert verb in text(r[0])


def test_argument_to_no_argument_command(make):
    alice = make(max_bad_commands=100)
    alice.login()
    no_arg = [n for n, spec in alice.session.table.commands.items() if spec.arg == NO_ARG]
    assert {"PWD", "CDUP", "NOOP", "SYST", "QUIT", "PASV", "FEAT", "ABOR", "REIN"} <= set(
        no_arg)
    for verb in no_arg:
        assert codes(alice.send(f"{verb} extra")) == [501], verb
    assert alice.closed is None


def test_too_many_bad_commands(make):
    d = make(max_bad_commands=5)
    for _ in range(4):
        assert codes(d.send("FROB")) == [500]
    r = d.send("FROB")
    assert codes(r) == [500, 421]
    assert d.closed is not None and d.closed.reason == "ERROR"
    assert isinstance(d.log[-1], A.Close)
    assert d.send("NOOP") == []


def test_bad_commands_must_be_consecutive(make):
    d = make(max_bad_commands=3)
    for _ in range(5):
        d.dialogue(["FROB", "FROB", "NOOP"])
    assert d.closed is None
    assert codes(d.dialogue(["FROB", "PWD x", "\u017fYST"]))[-1] == 421


def test_mixed_kinds_of_bad_input_count(make):
    d = make(max_bad_commands=4)
    r = d.raw(b"FROB\r\n" + b"x" * 3000 + b"\r\nNOOP\x00\r\nNOOP extra\r\nNOOP\r\n")
    assert codes(r) == [500, 500, 501, 501, 421]
    assert d.closed is not None


def test_default_limit_is_20(ftp):
    for _ in range(19):
        ftp.send("FROB")
    assert ftp.closed is None
    assert codes(ftp.send("FROB")) == [500, 421]


def test_exception_in_handler_is_451_and_session_goes_on(make, caplog):
    from ftpd.core.sessionconfig import SessionConfig, _default_table

    table = _default_table().copy()

    @table.command("XBUG", login=False, help="XBUG (raises)")
    def xbug(s, cmd):
        cmd.add(200, "about to fail")
        raise RuntimeError("boom")

    d = make(table=table)
    r = d.send("XBUG")
    assert codes(r) == [451]
    assert "XBUG" in text(r[0])
    assert "boom" in caplog.text  # logged as a bug
    assert codes(d.send("NOOP")) == [200]
    assert d.closed is None
    # the default table is untouched
    assert "XBUG" not in SessionConfig().table.commands


def test_handler_that_adds_nothing_is_451(make):
    from ftpd.core.sessionconfig import _default_table

    table = _default_table().copy()
    table.command("XNIL", login=False)(lambda s, cmd: None)
    d = make(table=table)
    r = d.send("XNIL")
    assert codes(r) == [451]
    assert codes(d.send("NOOP")) == [200]


def test_pipelined_flood_is_bounded(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    r = alice.raw(b"PWD\r\n" * 100)
    assert codes(r) == [421]
    assert alice.closed is not None


def test_non_utf8_argument_is_kept_byte_for_byte(alice, memfs):
    alice.upload = b"latin-1 name"
    alice.dialogue([b"PASV", b"STOR caf\xe9"])
    assert "caf\udce9" in memfs.listdir("/")
    assert codes(alice.send(b"SIZE caf\xe9")) == [213]
    out = alice.listing("NLST")
    assert "caf\udce9\r\n" in out
    assert alice.downloads[-1].count(b"caf\xe9\r\n") == 1
    r = alice.send(b"MLST caf\xe9")
    assert r[0].encode().count(b"caf\xe9") == 2  # in "Listing ..." and in the fact line


def test_module_reply_code_out_of_range_is_451_not_a_crash(make):
    from ftpd.core.sessionconfig import _default_table

    table = _default_table().copy()

    @table.command("XBAD", arg=NO_ARG, login=False)
    def xbad(session, cmd):
        cmd.add(999, "not a reply code")

    driver = make(table=table)
    assert codes(driver.raw(b"XBAD\r\n")) == [451]
    assert codes(driver.raw(b"NOOP\r\n")) == [200]

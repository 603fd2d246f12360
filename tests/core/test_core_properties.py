"""Property tests: whatever bytes a client sends, the session answers only with
well-formed replies and never raises (nor hits an internal error); whatever path
string a client gives, ``paths.resolve`` yields a normalised virtual path."""

from __future__ import annotations

import pytest
from core_driver import Driver, parse_wire
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftpd.core.errors import FTPError
from ftpd.core.paths import resolve
from ftpd.fs.memory import MemoryFS

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

VERBS = ["USER", "PASS", "ACCT", "CWD", "XCWD", "CDUP", "SMNT", "REIN", "QUIT", "PORT", "PASV",
         "TYPE", "STRU", "MODE", "RETR", "STOR", "STOU", "APPE", "ALLO", "REST", "RNFR", "RNTO",
         "ABOR", "DELE", "RMD", "MKD", "PWD", "LIST", "NLST", "SITE", "SYST", "STAT", "HELP",
         "NOOP", "FEAT", "OPTS", "EPRT", "EPSV", "SIZE", "MDTM", "MLST", "MLSD", "MFMT",
         "XMKD", "XRMD", "XPWD", "XCUP", "SITE CHMOD", "SITE SYMLINK", "SITE HELP",
         "OPTS MLST", "OPTS UTF8", "EPSV ALL", "TYPE L", "FROB"]

_arg_text = st.lists(st.sampled_from(
    list("abc/.*?-|,0123456789 \"'\\") + ["..", "\udce9", "\u017f", "é", "\x00", "\r",
                                           "127,0,0,1,200,1", "|1|127.0.0.1|51000|", "a.txt",
                                           "20200101000000", "644"]),
    max_size=8).map("".join)


@st.composite
def command_lines(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        verb = draw(st.sampled_from(VERBS))
        if draw(st.booleans()):
            verb = verb.lower()
        arg = draw(_arg_text)
        line = f"{verb} {arg}" if arg or draw(st.booleans()) else verb
        lines.append(line.encode("utf-8", "surrogateescape"))
    return b"\r\n".join(lines) + draw(st.sampled_from([b"\r\n", b"\n", b""]))


def _fs() -> MemoryFS:
    fs = MemoryFS({"/a.txt": b"hello\nworld\n", "/d/b.bin": b"\x00\xff" * 10})
    fs.mkdir("/e")
    return fs


def _check(d: Driver) -> None:
    for reply in d.replies:
        assert 100 <= reply.code <= 599
        wire = reply.encode()
        code, _ = parse_wire(wire)
        assert code == reply.code
        assert not any("Internal error" in line for line in reply.lines), reply


def _session(logged_in: bool) -> Driver:
    d = Driver(fs=_fs(), writable=True, max_bad_commands=1000)
    d.upload = b"up\r\nloaded\r"
    if logged_in:
        d.login()
    return d


def _run(d: Driver, data: bytes, step: int | None) -> None:
    if step:
        for i in range(0, len(data), step):
            d.raw(data[i:i + step])
    else:
        d.raw(data)
    d.process(d.session.connection_lost())
    _check(d)


@pytest.mark.parametrize("logged_in", [False, True])
@SETTINGS
@given(data=st.binary(max_size=400), step=st.sampled_from([None, 1, 7]))
def test_arbitrary_bytes_give_well_formed_replies(logged_in, data, step):
    _run(_session(logged_in), data, step)


@pytest.mark.parametrize("logged_in", [False, True])
@SETTINGS
@given(data=command_lines(), step=st.sampled_from([None, 3]))
def test_arbitrary_commands_give_well_formed_replies(logged_in, data, step):
    _run(_session(logged_in), data, step)


@SETTINGS
@given(text=st.text(max_size=200))
def test_reply_encode_is_always_well_formed(text):
    from ftpd.core.replies import Reply

    parse_wire(Reply.of(250, text).encode())
    parse_wire(Reply.of(211, text, text, text).encode())
    parse_wire(Reply.of(211, "x", text).encode())


_paths = st.lists(st.sampled_from(["", ".", "..", "...", "a", "b c", "\udce9", "*", "~"]),
                  max_size=12).map("/".join)


@SETTINGS
@given(cwd=_paths | st.text(max_size=40), arg=_paths | st.text(max_size=60))
def test_resolve_always_normalised(cwd, arg):
    try:
        base = resolve("/", cwd)
    except FTPError:
        assert "\0" in cwd
        return
    try:
        path = resolve(base, arg)
    except FTPError as exc:
        assert "\0" in arg and exc.code == 501
        return
    assert "\0" not in arg
    assert path.startswith("/")
    parts = path.split("/")[1:]
    if path != "/":
        assert all(p not in ("", ".", "..") for p in parts), path
    assert resolve("/", path) == path  # idempotent
    assert resolve(base, path) == path  # absolute paths ignore the cwd

"""NcFTPd framing: encode byte for byte per type, the EVENTS.md example, limits, decode."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpd.core import events as core
from ftpd.events import ncftpd
from ftpd.events.ncftpd import MalformedMessage, decode, encode, shorten_path

from .conftest import ALICE, ANON, upload

# EVENTS.md, with each "\n" written out as a newline byte.
EXAMPLE = (b"STR\n102\nS\n1764079260\nalice\n\n192.0.2.10\naSW2YAAqAAEA\n/incoming/report.pdf\n"
           b"1048576\n2.150\n476.279\nOK\nI\n0\n1048576\n")
T = 1764079260.25
COMMON = b"1764079260\nalice\n\n192.0.2.10\naSW2YAAqAAEA\n"


def body_of(frame: bytes) -> bytes:
    assert frame[:4] == b"STR\n" and frame[7:8] == b"\n"
    body = frame[8:]
    assert int(frame[4:7]) == len(body) <= 999
    return body


def test_the_example_body_is_102_bytes():
    body = EXAMPLE[8:]
    count = sum(len(token) + 1 for token in body[:-1].split(b"\n"))
    assert count == len(body) == 102
    assert EXAMPLE[:8] == b"STR\n102\n"


def test_encode_reproduces_the_example_byte_for_byte():
    assert encode("fs.upload", upload()) == EXAMPLE


@pytest.mark.parametrize("name, event, expected", [
    ("fs.download",
     core.TransferEvent(ANON, 1764079300.9, "download", "/pub/README", 512, 0.004, "OK", "A",
                        0, 512),
     b"STR\n108\nR\n1764079300\nanonymous\nguest@example.org\n198.51.100.7\naSW2YAAqAAEB\n"
     b"/pub/README\n512\n0.004\n125.000\nOK\nA\n0\n512\n"),
    ("fs.listing", core.ListingEvent(ALICE, T, "/pub", "OK", "*.txt", True),
     b"STR\n 68\nT\n" + COMMON + b"/pub\nOK\n*.txt\nRECURSIVE\n"),
    ("fs.listing", core.ListingEvent(ALICE, T, "/pub", "NOENT"),
     b"STR\n 57\nT\n" + COMMON + b"/pub\nNOENT\n\n\n"),
    ("fs.delete", core.PathEvent(ALICE, T, "/tmp/x", "file"),
     b"STR\n 56\nD\n" + COMMON + b"/tmp/x\nfile\n"),
    ("fs.delete", core.PathEvent(ALICE, T, "/tmp/d", "dir"),
     b"STR\n 55\nD\n" + COMMON + b"/tmp/d\ndir\n"),
    ("fs.rmdir", core.PathEvent(ALICE, T, "/tmp/d"),
     b"STR\n 55\nD\n" + COMMON + b"/tmp/d\ndir\n"),
    ("fs.mkdir", core.PathEvent(ALICE, T, "/new", "dir"),
     b"STR\n 49\nM\n" + COMMON + b"/new\n"),
    ("fs.rename", core.RenameEvent(ALICE, T, "/a", "/b"),
     b"STR\n 50\nN\n" + COMMON + b"/a\n/b\n"),
    ("fs.symlink", core.SymlinkEvent(ALICE, T, "../target", "/link"),
     b"STR\n 60\nL\n" + COMMON + b"../target\n/link\n"),
    ("fs.chmod", core.ChmodEvent(ALICE, T, "/f", 0o644),
     b"STR\n 52\nC\n" + COMMON + b"/f\n0644\n"),
    ("fs.chmod", core.ChmodEvent(ALICE, T, "/f", 0o4755),
     b"STR\n 52\nC\n" + COMMON + b"/f\n4755\n"),
    ("session.login", core.LoginEvent(ALICE, T),
     b"STR\n 44\nI\n" + COMMON),
    ("session.logout", core.LogoutEvent(ALICE, T, 3601.7, 2, 1024, 1, 10, "QUIT"),
     b"STR\n 66\nO\n" + COMMON + b"3601\n2\n1024\n1\n10\nQUIT\n"),
])
def test_encode_each_type_byte_for_byte(name, event, expected):
    assert encode(name, event) == expected
    body_of(expected)


@pytest.mark.parametrize("name, event", [
    ("core.startup", core.ServerEvent(T)),
    ("session.connect", core.ConnectEvent(ALICE, T)),
    ("session.login-failed", core.LoginFailedEvent(ALICE, T, "bob", 2)),
    ("transfer.abort", core.AbortEvent(ALICE, T, "/x", "RETR")),
    ("mod_foo.bar", None),
])
def test_events_without_an_ncftpd_type_encode_to_none(name, event):
    assert encode(name, event) is None


def test_rate_is_zero_for_a_zero_duration():
    tokens = body_of(encode("fs.upload", upload(duration=0.0))).split(b"\n")
    assert tokens[8:10] == [b"0.000", b"0.000"]


def test_only_anonymous_users_have_an_email_and_they_are_named_anonymous():
    real = core.SessionInfo("s" * 12, "192.0.2.1", "bob", "leaked@example.org", False)
    assert body_of(encode("session.login", core.LoginEvent(real, T))).split(b"\n")[2:4] == [
        b"bob", b""]
    ftp = core.SessionInfo("s" * 12, "192.0.2.1", "ftp", "me@example.org", True)
    assert body_of(encode("session.login", core.LoginEvent(ftp, T))).split(b"\n")[2:4] == [
        b"anonymous", b"me@example.org"]


def test_newlines_carriage_returns_and_nuls_become_question_marks():
    frame = encode("fs.mkdir", core.PathEvent(ALICE, T, "/a\nb\rc\0d", "dir"))
    assert body_of(frame).split(b"\n")[6] == b"/a?b?c?d"
    assert decode(frame).path == "/a?b?c?d"


def test_empty_tokens_are_legal():
    info = core.SessionInfo("", "", "")
    frame = encode("session.login", core.LoginEvent(info, 0))
    assert frame == b"STR\n  8\nI\n0\n\n\n\n\n"
    ev = decode(frame)
    assert (ev.user, ev.email, ev.host, ev.session_id) == ("", "", "", "")


def test_the_email_is_cut_to_64_bytes_without_splitting_a_character():
    info = ANON._replace(email="x" * 200)
    assert body_of(encode("session.login", core.LoginEvent(info, T))).split(b"\n")[3] == b"x" * 64
    info = ANON._replace(email="é" * 40)  # 80 bytes
    email = body_of(encode("session.login", core.LoginEvent(info, T))).split(b"\n")[3]
    assert email == "é".encode() * 32 and len(email) == 64


def test_a_3000_character_path_is_shortened_in_the_middle():
    path = "/very/long" + "/directory" * 299 + "/name.txt"
    assert len(path) > 3000
    frame = encode("fs.upload", upload(path=path))
    body = body_of(frame)
    assert 990 < len(body) <= 999
    ev = decode(frame)
    assert ev.path.startswith("/very/long/directory/")
    assert ev.path.endswith("/.../name.txt")
    assert ev.bytes == 1048576 and ev.status == "OK"


def test_two_long_paths_share_the_shortening():
    old, new = "/o" * 1000 + "/old.txt", "/n" * 700 + "/new.txt"
    frame = encode("fs.rename", core.RenameEvent(ALICE, T, old, new))
    body_of(frame)
    ev = decode(frame)
    assert ev.old_path.endswith("/old.txt") and ev.new_path.endswith("/new.txt")
    assert "..." in ev.old_path and "..." in ev.new_path


def test_multibyte_paths_are_never_cut_inside_a_character():
    frame = encode("fs.mkdir", core.PathEvent(ALICE, T, "/" + "ü" * 1500, "dir"))
    path_bytes = body_of(frame).split(b"\n")[6]
    path_bytes.decode("utf-8")  # strict: no broken sequence
    assert b"..." in path_bytes


def test_undecodable_file_name_bytes_go_out_as_they_were():
    name = b"/caf\xe9.txt".decode("utf-8", "surrogateescape")
    frame = encode("fs.mkdir", core.PathEvent(ALICE, T, name, "dir"))
    assert body_of(frame).split(b"\n")[6] == b"/caf\xe9.txt"
    assert decode(frame).path == name


def test_a_huge_user_name_still_gives_a_valid_frame():
    info = core.SessionInfo("x" * 12, "192.0.2.1", "u" * 5000)
    frame = encode("session.login", core.LoginEvent(info, T))
    body_of(frame)
    assert decode(frame).user.startswith("uuu")


def test_shorten_path():
    assert shorten_path(b"/very/long/path/to/name.txt", 23) == b"/very/long/.../name.txt"
    assert shorten_path(b"/short", 23) == b"/short"
    assert len(shorten_path(b"/" + b"a" * 100, 20)) <= 20
    assert shorten_path(b"/abcdefgh", 3) == b"/ab"


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=1500)


@settings(max_examples=150, deadline=None)
@given(path=_text, user=_text, email=_text, host=st.text(max_size=60), new=_text)
def test_anything_encodes_to_a_frame_that_decodes(path, user, email, host, new):
    info = core.SessionInfo("aSW2YAAqAAEA", host, user, email, True)
    for name, event in [("fs.download", upload(path=path, info=info)),
                        ("fs.rename", core.RenameEvent(info, T, path, new)),
                        ("fs.listing", core.ListingEvent(info, T, path, "OK", new))]:
        frame = encode(name, event)
        body_of(frame)
        ev = decode(frame)
        assert ev.user == "anonymous"


_any_text = st.text(st.sampled_from("ab/é\n\r\0\udc80\ud800 \u20ac"), max_size=40) | _text


@settings(max_examples=300, deadline=None)
@given(path=_any_text, user=_any_text, email=_any_text, host=_any_text, new=_any_text,
       anonymous=st.booleans())
def test_the_quick_encoding_gives_the_bytes_of_the_token_by_token_one(
        path, user, email, host, new, anonymous):
    """encode() joins clean tokens at once; it must equal cleaning and fitting each token
    (the general path), also with tokens to clean, lone surrogates and oversize ones."""
    info = core.SessionInfo("aSW2YAAqAAEA", host, user, email, anonymous)
    events = [("fs.download", upload(path=path, info=info)),
              ("fs.rename", core.RenameEvent(info, T, path, new)),
              ("fs.listing", core.ListingEvent(info, T, path, "OK", new, True)),
              ("session.login", core.LoginEvent(info, T)),
              ("session.logout", core.LogoutEvent(info, T, 3.5, 1, 2, 3, 4, new))]
    for name, event in events:
        letter, layout = ncftpd._ENCODERS[name]
        rest, paths = layout(event)
        who = ncftpd._who(info)
        body = ncftpd._body_by_tokens(letter, int(T), who, rest, paths)
        assert encode(name, event) == b"STR\n%3d\n" % len(body) + body


# -- decoding ----------------------------------------------------------------------------------

def test_decode_gives_typed_immutable_events():
    ev = decode(EXAMPLE)
    assert isinstance(ev, ncftpd.UploadMessage) and ev.name == "upload" and ev.type == "S"
    assert ev.time == datetime(2025, 11, 25, 14, 1, tzinfo=UTC)
    assert (ev.user, ev.email, ev.host, ev.session_id) == (
        "alice", "", "192.0.2.10", "aSW2YAAqAAEA")
    assert (ev.path, ev.bytes, ev.duration, ev.rate, ev.status, ev.transfer_type, ev.offset,
            ev.file_size) == ("/incoming/report.pdf", 1048576, 2.15, 476.279, "OK", "I", 0,
                              1048576)
    assert type(ev.bytes) is int and type(ev.duration) is float
    assert ev.extra == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.path = "/elsewhere"  # type: ignore[misc]


def test_decode_every_type_round_trips():
    info = ALICE
    cases = {
        "fs.download": (upload(direction="download"), ncftpd.DownloadMessage,
                        {"path": "/incoming/report.pdf", "file_size": 1048576}),
        "fs.listing": (core.ListingEvent(info, T, "/pub", "OK", "*.c", True),
                       ncftpd.ListingMessage, {"pattern": "*.c", "recursive": True}),
        "fs.delete": (core.PathEvent(info, T, "/f"), ncftpd.DeleteMessage, {"kind": "file"}),
        "fs.rmdir": (core.PathEvent(info, T, "/d", "dir"), ncftpd.DeleteMessage, {"kind": "dir"}),
        "fs.mkdir": (core.PathEvent(info, T, "/m", "dir"), ncftpd.MkdirMessage, {"path": "/m"}),
        "fs.rename": (core.RenameEvent(info, T, "/a", "/b"), ncftpd.RenameMessage,
                      {"old_path": "/a", "new_path": "/b"}),
        "fs.symlink": (core.SymlinkEvent(info, T, "t", "/l"), ncftpd.SymlinkMessage,
                       {"target": "t", "link_path": "/l"}),
        "fs.chmod": (core.ChmodEvent(info, T, "/f", 0o640), ncftpd.ChmodMessage, {"mode": 0o640}),
        "session.login": (core.LoginEvent(info, T), ncftpd.LoginMessage, {}),
        "session.logout": (core.LogoutEvent(info, T, 59.9, 1, 2, 3, 4, "TIMEOUT"),
                           ncftpd.LogoutMessage, {"duration": 59, "files_down": 1, "bytes_down": 2,
                                                "files_up": 3, "bytes_up": 4,
                                                "reason": "TIMEOUT"}),
    }
    for name, (event, cls, fields) in cases.items():
        ev = decode(encode(name, event))
        assert type(ev) is cls, name
        assert ev.user == "alice" and ev.time.timestamp() == 1764079260
        for key, value in fields.items():
            assert getattr(ev, key) == value, (name, key)


def test_decode_strips_one_trailing_nul():
    assert decode(EXAMPLE + b"\0") == decode(EXAMPLE)
    with pytest.raises(MalformedMessage):
        decode(EXAMPLE + b"\0\0")


def test_unknown_types_give_a_generic_event_with_the_raw_tokens():
    body = b"Z\n1764079260\nalice\n\n192.0.2.10\naSW2YAAqAAEA\nfoo\n\nbar\n"
    ev = decode(b"STR\n%3d\n" % len(body) + body)
    assert type(ev) is ncftpd.Message and ev.name == "unknown" and ev.type == "Z"
    assert ev.extra == ("foo", "", "bar")


def test_tokens_appended_by_a_newer_server_are_kept():
    body = EXAMPLE[8:] + b"future\n"
    ev = decode(b"STR\n%3d\n" % len(body) + body)
    assert isinstance(ev, ncftpd.UploadMessage) and ev.extra == ("future",)


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\0", "just a NUL"),
    (b"STX\n102\n" + EXAMPLE[8:], "bad magic"),
    (b"str\n102\n" + EXAMPLE[8:], "lower-case magic"),
    (b"STR\n", "header cut short"),
    (b"STR\n10", "header cut short"),
    (b"STR\n103\n" + EXAMPLE[8:], "length too big"),
    (b"STR\n101\n" + EXAMPLE[8:], "length too small"),
    (b"STR\n1x2\n" + EXAMPLE[8:], "length not a number"),
    (b"STR\n-12\n" + EXAMPLE[8:20], "negative length"),
    (b"STR\n102 " + EXAMPLE[8:], "no newline after the length"),
    (EXAMPLE[:60], "truncated body"),
    (EXAMPLE[:-1], "truncated by one byte"),
    (b"STR\n  0\n", "empty body"),
    (b"STR\n  4\nI\n1\n", "too few tokens"),
    (b"STR\n  2\n\n\n", "empty type"),
    (EXAMPLE.replace(b"1764079260", b"17640x9260"), "bad time"),
    (EXAMPLE.replace(b"1764079260", b"9" * 10), None),
    (EXAMPLE.replace(b"\n1048576\n2.150", b"\n10485x6\n2.150"), "bad byte count"),
    (EXAMPLE.replace(b"2.150", b"2,150"), "bad duration"),
    (EXAMPLE.replace(b"2.150", b"nan00"), "nan duration"),
    (EXAMPLE.replace(b"alice", b"al\0ce"), "NUL in body"),
    (b"STR\n 34\nC\n1\nu\n\nh\ns\n/f\n0xyz\n" + b"", "bad mode"),
    (b"STR\n 33\nD\n1\nu\n\nh\ns\n/f\nboth\n", "bad delete kind"),
    (b"STR\n 20\nS\n1\nu\n\nh\ns\n/f\n", "upload without its fields"),
])
def test_decode_rejects_malformed_messages(data, why):
    if why is None:  # a far-future time is still a time
        assert decode(data).time.year > 2200
        return
    with pytest.raises(MalformedMessage):
        decode(data)


def test_malformed_message_is_a_value_error():
    assert issubclass(MalformedMessage, ValueError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_malformed(data):
    for candidate in (data, b"STR\n%3d\n" % len(data) + data, b"STR\n" + data):
        try:
            ev = decode(candidate)
        except MalformedMessage:
            continue
        assert isinstance(ev, ncftpd.Message)


def test_decode_and_dispatch_many_messages():
    """Every one of 20,000 frames reaches the handler (the rate, at least 20,000 a
    second, is measured by bench/eventbench.py: timings do not belong here)."""
    from ftpd.events.receiver import Dispatcher

    class Handler:
        count = 0

        def on_upload(self, ev):
            self.count += 1

        def on_event(self, ev):
            self.count += 1

    frames = [encode("fs.upload", upload(path=f"/in/file{i}.dat")) for i in range(1000)]
    frames += [encode("fs.chmod", core.ChmodEvent(ALICE, T, f"/f{i}", 0o644)) for i in range(1000)]
    handler = Handler()
    dispatcher = Dispatcher(handler)
    for _ in range(10):
        for frame in frames:
            dispatcher.dispatch(frame)
    assert handler.count == 10 * len(frames) == 20000


def test_one_name_per_fact_across_the_two_event_models():
    """The bus carries the core's facts (``ftpd.core.events``); receivers decode wire
    messages (``ftpd.events.messages``). No class name means both, so neither can be
    mistaken for the other in a module or a handler."""
    import ftpd.core.events as facts
    import ftpd.events.messages as wire

    def classes(module):
        return {n for n, v in vars(module).items()
                if isinstance(v, type) and v.__module__ == module.__name__}

    assert classes(facts) and classes(wire)
    assert not classes(facts) & classes(wire)
    assert all(n.endswith("Message") for n in classes(wire) if not n.startswith("_"))

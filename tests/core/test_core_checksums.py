"""HASH with OPTS HASH (draft-bryan-ftpext-hash-02) and the legacy XMD5, XSHA1, XSHA256,
XCRC, through the sans-IO session: the digests against hashlib and zlib, the session's
algorithm, FEAT and HELP, the refusals, and that the file is read only in the order
the transport runs (a ``Call``), never by the handler itself."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from core_driver import Driver, codes, text

from ftpd.auth.base import SingleUserAuthorizer
from ftpd.core.states import State
from ftpd.fs.digest import SLICE, open_digest
from ftpd.fs.memory import MemoryFS

DATA = bytes(range(256)) * 4 + b"\r\n\n\r tail"  # CR and LF: TYPE A must not touch them


def expected(algorithm: str, data: bytes) -> str:
    if algorithm == "CRC32":
        return f"{zlib.crc32(data):08x}"
    return hashlib.new(algorithm.replace("-", "").lower(), data).hexdigest()


@pytest.fixture
def fs() -> MemoryFS:
    fs = MemoryFS({"/data.bin": DATA, "/empty": b"", "/with space.bin": DATA})
    fs.mkdir("/dir")
    return fs


@pytest.fixture
def d(fs) -> Driver:
    d = Driver(fs)
    d.login()
    return d


@pytest.mark.parametrize("algorithm", ["SHA-256", "SHA-1", "MD5", "CRC32"])
def test_hash_gives_the_draft_reply_for_each_algorithm(d, algorithm):
    assert text(d.send(f"OPTS HASH {algorithm}")[0]) == algorithm
    reply = d.send("HASH data.bin")[0]
    assert reply.code == 213
    assert text(reply) == f"{algorithm} 0-{len(DATA) - 1} {expected(algorithm, DATA)} data.bin"


@pytest.mark.parametrize(("verb", "algorithm"), [
    ("XMD5", "MD5"), ("XSHA1", "SHA-1"), ("XSHA256", "SHA-256"), ("XCRC", "CRC32")])
def test_legacy_commands_answer_250_and_the_digest(d, verb, algorithm):
    reply = d.send(f"{verb} data.bin")[0]
    assert (reply.code, text(reply)) == (250, expected(algorithm, DATA))
    reply = d.send(f"{verb} data.bin 10 300")[0]  # mod_digest's range: bytes [10, 300)
    assert (reply.code, text(reply)) == (250, expected(algorithm, DATA[10:300]))
    reply = d.send(f"{verb} with space.bin 0 {len(DATA)}")[0]
    assert (reply.code, text(reply)) == (250, expected(algorithm, DATA))


def test_a_path_with_spaces_and_the_default_algorithm(d):
    reply = d.send("HASH with space.bin")[0]
    assert text(reply) == f"SHA-256 0-{len(DATA) - 1} {expected('SHA-256', DATA)} with space.bin"


def test_an_empty_file(d):
    assert text(d.send("HASH empty")[0]) == f"SHA-256 0-0 {expected('SHA-256', b'')} empty"
    assert text(d.send("XCRC empty")[0]) == "00000000"


@pytest.mark.parametrize("arg", ["data.bin 5 5", "data.bin 9 3", f"data.bin 0 {len(DATA) + 1}",
                                 "empty 0 1"])
def test_a_range_outside_the_file_is_501(d, arg):
    assert codes(d.send(f"XMD5 {arg}")) == [501]


def test_type_a_does_not_change_the_digest(d):
    d.send("TYPE A")
    assert text(d.send("HASH data.bin")[0]).split()[2] == expected("SHA-256", DATA)
    assert text(d.send("XSHA1 data.bin")[0]) == expected("SHA-1", DATA)


def test_opts_hash_queries_switches_case_insensitively_and_refuses_unknown_names(d):
    assert [(r.code, text(r)) for r in d.send("OPTS HASH")] == [(200, "SHA-256")]
    assert [(r.code, text(r)) for r in d.send("opts hash sha-1")] == [(200, "SHA-1")]
    assert text(d.send("OPTS HASH")[0]) == "SHA-1"
    for bad in ("CRC-37", "SHA256", "SHA-1 MD5"):
        assert codes(d.send(f"OPTS HASH {bad}")) == [501]
    assert text(d.send("OPTS HASH")[0]) == "SHA-1"  # unchanged
    assert text(d.send("HASH data.bin")[0]).startswith("SHA-1 ")


def test_opts_hash_works_before_login_and_rein_resets_it(fs):
    d = Driver(fs)
    assert text(d.send("OPTS HASH MD5")[0]) == "MD5"
    d.login()
    assert text(d.send("HASH data.bin")[0]).startswith("MD5 ")
    d.send("REIN")
    assert text(d.send("OPTS HASH")[0]) == "SHA-256"


def feature_lines(d: Driver) -> list[str]:
    reply = d.send("FEAT")[0]
    return [line.strip() for line in reply.lines[1:-1]]


def test_feat_lists_hash_with_the_current_choice_starred_and_the_legacy_commands(d):
    lines = feature_lines(d)
    assert "HASH SHA-256*;SHA-1;MD5;CRC32" in lines
    assert {"XMD5", "XSHA1", "XSHA256", "XCRC"} <= set(lines)
    d.send("OPTS HASH crc32")
    assert "HASH SHA-256;SHA-1;MD5;CRC32*" in feature_lines(d)


def test_help_lists_the_commands_and_their_syntax(d):
    words = " ".join(d.send("HELP")[0].lines[1:-1]).split()
    assert {"HASH", "XMD5", "XSHA1", "XSHA256", "XCRC"} <= set(words)
    assert text(d.send("HELP HASH")[0]).startswith("Syntax: HASH <sp> pathname")
    assert text(d.send("HELP xcrc")[0]).startswith(
        "Syntax: XCRC <sp> pathname [<sp> start <sp> end]")
    assert "HASH" in text(d.send("HELP OPTS")[0])


@pytest.mark.parametrize("verb", ["HASH", "XMD5", "XSHA1", "XSHA256", "XCRC"])
def test_refusals(fs, verb):
    d = Driver(fs)
    assert codes(d.send(f"{verb} data.bin")) == [530]  # not logged in
    d.login()
    assert codes(d.send(f"{verb} missing")) == [550]
    assert codes(d.send(f"{verb} dir")) == [553 if verb == "HASH" else 550]
    assert codes(d.send(f"{verb}")) == [501]


class Unreadable(MemoryFS):
    def open_read(self, vpath):
        raise PermissionError(13, "Permission denied", vpath)


@pytest.mark.parametrize("verb", ["HASH", "XMD5", "XCRC"])
def test_an_unreadable_file_is_550_like_retr(verb):
    d = Driver(Unreadable({"/secret": b"s"}))
    d.login()
    assert codes(d.send(f"{verb} secret")) == [550]
    d.send("TYPE I")
    assert codes(d.dialogue(["PASV", "RETR secret"])) == [227, 550]


def test_a_user_without_the_read_letter_is_refused(fs):
    d = Driver(fs, authorizer=SingleUserAuthorizer("alice", "pw", "/", perm="el"))
    d.login()
    assert codes(d.send("HASH data.bin")) == [550]
    assert codes(d.send("XSHA256 data.bin")) == [550]


def test_anonymous_may_hash(fs):
    d = Driver(fs)
    d.login("anonymous", "guest@example.com")
    assert codes(d.send("HASH data.bin")) == [213]


class _CountingReader:
    def __init__(self, inner, fs) -> None:
        self.inner, self.fs = inner, fs

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.fs.read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def close(self) -> None:
        self.fs.closed += 1
        self.inner.close()


class Counting(MemoryFS):
    """Counts the files opened and closed and the bytes read."""

    def __init__(self, files) -> None:
        super().__init__(files)
        self.opened = self.closed = self.read = 0

    def open_read(self, vpath):
        self.opened += 1
        return _CountingReader(super().open_read(vpath), self)


BIG = bytes(range(256)) * (2 * SLICE // 256) + b"tail!"  # three slices


def held(line: str) -> tuple[Driver, Counting]:
    fs = Counting({"/big.bin": BIG})
    d = Driver(fs)
    d.login()
    d.hold_calls = True
    assert d.send(line) == []
    assert d.session.state is State.WAITING
    d.release()  # the stat
    assert [c.fn for c in d.calls] == [open_digest] and fs.opened == 0
    d.release()
    assert fs.opened == 1 and fs.read == 0  # opened in the pool; nothing read yet
    return d, fs


@pytest.mark.parametrize(("line", "code", "digest"), [
    ("HASH big.bin", 213, hashlib.sha256(BIG).hexdigest()),
    (f"XSHA256 big.bin 1 {len(BIG)}", 250, hashlib.sha256(BIG[1:]).hexdigest())])
def test_the_file_is_read_a_slice_per_call_the_transport_runs(line, code, digest):
    d, fs = held(line)
    assert d.send("NOOP") == []  # queued behind the HASH, answered in order
    for done in (SLICE, 2 * SLICE):
        assert [c.fn.__name__ for c in d.calls] == ["step"]
        d.release()
        assert fs.read == done and d.replies[-1].code == 230
    d.release()
    assert fs.read == len(BIG) - (0 if code == 213 else 1) and fs.closed == 1
    assert codes(d.replies[-2:]) == [code, 200] and digest in text(d.replies[-2])


def test_a_session_closed_while_hashing_stops_reading_and_closes_the_file():
    d, fs = held("HASH big.bin")
    d.release()  # one slice
    d.process(d.session.timeout())  # the client is gone meanwhile (421)
    assert d.session.closed
    d.release()  # the slice under way comes back: its file is closed, nothing more asked
    assert fs.read == 2 * SLICE and fs.closed == 1 and d.calls == []


def test_the_digest_module_is_imported_at_the_first_checksum_not_at_start_up():
    import subprocess
    import sys

    code = ("import sys; from ftpd.core.sessionconfig import _default_table; _default_table(); "
            "print('ftpd.fs.digest' in sys.modules, 'zlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.split() == ["False", "False"]

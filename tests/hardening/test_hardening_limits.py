"""Connection caps, bad-command limit, passive port exhaustion and many idle sessions,
through the real ``ftpd`` command (SPEC §2, SECURITY.md "Which limit defends ...")."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import random
import re
import socket

import pytest
from ftpsupport import DEADLINE, wait_until
from hhelpers import HOST, Control, open_data, raise_nofile, read_all


def _listing(c: Control, verb: str = "NLST") -> list[str]:
    data = c.data()
    with data:
        code, text = c.cmd(verb)
        assert code == 150, text
        body = read_all(data)
    code, text = c.reply()
    assert code == 226, text
    return body.decode().split("\r\n")[:-1]


def _refused(port: int, reason: str) -> None:
    """A new connection gets 421 (naming *reason*) and is closed at once."""
    c = Control(port, greet=False)
    with c:
        code, text = c.reply()
        assert code == 421, text
        assert reason in text.lower(), text
        assert c.closed(), "the refused connection stayed open"


def _works(c: Control) -> None:
    c.ok("NOOP", 200)
    c.ok("PWD", 257)
    assert "f.txt" in _listing(c)


def _accepted_again(port: int) -> Control:
    """Once a slot is free a new connection is greeted (the close is seen by the
    server asynchronously, so a few attempts may still be refused)."""
    def greeted() -> Control | None:
        c = Control(port, greet=False)
        code, text = c.reply()
        if code == 220:
            return c
        assert code == 421, text
        c.close()
        return None

    return wait_until(greeted, "a connection accepted after a slot was freed", interval=0.05)


def test_per_ip_cap_refuses_one_over_and_spares_the_others(ftpd):
    server = ftpd("--max-connections-per-ip", "3")
    (server.root / "f.txt").write_bytes(b"hello\n")
    inside = [server.control(login=True) for _ in range(3)]
    try:
        _refused(server.port, "address")
        _refused(server.port, "address")  # still refused, and still just that one
        for c in inside:
            _works(c)
        inside.pop(0).cmd("QUIT")
        again = _accepted_again(server.port)
        inside.append(again)
        again.login()
        _works(again)
        for c in inside:
            c.ok("NOOP", 200)
    finally:
        for c in inside:
            c.close()


def test_global_cap_refuses_one_over_and_spares_the_others(ftpd):
    server = ftpd("--max-connections", "4")
    (server.root / "f.txt").write_bytes(b"hello\n")
    inside = [server.control(login=i % 2 == 0) for i in range(4)]
    try:
        _refused(server.port, "too many connections")
        for i, c in enumerate(inside):
            if i % 2:
                c.login()
            _works(c)
        inside.pop().close()  # an abrupt close frees the slot too
        again = _accepted_again(server.port)
        inside.append(again)
        again.login()
        _works(again)
    finally:
        for c in inside:
            c.close()


def test_max_bad_commands_closes_after_n_in_a_row(ftpd):
    server = ftpd("--max-bad-commands", "3")
    with server.control() as c:
        # a good reply in between resets the count
        for _ in range(5):
            assert c.cmd("XYZZY")[0] == 500
            assert c.cmd("FOO\0BAR")[0] == 501
            c.ok("NOOP", 200)
        assert c.cmd("XYZZY")[0] == 500
        assert c.cmd("XYZZY")[0] == 500
        assert c.cmd("XYZZY")[0] == 500
        code, text = c.reply()
        assert code == 421, text
        assert c.closed()
    with server.control(login=True) as other:  # the server goes on
        other.ok("NOOP", 200)


def test_many_idle_connections_do_not_slow_a_download(ftpd):
    idle_count = 200
    raise_nofile(4 * idle_count + 256)
    server = ftpd()
    big = server.root / "big.bin"
    payload = os.urandom(1 << 20) * 20  # 20 MB
    big.write_bytes(payload)
    idle: list[Control] = []
    try:
        for i in range(idle_count):
            c = Control(server.port, timeout=DEADLINE)
            if i % 2 == 0:
                c.ok("USER anonymous", 331)
                c.ok("PASS idle@example.org", 230)
            idle.append(c)
        with server.control(login=True) as c:
            c.ok("TYPE I", 200)
            data = c.data()
            h = hashlib.sha256()
            total = 0
            with data:
                code, text = c.cmd("RETR big.bin")
                assert code == 150, text
                data.settimeout(DEADLINE)
                for _ in range(1 << 16):
                    chunk = data.recv(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                    total += len(chunk)
            assert c.reply()[0] == 226
            assert total == len(payload)
            assert h.hexdigest() == hashlib.sha256(payload).hexdigest()
        for c in idle:  # every idle session is still there and answers
            c.ok("NOOP", 200)
    finally:
        for c in idle:
            c.close()


def _two_free_ports() -> int:
    """LOW such that LOW and LOW+1 are both free on 127.0.0.1 just now, chosen outside
    the ephemeral range so no client socket of this suite takes one meanwhile."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_low, eph_high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        eph_low, eph_high = 32768, 60999
    span = range(10000, eph_low - 1) if eph_low > 12000 else range(eph_high + 1, 65534)
    rng = random.Random()
    for _ in range(200):
        low = rng.choice(span)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind((HOST, low))
                b.bind((HOST, low + 1))
        except OSError:
            continue
        return low
    raise AssertionError("no two consecutive free ports")


def test_passive_port_range_exhaustion_is_425(ftpd):
    low = _two_free_ports()
    server = ftpd("--passive-ports", f"{low}-{low + 1}")
    (server.root / "f.txt").write_bytes(b"hello\n")
    a, b, c = (server.control(login=True) for _ in range(3))
    try:
        ports = {a.pasv()[1], b.pasv()[1]}
        assert ports == {low, low + 1}
        code, text = c.cmd("PASV")
        assert code == 425, text
        code, text = c.cmd("EPSV")
        assert code == 425, text
        c.ok("NOOP", 200)  # the session goes on
        # a session asking again gets a port of the range back (its own old one)
        assert a.pasv()[1] in ports
        # once a port is released, the third session gets it
        b.ok("QUIT", 221)
        host, port = wait_until(lambda: _try_pasv(c), "a passive port to be free again")
        assert port in ports
        with open_data(host, port) as data:
            code, text = c.cmd("NLST")
            assert code == 150, text
            assert read_all(data) == b"f.txt\r\n"
        assert c.reply()[0] == 226
    finally:
        for x in (a, b, c):
            x.close()


def test_passive_port_is_reusable_while_in_time_wait(ftpd):
    """Issue 10 point 21: the server closes a download's data connection first, so its
    passive port sits in TIME_WAIT; with SO_REUSEADDR it can listen again at once, and
    a one-port range serves more transfers than it has ports."""
    low = _two_free_ports()
    server = ftpd("--passive-ports", f"{low}-{low}")
    (server.root / "f.txt").write_bytes(b"hello\n")
    c = server.control(login=True)
    try:
        c.ok("TYPE I", 200)
        for _ in range(4):
            host, port = c.pasv()
            assert port == low
            with open_data(host, port) as data:
                c.ok("RETR f.txt", 150)
                assert read_all(data) == b"hello\n"
            assert c.reply()[0] == 226
    finally:
        c.close()


def _try_pasv(c: Control) -> tuple[str, int] | None:
    code, text = c.cmd("PASV")
    if code == 425:
        return None
    assert code == 227, text
    m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", text)
    assert m is not None
    n = [int(x) for x in m.groups()]
    return ".".join(map(str, n[:4])), n[4] * 256 + n[5]


@pytest.mark.parametrize("verb", ["LIST", "NLST"])
def test_pattern_bomb_is_bounded_and_right(ftpd, verb):
    server = ftpd()
    names = []
    for i in range(40):  # long names: the matcher's worst case grows with them
        names += ["a" * (250 - len(str(i))) + str(i) + "b", "a" * 251 + f"{i:03d}",
                  "a" * 200 + f"{i:02d}" + "c" * 40 + "b"]
    names += ["aaaaaaab", "aaaaaab", "abababababababab", "b" * 255]
    for name in names:
        (server.root / name).write_bytes(b"")
    pattern = "*a*a*a*a*a*a*a*b"
    expected = sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))
    assert 40 < len(expected) < len(names)
    with server.control(login=True) as c:
        lines = _listing(c, f"{verb} {pattern}")  # the steps it may take are counted in
        got = sorted(line.split(" ")[-1] if verb == "LIST" else line for line in lines)
        assert got == expected  # tests/core/test_core_units.py (test_match_budget_*)
        # a pattern over the cap matches nothing rather than working hard
        lines = _listing(c, f"{verb} " + "*a" * 200 + "*b")
        assert lines == []
        c.ok("NOOP", 200)


def test_listing_entry_cap(tmp_path):
    """The entry cap (fixed on the command line; settable in-process) refuses a listing
    that is too large with 550, and the session goes on."""
    from ftpd.embed import FTPServer
    from ftpd.fs.memory import MemoryFS

    files = {f"/big/f{i:03d}": b"" for i in range(60)}
    files["/small/one"] = b"1"
    with FTPServer(MemoryFS(files), users={"user": "pw"}, max_listing_entries=50) as srv:
        with Control(srv.port) as c:
            c.login()
            data = c.data()
            with data:
                code, text = c.cmd("LIST /big")
                assert code == 550 and "too large" in text, text
            c.ok("NOOP", 200)
            assert _listing(c, "NLST /small") == ["one"]
            assert len(_listing(c, "NLST /big/f00*")) == 10

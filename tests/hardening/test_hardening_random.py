"""A bounded, seeded random walk over whole command sequences against the real server:
300 commands from the verb list with hostile path arguments (``..``, absolute and real
paths, symlinks leading out, NULs, over-long lines, undecodable bytes). Afterwards:
every reply was well-formed and each command got exactly one final reply, the server
is alive, and nothing outside the served root was created or modified."""

from __future__ import annotations

import os
import random
import select
from pathlib import Path

import pytest
from ftpsupport import DEADLINE
from hhelpers import open_data

SEED = 20240601
COMMANDS = 300

VERBS = [
    "CWD", "XCWD", "CDUP", "XCUP", "PWD", "XPWD", "MKD", "XMKD", "RMD", "XRMD", "DELE",
    "RNFR", "RNTO", "SIZE", "MDTM", "MFMT", "STAT", "MLST", "SITE CHMOD", "SITE SYMLINK",
    "SITE HELP", "SITE", "HELP", "NOOP", "TYPE", "REST", "ALLO", "MODE", "STRU", "LIST",
    "NLST", "MLSD", "RETR", "STOR", "APPE", "STOU", "ABOR", "PASV", "EPSV", "PORT", "EPRT",
    "OPTS", "FEAT", "SYST", "SMNT", "ACCT", "USER", "PASS", "REIN", "XYZZY", "",
]
TRANSFERS = {"LIST", "NLST", "MLSD", "RETR", "STOR", "APPE", "STOU"}


def _paths(sibling: Path) -> list[bytes]:
    return [
        b"..", b"../..", b"/../../..", b"../sibling", b"../sibling/secret.txt",
        os.fsencode(sibling), os.fsencode(sibling / "secret.txt"),
        os.fsencode(sibling / "made.txt"), b"/etc/passwd", b"/etc", b"out", b"out/secret.txt",
        b"out/new.txt", b"out/sub", b"outfile", b"inlink", b"inlink/b.txt", b"sub",
        b"sub/../..", b"sub/../../sibling/secret.txt", b"a.txt", b"new1", b"new2/x",
        b"dir1", b"dir1/../../../", b"./../.", b"a\0b", b"\0", b"x" * 3000, b"y" * 300,
        b"z" * 200 + b"/" + b"w" * 200, b"~root", b"*", b"?", b"a*", b"*a*a*a*a*b",
        b"\xff\xfe\xfd", b"..\\..\\sibling", b"%2e%2e/sibling", b"", b" ", b"/", b"//..//..",
        b"-la", b"-la ../sibling", b"\xc3\xa9t\xc3\xa9",
    ]


def _snapshot(base: Path, skip: set[Path]) -> dict[str, tuple]:
    """Every entry under *base* (not following links, not under *skip*), with its type,
    size, mode and mtime; *base* itself included."""
    out: dict[str, tuple] = {}
    for dirpath, dirs, files in os.walk(base):
        here = Path(dirpath)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for name in [".", *dirs, *files]:
            p = here / name
            if p in skip:
                continue
            st = os.lstat(p)
            out[str(p.relative_to(base))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _argument(rng: random.Random, verb: str, paths: list[bytes]) -> bytes:
    pick = rng.choice(paths)
    if verb == "SITE CHMOD":
        return rng.choice([b"777 ", b"4755 ", b"0 ", b"999 ", b""]) + pick
    if verb == "SITE SYMLINK":
        return pick + b" " + rng.choice(paths)
    if verb == "MFMT":
        return rng.choice([b"20200101000000 ", b"99999999999999 ", b"x "]) + pick
    if verb == "TYPE":
        return rng.choice([b"A", b"I", b"L 8", b"E", b"X Y", b""])
    if verb == "REST":
        return rng.choice([b"0", b"10", b"-1", b"99999999999999999999", b"x"])
    if verb in ("PORT", "EPRT"):
        return rng.choice([b"127,0,0,2,200,1", b"1,2,3", b"|1|127.0.0.2|5000|", b"|9|x|1|",
                           b"127,0,0,1,0,21", pick])
    if verb == "OPTS":
        return rng.choice([b"UTF8 ON", b"UTF8 OFF", b"MLST type;size;", b"FOO", pick])
    if verb in ("USER", "PASS"):
        return rng.choice([b"user", b"anonymous", pick])
    if verb in ("NOOP", "PWD", "XPWD", "CDUP", "XCUP", "FEAT", "SYST", "PASV", "ABOR"):
        return rng.choice([b"", b"", b"", pick])
    return pick


def _drain_data(sock, upload: bool, rng: random.Random) -> None:
    try:
        if upload:
            sock.sendall(rng.randbytes(rng.choice([0, 10, 5000])))
        else:
            sock.settimeout(DEADLINE)
            for _ in range(10_000):
                if not sock.recv(65536):
                    break
    except OSError:
        pass
    finally:
        sock.close()


@pytest.fixture
def layout(tmp_path: Path):
    root = tmp_path / "root"
    sibling = tmp_path / "sibling"
    for d in (root / "sub", sibling / "subdir"):
        d.mkdir(parents=True)
    (root / "a.txt").write_bytes(b"inside\n")
    (root / "sub" / "b.txt").write_bytes(b"inside too\n")
    (sibling / "secret.txt").write_bytes(b"outside, must not change\n")
    (sibling / "subdir" / "x").write_bytes(b"x\n")
    os.symlink(sibling, root / "out")
    os.symlink(sibling / "secret.txt", root / "outfile")
    os.symlink(root / "sub", root / "inlink")
    return tmp_path, root, sibling


def test_random_command_sequences_stay_confined_and_well_formed(ftpd, layout):
    base, root, sibling = layout
    server = ftpd("--max-bad-commands", "100000", "--timeout", "60", root=root)
    skip = {root, base / "logs"}
    before = _snapshot(base, skip)
    rng = random.Random(SEED)
    paths = _paths(sibling)
    internal_errors: list[str] = []
    finals = 0
    c = server.control(login=True)
    try:
        for i in range(COMMANDS):
            verb = rng.choice(VERBS)
            arg = _argument(rng, verb, paths)
            line = verb.encode() + (b" " + arg if arg or rng.random() < 0.1 else b"")
            data = None
            if verb.split(" ")[0] in TRANSFERS and rng.random() < 0.7:
                code, text = c.cmd("PASV")
                if code == 227:
                    host, port = _parse227(text)
                    data = open_data(host, port)
            c.send(line + b"\r\n")
            code, text = c.reply()
            if code < 200:  # a preliminary reply: the transfer runs, then the final one
                assert code in (125, 150), text
                if data is not None:
                    _drain_data(data, verb in ("STOR", "APPE", "STOU"), rng)
                    data = None
                code, text = c.reply()
            finals += 1
            if data is not None:
                data.close()
            if code == 451 and "internal error" in text.lower():
                internal_errors.append(f"{line[:80]!r} -> {text}")
            assert code != 421, f"the session was closed after {line[:80]!r}: {text}"
            if code == 530 and "log in" in text.lower():  # logged out (REIN-like): again
                c.login()
            if i % 25 == 24:  # one final reply per command: nothing extra is pending
                readable, _, _ = select.select([c.sock], [], [], 0.05)
                assert not readable or c._buf, "unexpected bytes before NOOP"
                c.ok("NOOP", 200)
        if os.environ.get("HARDENING_DEBUG"):
            import collections
            print(collections.Counter(code for code, _ in c.replies))
        assert finals == COMMANDS
        c.ok("NOOP", 200)
    finally:
        c.close()
    assert server.alive()
    with server.control(login=True) as fresh:
        fresh.ok("NOOP", 200)
        fresh.ok("PWD", 257)
    after = _snapshot(base, skip)
    assert after == before, _diff(before, after)
    assert (sibling / "secret.txt").read_bytes() == b"outside, must not change\n"
    assert not internal_errors, "\n".join(internal_errors)


def _parse227(text: str) -> tuple[str, int]:
    import re

    m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", text)
    assert m is not None, text
    n = [int(x) for x in m.groups()]
    return ".".join(map(str, n[:4])), n[4] * 256 + n[5]


def _diff(before: dict, after: dict) -> str:
    keys = sorted(set(before) | set(after))
    return "\n".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys
                     if before.get(k) != after.get(k))

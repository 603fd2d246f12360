"""The same dialogues against MemoryFS and against LocalFS on a temporary root:
the core must not depend on which filesystem it is given."""

from __future__ import annotations

import os
import stat

import pytest
from core_driver import Driver, codes, text

from ftpd.core import actions as A
from ftpd.core.listing import TEMP_PREFIX
from ftpd.fs.local import LocalFS
from ftpd.fs.memory import MemoryFS

FILES = {"/hello.txt": b"hello world\n", "/pub/a.txt": b"A", "/pub/b.bin": b"\x00\xff" * 8}


@pytest.fixture(params=["memory", "local"])
def fs(request, tmp_path):
    if request.param == "memory":
        return MemoryFS(FILES)
    root = tmp_path / "root"
    for path, data in FILES.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_bytes(data)
    (tmp_path / "secret").write_bytes(b"secret")
    os.symlink(tmp_path / "secret", root / "escape")
    os.symlink(tmp_path, root / "up")
    return LocalFS(str(root))


@pytest.fixture
def d(fs):
    d = Driver(fs=fs)
    d.login()
    d.send("TYPE I")
    return d


def _read(fs, path):
    with fs.open_read(path) as f:
        return f.read()


def test_retr_stor_appe_rest(d, fs):
    assert d.retr("/pub/b.bin") == b"\x00\xff" * 8
    assert codes(d.stor("new.bin", b"0123456789")) == [227, 150, 226]
    d.send("REST 4")
    assert d.retr("new.bin") == b"456789"
    d.send("REST 2")
    d.stor("new.bin", b"ab")
    assert _read(fs, "/new.bin") == b"01ab456789"
    d.stor("new.bin", b"++", "APPE")
    assert _read(fs, "/new.bin") == b"01ab456789++"
    d.send("TYPE A")
    d.stor("t.txt", b"x\r\ny\r\n")
    assert _read(fs, "/t.txt") == b"x\ny\n"
    assert d.retr("t.txt") == b"x\r\ny\r\n"


MAX_OFFSET = 2**63 - 1  # the largest file offset (off_t)


@pytest.mark.parametrize("arg", [str(MAX_OFFSET + 1), str(2**64), "9" * 40, "-1",
                                 "\u0661\u0662"])
def test_rest_beyond_a_file_offset_is_refused_and_creates_nothing(d, fs, arg):
    assert codes(d.send("REST 5")) == [350]
    assert codes(d.send(f"REST {arg}")) == [501]
    assert d.session.rest == 0  # a refused REST also drops the marker set before it
    for verb in ("STOR", "APPE"):
        assert codes(d.stor(f"{verb}.bin", b"data", verb)) == [227, 150, 226]
        assert _read(fs, f"/{verb}.bin") == b"data"


def test_rest_beyond_the_file_is_refused_for_every_transfer(d, fs):
    assert codes(d.send(f"REST {MAX_OFFSET}")) == [350]
    d.send("PASV")
    assert codes(d.send("STOR absent.bin")) == [550]  # nothing to restart: no file made
    assert "absent.bin" not in fs.listdir("/")
    for verb in ("RETR", "STOR", "APPE"):
        d.send(f"REST {MAX_OFFSET}")
        d.send("PASV")
        assert codes(d.send(f"{verb} hello.txt")) == [554], verb
        assert _read(fs, "/hello.txt") == b"hello world\n"


def test_rest_appe_acts_as_rest_stor(d, fs):
    """RFC 3659 5.4: APPE after REST must act identically to STOR."""
    d.send("REST 6")
    assert codes(d.stor("hello.txt", b"WORLD", "APPE")) == [227, 150, 226]
    assert _read(fs, "/hello.txt") == b"hello WORLD\n"


@pytest.mark.parametrize("mode", ["4755", "2755", "1755", "6755", "7755", "04755"])
def test_site_chmod_never_sets_setuid_setgid_or_sticky(d, fs, mode):
    """As vsftpd does: the mode is masked to 0777."""
    assert codes(d.send(f"SITE CHMOD {mode} hello.txt")) == [200]
    assert stat.S_IMODE(fs.stat("/hello.txt").st_mode) == 0o755
    assert [e.data.mode for e in d.events if e.name == "fs.chmod"] == [0o755]


@pytest.mark.parametrize("mode", ["0o755", "+755", "7_55", "-0", "\u0667\u0665\u0665", "17777"])
def test_site_chmod_takes_octal_digits_only(d, fs, mode):
    before = fs.stat("/hello.txt").st_mode
    assert codes(d.send(f"SITE CHMOD {mode} hello.txt")) == [501]
    assert fs.stat("/hello.txt").st_mode == before


def test_tree_commands(d, fs):
    assert codes(d.send("MKD dir")) == [257]
    assert codes(d.send("CWD dir")) == [250]
    assert codes(d.send("CWD /../..")) == [250] and d.session.cwd == "/"
    assert codes(d.dialogue(["RNFR hello.txt", "RNTO dir/h.txt"])) == [350, 250]
    assert d.listing("NLST", "dir") == "h.txt\r\n"
    assert codes(d.send("DELE dir/h.txt")) == [250]
    assert codes(d.send("RMD dir")) == [250]
    assert codes(d.send("MKD /")) == [550]
    assert codes(d.send("SITE CHMOD 600 pub/a.txt")) == [200]
    assert "unix.mode=0600;" in d.send("MLST pub/a.txt")[0].lines[1]
    assert codes(d.send("MFMT 20200102030405 pub/a.txt")) == [213]
    assert d.send("MDTM pub/a.txt")[0].lines == ("20200102030405",)


def test_listing_patterns(d):
    assert d.listing("NLST", "pub/*.txt") == "pub/a.txt\r\n"  # as ls pub/*.txt prints it
    out = d.listing("LIST", "-la pub")
    assert [ln.split()[-1] for ln in out.split("\r\n") if ln] == ["a.txt", "b.bin"]


def test_symlink_shown_as_virtual_path(d):
    assert codes(d.send("SITE SYMLINK /pub ln")) == [200]
    out = d.listing("LIST")
    assert [ln for ln in out.split("\r\n") if ln.endswith(" ln -> /pub")]
    assert d.listing("NLST", "ln") == "a.txt\r\nb.bin\r\n"


def test_atomic_upload(fs):
    d = Driver(fs=fs, atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.upload = b"payload"
    d.dialogue(["PASV", "STOR pub/up.bin"])
    d.pump()
    assert "up.bin" not in fs.listdir("/pub")
    assert [n for n in fs.listdir("/pub") if n.startswith(TEMP_PREFIX)]
    d.finish(pump=False)
    assert codes(d.replies[-1:]) == [226]
    assert _read(fs, "/pub/up.bin") == b"payload"
    assert not [n for n in fs.listdir("/pub") if n.startswith(TEMP_PREFIX)]
    d.hold = False
    d.transfer_end = A.TransferEnd(A.Outcome.RESET)
    d.stor("pub/fail.bin", b"half")
    assert sorted(fs.listdir("/pub")) == ["a.txt", "b.bin", "up.bin"]


@pytest.mark.parametrize("fs", ["local"], indirect=True)
def test_confinement_on_disk(d, fs):
    d.send("PASV")
    assert codes(d.send("RETR escape")) == [550]
    assert codes(d.send("CWD up")) == [550]
    assert codes(d.send("SIZE up/secret")) == [550]
    assert codes(d.send("SITE SYMLINK escape ln2")) == [550]
    assert codes(d.send("SITE CHMOD 777 escape")) == [550]
    # the link itself may be listed and removed
    assert "escape" in d.listing("NLST")
    assert codes(d.send("DELE escape")) == [250]
    assert os.path.exists(os.path.join(os.path.dirname(fs.root), "secret"))


def test_non_utf8_name(d, fs):
    assert codes(d.stor(b"caf\xe9".decode("utf-8", "surrogateescape"), b"x")) == [227, 150, 226]
    if isinstance(fs, LocalFS):
        assert os.path.exists(os.fsencode(fs.root) + b"/caf\xe9")
    assert codes(d.send(b"SIZE caf\xe9")) == [213]
    assert "caf\udce9\r\n" in d.listing("NLST")
    assert d.downloads[-1].count(b"caf\xe9\r\n") == 1  # the same bytes on the wire
    assert text(d.send(b"MLST caf\xe9")[0]).endswith("End.")


def test_atomic_stou_never_replaces_a_file_created_meanwhile(fs):
    """The unique name was free when STOU chose it; a file created there while the data
    flows is kept, and this STOU fails with 450 (the client may send STOU again)."""
    d = Driver(fs=fs, atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.upload = b"late upload"
    replies = d.dialogue(["PASV", "STOU report"])
    name = replies[-1].lines[0][len("FILE: "):]
    d.pump()
    with fs.open_write(f"/{name}", exclusive=True) as f:
        f.write(b"created meanwhile")
    d.finish(pump=False)
    assert codes(d.replies[-1:]) == [450]
    assert name in text(d.replies[-1]) and "STOU again" in text(d.replies[-1])
    assert _read(fs, f"/{name}") == b"created meanwhile"
    assert not [n for n in fs.listdir("/") if n.startswith(TEMP_PREFIX)]
    ev = [e for e in d.events if e.name == "fs.upload"][-1].data
    assert ev.status == "ERROR"
    d.hold = False
    assert codes(d.stor("report", b"again", "STOU")) == [227, 150, 226]

"""ftplib against the real ``ftpd`` command: every command of the foundation, and binary
round trips (sha256) over PASV, PORT, EPSV and EPRT on 127.0.0.1 and on ::1."""

from __future__ import annotations

import ftplib
import io
import os

import pytest
from fhelpers import ExtFTP, LoopFTP
from ftpsupport import sha256


def lines_of(ftp: ftplib.FTP, cmd: str) -> list[str]:
    out: list[str] = []
    ftp.retrlines(cmd, out.append)
    return out


def test_login_and_session_commands(ftpd_server):
    server = ftpd_server()
    ftp = server.ftp(user=None)
    assert ftp.welcome.startswith("220")
    assert ftp.sendcmd("USER user").startswith("331")
    assert ftp.sendcmd("PASS pw").startswith("230")
    assert ftp.sendcmd("SYST") == "215 UNIX Type: L8"
    assert ftp.sendcmd("NOOP").startswith("200")
    assert ftp.sendcmd("TYPE A").startswith("200")
    assert ftp.sendcmd("TYPE I").startswith("200")
    assert ftp.sendcmd("TYPE L 8").startswith("200")
    assert ftp.sendcmd("TYPE A N").startswith("200")
    assert ftp.sendcmd("MODE S").startswith("200")
    assert ftp.sendcmd("STRU F").startswith("200")
    with pytest.raises(ftplib.error_perm, match="^504"):
        ftp.sendcmd("MODE B")
    with pytest.raises(ftplib.error_perm, match="^504"):
        ftp.sendcmd("STRU R")
    with pytest.raises(ftplib.error_perm, match="^504"):
        ftp.sendcmd("TYPE E")
    assert ftp.pwd() == "/"
    assert ftp.quit().startswith("221")


def test_feat_and_help(ftpd_server):
    server = ftpd_server()
    ftp = server.ftp()
    feat = ftp.sendcmd("FEAT")
    lines = feat.splitlines()
    assert lines[0] == "211-Features:" and lines[-1] == "211 End"
    features = {line.strip().split(" ")[0] for line in lines[1:-1]}
    assert {"EPRT", "EPSV", "MDTM", "MLST", "REST", "SIZE", "UTF8", "MFMT", "TVFS"} <= features
    for line in lines[1:-1]:
        assert line.startswith(" ")  # continuation lines are indented
    help_text = ftp.sendcmd("HELP")
    assert help_text.startswith("214-") and help_text.splitlines()[-1].startswith("214 ")
    for verb in ("RETR", "STOR", "MLSD", "EPSV", "XPWD", "SITE"):
        assert verb in help_text
    assert ftp.sendcmd("HELP RETR").startswith("214")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("HELP NOSUCHVERB")
    ftp.quit()


def test_directories_and_files(ftpd_server):
    server = ftpd_server()
    ftp = server.ftp()
    assert ftp.mkd("d1") == "/d1"
    assert (server.root / "d1").is_dir()
    assert ftp.cwd("d1").startswith("250")
    assert ftp.pwd() == "/d1"
    assert ftp.mkd("inner") == "/d1/inner"
    ftp.cwd("inner")
    assert ftp.pwd() == "/d1/inner"
    assert ftp.sendcmd("CDUP").startswith("250")
    assert ftp.pwd() == "/d1"
    ftp.storbinary("STOR f.bin", io.BytesIO(b"12345"))
    assert (server.root / "d1" / "f.bin").read_bytes() == b"12345"
    assert ftp.size("f.bin") == 5
    assert ftp.rename("f.bin", "g.bin").startswith("250")
    assert not (server.root / "d1" / "f.bin").exists()
    assert (server.root / "d1" / "g.bin").read_bytes() == b"12345"
    assert sorted(ftp.nlst()) == ["g.bin", "inner"]
    listing = lines_of(ftp, "LIST")
    assert any(line.startswith("d") and line.endswith(" inner") for line in listing)
    assert any(line.startswith("-") and line.endswith(" g.bin") for line in listing)
    facts = dict(ftp.mlsd())
    assert facts["g.bin"]["type"] == "file" and facts["g.bin"]["size"] == "5"
    assert facts["inner"]["type"] == "dir"
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.rmd("/d1")  # not empty
    assert ftp.delete("g.bin").startswith("250")
    assert ftp.rmd("inner").startswith("250")
    ftp.cwd("/")
    assert ftp.rmd("d1").startswith("250")
    assert list(server.root.iterdir()) == []
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.cwd("missing")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.delete("missing")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd("RNFR missing")
    with pytest.raises(ftplib.error_perm, match="^503"):
        ftp.sendcmd("RNTO x")
    ftp.quit()


def test_quit_closes(ftpd_server):
    server = ftpd_server()
    ftp = server.ftp()
    assert ftp.quit().startswith("221")
    assert ftp.sock is None


def _round_trip(ftp: ftplib.FTP, root, payload: bytes, name: str) -> None:
    ftp.storbinary(f"STOR {name}", io.BytesIO(payload), blocksize=65536)
    assert sha256(root / name) == sha256(payload)
    assert ftp.size(name) == len(payload)
    got = bytearray()
    ftp.retrbinary(f"RETR {name}", got.extend, blocksize=65536)
    assert sha256(bytes(got)) == sha256(payload)


@pytest.mark.parametrize("mode", ["PASV", "PORT", "EPSV", "EPRT"])
def test_binary_round_trip_ipv4(ftpd_server, payload, mode):
    server = ftpd_server()
    cls = ExtFTP if mode.startswith("E") else LoopFTP
    ftp = server.ftp(cls=cls)
    ftp.set_pasv(mode in ("PASV", "EPSV"))
    _round_trip(ftp, server.root, payload, f"random-{mode}.bin")
    assert f"] {mode} " in server.log()  # the mode we meant is the one used
    ftp.quit()


@pytest.mark.parametrize("mode", ["EPSV", "EPRT"])
def test_binary_round_trip_ipv6(ftpd_server6, payload, mode):
    server = ftpd_server6()
    ftp = server.ftp()
    assert ftp.af == __import__("socket").AF_INET6
    ftp.set_pasv(mode == "EPSV")
    _round_trip(ftp, server.root, payload, f"random-{mode}.bin")
    assert f"] {mode} " in server.log()
    # the IPv4-only commands are refused on an IPv6 control connection
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("PASV")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("PORT 127,0,0,1,200,10")
    with pytest.raises(ftplib.error_perm, match="^522"):
        ftp.sendcmd("EPSV 1")
    ftp.quit()


def test_listings_over_ipv6(ftpd_server6):
    server = ftpd_server6()
    (server.root / "v6.txt").write_bytes(b"six\n")
    ftp = server.ftp()
    assert ftp.nlst() == ["v6.txt"]
    ftp.set_pasv(False)
    assert lines_of(ftp, "LIST")[0].endswith(" v6.txt")
    got = bytearray()
    ftp.retrbinary("RETR v6.txt", got.extend)
    assert bytes(got) == b"six\n"
    ftp.quit()


def test_many_files_in_one_session(ftpd_server):
    """Data connections are opened and closed cleanly, one after another."""
    server = ftpd_server()
    ftp = server.ftp()
    blobs = {f"f{i}.bin": os.urandom(1000 * i + 1) for i in range(20)}
    for i, (name, data) in enumerate(blobs.items()):
        ftp.set_pasv(i % 2 == 0)
        ftp.storbinary(f"STOR {name}", io.BytesIO(data))
    for i, (name, data) in enumerate(blobs.items()):
        ftp.set_pasv(i % 2 == 1)
        got = bytearray()
        ftp.retrbinary(f"RETR {name}", got.extend)
        assert bytes(got) == data
    assert sorted(ftp.nlst()) == sorted(blobs)
    ftp.quit()

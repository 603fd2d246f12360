"""File names as bytes: UTF-8 names, names with spaces, and names that are not UTF-8 at
all, through ftplib (``encoding="latin-1"`` maps each byte to one character) and a raw
control connection."""

from __future__ import annotations

import ftplib
import io
import os

import pytest
from ftpsupport import RawControl

RAW = b"raw\xff.bin"


@pytest.fixture
def server(ftpd_server):
    server = ftpd_server()
    with open(os.path.join(os.fsencode(str(server.root)), RAW), "wb") as f:
        f.write(b"not utf-8 on disk")
    (server.root / "café.txt").write_bytes(b"cafe")
    (server.root / "two  spaces .txt").write_bytes(b"spaces")
    return server


def latin1(server) -> ftplib.FTP:
    return server.ftp(encoding="latin-1")


def test_listing_shows_names_byte_for_byte(server):
    ftp = latin1(server)
    names = ftp.nlst()
    assert "raw\xff.bin" in names
    assert "café.txt".encode().decode("latin-1") in names
    assert "two  spaces .txt" in names
    facts = dict(ftp.mlsd())
    assert facts["raw\xff.bin"]["size"] == str(len(b"not utf-8 on disk"))
    ftp.quit()


def test_utf8_and_spaces_with_default_ftplib(server):
    ftp = server.ftp()
    for name, data in (("café.txt", b"cafe"), ("two  spaces .txt", b"spaces")):
        got = bytearray()
        ftp.retrbinary(f"RETR {name}", got.extend)
        assert bytes(got) == data
    ftp.storbinary("STOR naïve ünïcode.txt", io.BytesIO(b"u"))
    assert (server.root / "naïve ünïcode.txt").read_bytes() == b"u"
    ftp.quit()


def test_non_utf8_name_with_doubled_iac(server):
    """RFC 959 control connections are Telnet: a 0xFF data byte is sent as IAC IAC."""
    with RawControl(server.host, server.port) as c:
        c.login()
        c.cmd("TYPE I")
        code, text = c.cmd(b"SIZE raw\xff\xff.bin")
        assert code == 213 and text == f"213 {len(b'not utf-8 on disk')}"
        code, _ = c.cmd(b"RNFR raw\xff\xff.bin")
        assert code == 350
        assert c.cmd(b"RNTO new\xff\xff.bin")[0] == 250
    assert os.path.exists(os.path.join(os.fsencode(str(server.root)), b"new\xff.bin"))


def test_non_utf8_name_as_clients_send_it(server):
    ftp = latin1(server)
    ftp.voidcmd("TYPE I")
    assert ftp.size("raw\xff.bin") == len(b"not utf-8 on disk")
    got = bytearray()
    ftp.retrbinary("RETR raw\xff.bin", got.extend)
    assert bytes(got) == b"not utf-8 on disk"
    ftp.storbinary("STOR up\xff.bin", io.BytesIO(b"up"))
    assert os.path.exists(os.path.join(os.fsencode(str(server.root)), b"up\xff.bin"))
    ftp.quit()


def test_iac_sb_in_a_name_does_not_swallow_the_session(server):
    with RawControl(server.host, server.port) as c:
        c.sock.settimeout(1)
        c.login()
        assert c.cmd(b"CWD \xff\xfaname")[0] == 550
        assert c.cmd("NOOP")[0] == 200

"""Confinement to the root, through the real ``ftpd`` command: ``..`` stops at ``/``,
absolute paths are resolved from the root, and a symlink whose real location is outside
the root is refused with 550 for reading, listing, changing into and writing."""

from __future__ import annotations

import ftplib
import io
import os

import pytest


@pytest.fixture
def setup(ftpd_server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret\n")
    server = ftpd_server()
    root = server.root
    (root / "a.txt").write_bytes(b"a\n")
    (root / "sub").mkdir()
    (root / "sub" / "in.txt").write_bytes(b"in\n")
    os.symlink("/etc", root / "etc_link")
    os.symlink(outside, root / "out")
    os.symlink("../outside/secret.txt", root / "rel_secret")
    os.symlink(outside / "target.txt", root / "dangling_out")  # does not exist yet
    os.symlink("sub", root / "inside_link")  # stays inside: allowed
    return server, outside


def perm(fn, *args):
    with pytest.raises(ftplib.error_perm) as info:
        fn(*args)
    return str(info.value)


def test_dotdot_stops_at_root(setup):
    server, _ = setup
    ftp = server.ftp()
    for path in ("..", "../..", "/../..", "/..", "sub/../../.."):
        ftp.cwd("/")
        ftp.cwd(path)
        assert ftp.pwd() == "/", path
    ftp.sendcmd("CDUP")
    assert ftp.pwd() == "/"
    ftp.cwd("/sub")
    ftp.cwd("../../sub")
    assert ftp.pwd() == "/sub"
    assert ftp.nlst("../../..") == ftp.nlst("/")
    ftp.quit()


def test_paths_outside_are_not_found(setup):
    server, _ = setup
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    for path in ("../../etc/passwd", "/etc/passwd", "/../../../etc/passwd", "sub/../../passwd"):
        assert perm(ftp.retrbinary, f"RETR {path}", lambda b: None).startswith("550"), path
        assert perm(ftp.size, path).startswith("550")
    ftp.cwd("sub")
    got = bytearray()
    ftp.retrbinary("RETR ../a.txt", got.extend)  # .. inside the root is fine
    assert bytes(got) == b"a\n"
    ftp.quit()


def test_symlink_to_etc_is_refused(setup):
    server, _ = setup
    ftp = server.ftp()
    assert perm(ftp.cwd, "etc_link").startswith("550")
    assert ftp.pwd() == "/"
    assert perm(ftp.retrbinary, "RETR etc_link/passwd", lambda b: None).startswith("550")
    assert perm(ftp.retrlines, "LIST etc_link", lambda line: None).startswith("550")
    assert perm(ftp.retrlines, "LIST etc_link/", lambda line: None).startswith("550")
    assert perm(ftp.retrlines, "NLST etc_link", lambda line: None).startswith("550")
    assert perm(ftp.retrlines, "MLSD etc_link", lambda line: None).startswith("550")
    assert perm(ftp.sendcmd, "MLST etc_link/passwd").startswith("550")
    assert perm(ftp.sendcmd, "STAT etc_link").startswith("550")
    assert perm(ftp.sendcmd, "SIZE etc_link/passwd").startswith("550")
    assert perm(ftp.sendcmd, "MDTM etc_link/passwd").startswith("550")
    # the link itself is listed like any entry, and nothing of /etc leaks
    names = ftp.nlst()
    assert "etc_link" in names and "passwd" not in names
    ftp.quit()


def test_symlinks_to_files_outside_are_refused(setup):
    server, _ = setup
    ftp = server.ftp()
    for path in ("out/secret.txt", "rel_secret"):
        assert perm(ftp.retrbinary, f"RETR {path}", lambda b: None).startswith("550")
        assert perm(ftp.size, path).startswith("550")
    ftp.quit()


def test_no_writes_through_links_outside(setup):
    server, outside = setup
    mode = (outside / "secret.txt").stat().st_mode
    ftp = server.ftp()
    assert perm(ftp.storbinary, "STOR out/new.txt", io.BytesIO(b"x")).startswith("550")
    assert perm(ftp.storbinary, "STOR dangling_out", io.BytesIO(b"x")).startswith("550")
    assert perm(ftp.storbinary, "APPE rel_secret", io.BytesIO(b"x")).startswith("550")
    assert perm(ftp.mkd, "out/newdir").startswith("550")
    assert perm(ftp.delete, "out/secret.txt").startswith("550")
    assert perm(ftp.sendcmd, "SITE CHMOD 777 out/secret.txt").startswith("550")
    assert perm(ftp.sendcmd, "MFMT 20000101000000 rel_secret").startswith("550")
    assert perm(ftp.sendcmd, "SITE SYMLINK out/secret.txt mylink").startswith("550")
    assert perm(ftp.sendcmd, "RNFR out/secret.txt").startswith("550")
    ftp.sendcmd("RNFR a.txt")
    assert perm(ftp.sendcmd, "RNTO out/a.txt").startswith("550")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret\n"
    assert (outside / "secret.txt").stat().st_mode == mode
    assert not (server.root / "mylink").exists()
    # deleting the link removes the link, never what it points to
    assert ftp.delete("out").startswith("250")
    assert not os.path.lexists(server.root / "out") and (outside / "secret.txt").exists()
    ftp.quit()


def test_symlink_inside_the_root_works(setup):
    server, _ = setup
    ftp = server.ftp()
    ftp.cwd("inside_link")
    assert ftp.nlst() == ["in.txt"]
    got = bytearray()
    ftp.retrbinary("RETR /inside_link/in.txt", got.extend)
    assert bytes(got) == b"in\n"
    ftp.quit()

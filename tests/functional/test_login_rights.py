"""Who may log in and what they may do, through the real ``ftpd`` command: anonymous
read-only by default, ``-w`` for anonymous writes, ``-n`` without anonymous, and the
full-rights user of ``-u``/``-P`` or ``FTPD_PASSWORD``."""

from __future__ import annotations

import ftplib
import io

import pytest
from ftpsupport import RawControl


def seed(server) -> None:
    (server.root / "readme.txt").write_bytes(b"read me\n")
    (server.root / "dir").mkdir()


def refused(fn, *args) -> str:
    with pytest.raises(ftplib.error_perm) as info:
        fn(*args)
    return str(info.value)[:3]


@pytest.mark.parametrize("name", ["anonymous", "ftp", "ANONYMOUS"])
def test_anonymous_is_read_only(ftpd_server, name):
    server = ftpd_server()
    seed(server)
    ftp = server.ftp(name, "guest@example.org")
    got = bytearray()
    ftp.retrbinary("RETR readme.txt", got.extend)
    assert bytes(got) == b"read me\n"
    assert "readme.txt" in ftp.nlst()
    ftp.cwd("dir")
    ftp.cwd("/")
    assert refused(ftp.storbinary, "STOR new.txt", io.BytesIO(b"x")) == "550"
    assert refused(ftp.storbinary, "APPE readme.txt", io.BytesIO(b"x")) == "550"
    assert refused(ftp.storbinary, "STOU", io.BytesIO(b"x")) == "550"
    assert refused(ftp.mkd, "newdir") == "550"
    assert refused(ftp.rmd, "dir") == "550"
    assert refused(ftp.delete, "readme.txt") == "550"
    assert refused(ftp.sendcmd, "RNFR readme.txt") == "550"
    assert refused(ftp.sendcmd, "SITE CHMOD 777 readme.txt") == "550"
    assert refused(ftp.sendcmd, "MFMT 20000101000000 readme.txt") == "550"
    assert refused(ftp.sendcmd, "SITE SYMLINK readme.txt l") == "550"
    assert sorted(p.name for p in server.root.iterdir()) == ["dir", "readme.txt"]
    assert (server.root / "readme.txt").read_bytes() == b"read me\n"
    ftp.quit()


def test_anonymous_may_write_with_w(ftpd_server):
    server = ftpd_server("-w")
    seed(server)
    ftp = server.ftp("anonymous", "guest@")
    ftp.storbinary("STOR new.txt", io.BytesIO(b"new"))
    assert (server.root / "new.txt").read_bytes() == b"new"
    ftp.storbinary("APPE new.txt", io.BytesIO(b"er"))
    assert (server.root / "new.txt").read_bytes() == b"newer"
    assert ftp.mkd("made") == "/made"
    ftp.rename("new.txt", "made/moved.txt")
    assert (server.root / "made" / "moved.txt").read_bytes() == b"newer"
    ftp.delete("made/moved.txt")
    ftp.rmd("made")
    assert sorted(p.name for p in server.root.iterdir()) == ["dir", "readme.txt"]
    ftp.quit()


def test_no_anonymous(ftpd_server):
    server = ftpd_server("-n")
    seed(server)
    for name in ("anonymous", "ftp"):
        with RawControl(server.host, server.port) as c:
            assert c.cmd(f"USER {name}")[0] == 331
            assert c.cmd("PASS guest@")[0] == 530
            assert c.cmd("PWD")[0] == 530
    ftp = server.ftp()  # the named user still gets in
    assert ftp.nlst() == ["dir", "readme.txt"]
    ftp.quit()


def test_named_user_has_full_rights(ftpd_server):
    server = ftpd_server()
    seed(server)
    ftp = server.ftp("user", "pw")
    ftp.storbinary("STOR w.txt", io.BytesIO(b"w"))
    ftp.sendcmd("SITE CHMOD 640 w.txt")
    ftp.sendcmd("SITE SYMLINK w.txt link.txt")
    ftp.sendcmd("MFMT 20200101000000 w.txt")
    ftp.rename("w.txt", "dir/w.txt")
    assert (server.root / "dir" / "w.txt").read_bytes() == b"w"
    ftp.delete("link.txt")
    ftp.quit()


def test_wrong_password(ftpd_server):
    server = ftpd_server("-n", "--max-login-attempts", "2")
    with RawControl(server.host, server.port) as c:
        assert c.cmd("USER user")[0] == 331
        assert c.cmd("PASS wrong")[0] == 530
        assert c.cmd("USER nobody")[0] == 331  # 331 whether or not the user exists
        assert c.cmd("PASS pw")[0] == 530
        assert c.wait_closed()  # the second failure ends the session
    ftp = server.ftp("user", "pw")
    ftp.quit()


def test_password_from_environment(ftpd_server):
    server = ftpd_server("-u", "envuser", "-n", user=None, env={"FTPD_PASSWORD": "s3cret"})
    seed(server)
    ftp = server.ftp("envuser", "s3cret")
    ftp.storbinary("STOR env.txt", io.BytesIO(b"env"))
    assert (server.root / "env.txt").read_bytes() == b"env"
    ftp.quit()
    with pytest.raises(ftplib.error_perm, match="^530"):
        server.ftp("envuser", "wrong")


def test_command_line_password_wins_over_environment(ftpd_server):
    server = ftpd_server("-n", env={"FTPD_PASSWORD": "from-env"})
    ftp = server.ftp("user", "pw")
    ftp.quit()
    with pytest.raises(ftplib.error_perm, match="^530"):
        server.ftp("user", "from-env")


def test_commands_need_login(ftpd_server):
    server = ftpd_server()
    seed(server)
    with RawControl(server.host, server.port) as c:
        for cmd in ("PWD", "CWD dir", "LIST", "RETR readme.txt", "STOR x", "MKD x",
                    "SIZE readme.txt", "PASV", "EPSV", "MLST", "DELE readme.txt"):
            assert c.cmd(cmd)[0] == 530, cmd
        assert c.cmd("PASS pw")[0] == 503  # PASS before USER
        for cmd in ("SYST", "NOOP", "FEAT", "HELP"):  # these need no login
            assert c.cmd(cmd)[0] in (211, 214, 215, 200), cmd

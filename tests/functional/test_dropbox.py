"""--anonymous-upload DIR through the real ``ftpd`` command, with ftplib and curl: the
classic drop box. Anonymous stores new files there and does nothing else there; an
existing file survives an overwrite attempt byte for byte; other users are unaffected."""

from __future__ import annotations

import ftplib
import io
import shutil
import subprocess

import pytest
from ftpsupport import DEADLINE, ftpd_argv, sha256

from ftpd import config

ANON = ("anonymous", "guest@example.org")


@pytest.fixture
def dropbox(ftpd_server, tmp_path):
    root = tmp_path / "root"
    (root / "incoming" / "sub").mkdir(parents=True)
    (root / "pub").mkdir()
    (root / "incoming" / "old.txt").write_bytes(b"the original")
    (root / "incoming" / "sub" / "deep.txt").write_bytes(b"deep")
    (root / "pub" / "file.txt").write_bytes(b"public")

    def start(*args: str):
        return ftpd_server("--anonymous-upload", "incoming", *args, root=root)

    return start


def refused(call, *args) -> str:
    with pytest.raises(ftplib.error_perm) as info:
        call(*args)
    assert str(info.value).startswith("550"), info.value
    return str(info.value)


def test_anonymous_uploads_new_files_and_nothing_else(dropbox):
    server = dropbox()
    old = server.root / "incoming" / "old.txt"
    digest = sha256(old)
    ftp = server.ftp(*ANON)
    assert ftp.cwd("incoming").startswith("250")
    assert ftp.storbinary("STOR new.bin", io.BytesIO(b"dropped")).startswith("226")
    assert (server.root / "incoming" / "new.bin").read_bytes() == b"dropped"
    refused(ftp.storbinary, "STOR old.txt", io.BytesIO(b"an overwrite"))
    assert sha256(old) == digest
    refused(ftp.retrbinary, "RETR old.txt", bytearray().extend)
    refused(ftp.retrbinary, "RETR new.bin", bytearray().extend)
    refused(ftp.retrlines, "LIST", [].append)
    refused(ftp.retrlines, "LIST -la /incoming", [].append)
    refused(ftp.nlst)
    refused(lambda: list(ftp.mlsd()))
    refused(ftp.sendcmd, "MLST old.txt")
    refused(ftp.sendcmd, "STAT .")
    ftp.voidcmd("TYPE I")
    refused(ftp.size, "old.txt")
    refused(ftp.sendcmd, "MDTM old.txt")
    refused(ftp.delete, "old.txt")
    refused(ftp.sendcmd, "RNFR old.txt")
    refused(ftp.storbinary, "APPE old.txt", io.BytesIO(b"more"))
    refused(ftp.storbinary, "STOR old.txt", io.BytesIO(b"resumed"), 8192, None, 3)  # REST 3
    refused(ftp.mkd, "newdir")
    refused(ftp.rmd, "sub")
    refused(ftp.sendcmd, "SITE CHMOD 666 old.txt")
    refused(ftp.sendcmd, "MFMT 20200101000000 old.txt")
    refused(ftp.cwd, "sub")
    refused(ftp.storbinary, "STOR sub/x.bin", io.BytesIO(b"x"))
    assert sha256(old) == digest
    assert sorted(p.name for p in (server.root / "incoming").iterdir()) == [
        "new.bin", "old.txt", "sub"]
    ftp.quit()


def test_stou_into_the_drop_box(dropbox):
    server = dropbox()
    ftp = server.ftp(*ANON)
    ftp.cwd("/incoming")
    reply = ftp.storbinary("STOU", io.BytesIO(b"unique"))
    assert reply.startswith("226")
    made = [p for p in (server.root / "incoming").iterdir() if p.name.startswith("ftpd.")]
    assert len(made) == 1 and made[0].read_bytes() == b"unique"
    ftp.quit()


def test_anonymous_is_read_only_elsewhere(dropbox):
    server = dropbox()
    ftp = server.ftp(*ANON)
    got = bytearray()
    ftp.retrbinary("RETR /pub/file.txt", got.extend)
    assert got == b"public"
    assert "incoming" in ftp.nlst("/")
    refused(ftp.storbinary, "STOR /pub/x.bin", io.BytesIO(b"x"))
    refused(ftp.mkd, "/pub/d")
    assert [p.name for p in (server.root / "pub").iterdir()] == ["file.txt"]
    ftp.quit()


def test_with_write_the_box_rules_still_hold(dropbox):
    server = dropbox("-w")
    old = server.root / "incoming" / "old.txt"
    digest = sha256(old)
    ftp = server.ftp(*ANON)
    assert ftp.storbinary("STOR /pub/x.bin", io.BytesIO(b"x")).startswith("226")
    refused(ftp.storbinary, "STOR /incoming/old.txt", io.BytesIO(b"an overwrite"))
    refused(ftp.delete, "/incoming/old.txt")
    refused(ftp.retrlines, "LIST /incoming", [].append)
    refused(ftp.sendcmd, "RNFR /incoming")
    assert sha256(old) == digest
    ftp.quit()


def test_other_users_are_unaffected(dropbox):
    server = dropbox()
    ftp = server.ftp()
    assert "old.txt" in ftp.nlst("/incoming")
    got = bytearray()
    ftp.retrbinary("RETR /incoming/old.txt", got.extend)
    assert got == b"the original"
    ftp.storbinary("STOR /incoming/old.txt", io.BytesIO(b"replaced"))
    assert (server.root / "incoming" / "old.txt").read_bytes() == b"replaced"
    ftp.quit()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_uploads_but_cannot_overwrite_or_list(dropbox, tmp_path):
    server = dropbox()
    src = tmp_path / "up.bin"
    src.write_bytes(b"from curl")
    url = f"ftp://{server.netloc}/incoming/"

    def curl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["curl", "-sS", "--max-time", str(int(DEADLINE)), *args],
                              capture_output=True, timeout=DEADLINE + 5)

    assert curl("-T", str(src), url).returncode == 0
    assert (server.root / "incoming" / "up.bin").read_bytes() == b"from curl"
    src.write_bytes(b"an overwrite")
    assert curl("-T", str(src), url).returncode != 0  # 550
    assert (server.root / "incoming" / "up.bin").read_bytes() == b"from curl"
    assert curl(url).returncode != 0  # the listing is refused
    assert curl("-o", str(tmp_path / "got"), url + "old.txt").returncode != 0


@pytest.mark.parametrize("args, message", [
    (["--anonymous-upload", "/"], "--anonymous-upload: must be a directory below the root"),
    (["--anonymous-upload", "..", "-u", "u", "-P", "p"], "--anonymous-upload: must be a"),
    (["--anonymous-upload", "incoming", "-n", "-u", "u", "-P", "p"],
     "--anonymous-upload needs anonymous logins"),
])
def test_bad_values_are_one_line_and_exit_2(tmp_path, args, message):
    done = subprocess.run(ftpd_argv("-r", str(tmp_path), "-l", "127.0.0.1:1", *args),
                          capture_output=True, text=True, timeout=DEADLINE,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_the_setting_is_a_virtual_path(tmp_path):
    assert config.resolve({"anonymous_upload": "incoming/"}, str(tmp_path)).anonymous_upload \
        == "/incoming"
    assert config.resolve({"anonymous_upload": "/pub/../incoming"},
                          str(tmp_path)).anonymous_upload == "/incoming"


def test_a_missing_drop_box_is_warned_about(ftpd_server, tmp_path):
    server = ftpd_server("--anonymous-upload", "/nowhere")
    assert "--anonymous-upload" in server.log() and "not a directory" in server.log()

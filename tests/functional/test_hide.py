"""--hide PATTERN and dot files through the real ``ftpd`` command, with ftplib and curl:
hidden names never appear in a listing and every command naming one gets the reply a
missing file gets; ``.name`` is listed by LIST/NLST only with -a, by MLSD always."""

from __future__ import annotations

import ftplib
import io
import shutil
import subprocess

import pytest
from fhelpers import tree_digest
from ftpsupport import DEADLINE, ftpd_argv


@pytest.fixture
def hidden(ftpd_server, tmp_path):
    root = tmp_path / "root"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_bytes(b"secret")
    (root / "sub").mkdir()
    (root / "a.txt").write_bytes(b"a")
    (root / ".profile").write_bytes(b"dot")
    (root / "big.part").write_bytes(b"partial")
    (root / "sub" / "x.part").write_bytes(b"partial too")
    return ftpd_server("--hide", ".git", "--hide", "*.part", root=root)


def lines(ftp: ftplib.FTP, cmd: str) -> list[str]:
    out: list[str] = []
    ftp.retrlines(cmd, out.append)
    return out


def test_listings(hidden):
    ftp = hidden.ftp()
    assert sorted(ftp.nlst()) == ["a.txt", "sub"]
    assert sorted(line.split()[-1] for line in lines(ftp, "LIST")) == ["a.txt", "sub"]
    assert sorted(line.split()[-1] for line in lines(ftp, "LIST -a")) == [
        ".profile", "a.txt", "sub"]
    assert sorted(line.split()[-1] for line in lines(ftp, "LIST -la")) == [
        ".profile", "a.txt", "sub"]
    assert sorted(lines(ftp, "NLST -a")) == [".profile", "a.txt", "sub"]
    assert sorted(name for name, _ in ftp.mlsd()) == [".profile", "a.txt", "sub"]
    assert ftp.nlst("sub") == []
    stat = ftp.sendcmd("STAT -a /")
    assert ".profile" in stat and ".git" not in stat and "big.part" not in stat
    ftp.quit()


def test_every_command_is_refused_like_a_missing_file(hidden):
    before = tree_digest(hidden.root)
    ftp = hidden.ftp()
    ftp.voidcmd("TYPE I")
    missing = str(pytest.raises(ftplib.error_perm, ftp.size, "no-such-file").value)
    assert missing.startswith("550")
    attempts = [
        (ftp.cwd, ".git"), (ftp.size, "big.part"), (ftp.sendcmd, "MDTM sub/x.part"),
        (ftp.delete, "big.part"), (ftp.sendcmd, "RNFR .git"), (ftp.mkd, "new.part"),
        (ftp.rmd, ".git"), (ftp.sendcmd, "MLST .git/config"), (ftp.sendcmd, "STAT big.part"),
        (ftp.sendcmd, "SITE CHMOD 600 big.part"), (ftp.sendcmd, "MFMT 20200101000000 big.part"),
        (ftp.sendcmd, "SITE SYMLINK a.txt link.part"),
        (ftp.retrbinary, "RETR .git/config", bytearray().extend),
        (ftp.retrbinary, "RETR big.part", bytearray().extend),
        (ftp.storbinary, "STOR new.part", io.BytesIO(b"n")),
        (ftp.storbinary, "APPE big.part", io.BytesIO(b"n")),
        (ftp.retrlines, "LIST .git", [].append), (ftp.nlst, ".git"),
    ]
    for call, *args in attempts:
        with pytest.raises(ftplib.error_perm) as info:
            call(*args)
        assert str(info.value) == missing, (args, info.value)
    assert ftp.sendcmd("RNFR a.txt").startswith("350")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd("RNTO a.part")
    ftp.quit()
    assert tree_digest(hidden.root) == before


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(hidden, tmp_path):
    def curl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["curl", "-sS", "--max-time", str(int(DEADLINE)), *args],
                              capture_output=True, timeout=DEADLINE + 5)

    listing = curl("--list-only", hidden.url("/"))
    assert listing.returncode == 0
    assert sorted(listing.stdout.decode().split()) == ["a.txt", "sub"]
    got = curl("-o", str(tmp_path / "got"), hidden.url("/.git/config"))
    assert got.returncode != 0 and not (tmp_path / "got").exists()
    assert curl("-o", str(tmp_path / "dot"), hidden.url("/.profile")).returncode == 0
    assert (tmp_path / "dot").read_bytes() == b"dot"


@pytest.mark.parametrize("pattern", ["", "a/b", "..", "x" * 256])
def test_bad_patterns_are_one_line_and_exit_2(tmp_path, pattern):
    done = subprocess.run(ftpd_argv("-r", str(tmp_path), "-l", "127.0.0.1:1", "--hide", pattern),
                          capture_output=True, text=True, timeout=DEADLINE,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].count("--hide") == 1, lines


def test_hide_in_the_config_file(ftpd_server, tmp_path):
    conf = tmp_path / "ftpd.toml"
    conf.write_text('hide = ["*.part", ".git"]\n')
    root = tmp_path / "root"
    root.mkdir()
    (root / "keep.txt").write_bytes(b"k")
    (root / "drop.part").write_bytes(b"d")
    server = ftpd_server("-c", str(conf), root=root)
    ftp = server.ftp()
    assert ftp.nlst() == ["keep.txt"]
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.size("drop.part")
    ftp.quit()

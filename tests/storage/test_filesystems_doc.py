"""The worked example of docs/FILESYSTEMS.md is real: the ZipFS class in it serves an
archive through a running server (listings, downloads, REST, refused writes)."""

from __future__ import annotations

import ftplib
import io
import re
import zipfile
from pathlib import Path

import pytest
from ftpsupport import DEADLINE

from ftpd.embed import FTPServer
from ftpd.fs.base import FileSystem

DOC = Path(__file__).resolve().parents[2] / "docs" / "FILESYSTEMS.md"


def _zipfs_class() -> type:
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block, "no python block in docs/FILESYSTEMS.md"
    namespace: dict = {}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)
    return namespace["ZipFS"]


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "site.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("README", b"read me\n")
        z.writestr("docs/guide.txt", b"0123456789" * 100)
        z.writestr("docs/deep/x.bin", bytes(range(256)))
    return path


def test_the_documented_zip_filesystem_serves_an_archive(archive):
    fs = _zipfs_class()(str(archive))
    assert isinstance(fs, FileSystem)
    with FTPServer(fs, users={"alice": "pw"}) as server:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=DEADLINE)
        ftp.login("alice", "pw")
        assert sorted(ftp.nlst()) == ["README", "docs"]
        ftp.cwd("docs")
        assert sorted(ftp.nlst()) == ["deep", "guide.txt"]
        ftp.voidcmd("TYPE I")
        assert ftp.size("guide.txt") == 1000
        got = io.BytesIO()
        ftp.retrbinary("RETR guide.txt", got.write, rest=990)
        assert got.getvalue() == b"0123456789"
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        assert any(line.startswith("d") and line.endswith("deep") for line in lines)
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.storbinary("STOR new.txt", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.mkd("more")
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.cwd("/nothere")
        assert ftp.voidcmd("NOOP").startswith("200")
        ftp.quit()

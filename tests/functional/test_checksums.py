"""Checksums with real clients: HASH, OPTS HASH and XMD5/XSHA1/XSHA256/XCRC of a
multi-MiB file over ftplib and lftp (``quote HASH``) against hashlib and zlib; a
symlink out of the root is refused as RETR refuses it; and a file whose read hangs
holds up only the session hashing it (other sessions answer NOOP meanwhile, and the
digest follows once the read goes on: deterministic, the read waits on an Event)."""

from __future__ import annotations

import ftplib
import hashlib
import shutil
import subprocess
import threading
import zlib

import pytest
from ftpsupport import DEADLINE, RawControl

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS

LFTP = shutil.which("lftp")
ALGORITHMS = {"SHA-256": "sha256", "SHA-1": "sha1", "MD5": "md5"}
LEGACY = {"XMD5": "md5", "XSHA1": "sha1", "XSHA256": "sha256"}


def crc32(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


@pytest.fixture
def served(ftpd_server, tmp_path, payload):
    root = tmp_path / "root"
    root.mkdir()
    (root / "big file.bin").write_bytes(payload)
    (root / "sub").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours\n")
    (root / "escape").symlink_to(outside)
    return ftpd_server(root=root)


def test_hash_and_the_legacy_commands_over_ftplib(served, payload):
    ftp = served.ftp()
    size = len(payload)
    for name, lib in ALGORITHMS.items():
        assert ftp.sendcmd(f"OPTS HASH {name.lower()}") == f"200 {name}"
        digest = hashlib.new(lib, payload).hexdigest()
        assert ftp.sendcmd("HASH big file.bin") == f"213 {name} 0-{size - 1} {digest} big file.bin"
    assert ftp.sendcmd("OPTS HASH CRC32") == "200 CRC32"
    assert ftp.sendcmd("HASH big file.bin").split()[3] == crc32(payload)
    for verb, lib in LEGACY.items():
        assert ftp.sendcmd(f"{verb} big file.bin") == f"250 {hashlib.new(lib, payload).hexdigest()}"
        part = payload[1000:size - 7]
        assert ftp.sendcmd(f"{verb} big file.bin 1000 {size - 7}") == \
            f"250 {hashlib.new(lib, part).hexdigest()}"
    assert ftp.sendcmd("XCRC big file.bin") == f"250 {crc32(payload)}"
    ftp.sendcmd("TYPE A")  # the digest is of the stored bytes, whatever the TYPE
    assert ftp.sendcmd("XCRC big file.bin") == f"250 {crc32(payload)}"
    ftp.quit()


def test_feat_and_help_over_ftplib(served):
    ftp = served.ftp()
    feat = ftp.sendcmd("FEAT").splitlines()
    assert " HASH SHA-256*;SHA-1;MD5;CRC32" in feat
    assert {" XCRC", " XMD5", " XSHA1", " XSHA256"} <= set(feat)
    ftp.sendcmd("OPTS HASH MD5")
    assert " HASH SHA-256;SHA-1;MD5*;CRC32" in ftp.sendcmd("FEAT").splitlines()
    words = ftp.sendcmd("HELP").split()
    assert {"HASH", "XCRC", "XMD5", "XSHA1", "XSHA256"} <= set(words)
    ftp.quit()


def test_refusals_over_ftplib(served):
    anon = served.ftp(user=None)
    with pytest.raises(ftplib.error_perm, match="^530"):
        anon.sendcmd("HASH big file.bin")
    anon.close()
    ftp = served.ftp()
    for line, code in [("HASH missing", "550"), ("HASH sub", "553"), ("XMD5 sub", "550"),
                       ("HASH escape", "550"), ("XSHA256 escape", "550"),
                       ("OPTS HASH SHA-512", "501"), ("XMD5 big file.bin 9 3", "501")]:
        with pytest.raises(ftplib.error_perm, match=f"^{code}"):
            ftp.sendcmd(line)
    with pytest.raises(ftplib.error_perm, match="^550"):  # as RETR refuses it
        ftp.retrbinary("RETR escape", lambda _b: None)
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()


@pytest.mark.skipif(LFTP is None, reason="lftp is not installed")
def test_lftp_quote_hash(served, payload, tmp_path):
    settings = ("set net:max-retries 1; set net:timeout 10; set cmd:fail-exit yes; "
                "set ftp:ssl-allow false; ")
    opening = f"open -u {served.user},{served.password} ftp://{served.host}:{served.port}; "
    script = 'quote OPTS HASH SHA-1; quote HASH "big file.bin"; quote XCRC "big file.bin"'
    proc = subprocess.run([LFTP, "-c", settings + opening + script], capture_output=True,
                          timeout=DEADLINE * 3, stdin=subprocess.DEVNULL,
                          env={"HOME": str(tmp_path), "LC_ALL": "C.UTF-8",
                               "PATH": "/usr/bin:/bin"})
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, out + proc.stderr.decode("utf-8", "replace")
    sha1 = hashlib.sha1(payload).hexdigest()
    assert f"213 SHA-1 0-{len(payload) - 1} {sha1} big file.bin" in out
    assert f"250 {crc32(payload)}" in out


class _HangingReader:
    """A file whose first read waits until the test lets it go on."""

    def __init__(self, inner, entered: threading.Event, gate: threading.Event) -> None:
        self.inner, self.entered, self.gate = inner, entered, gate
        self.gave_up = False

    def read(self, n: int = -1) -> bytes:
        if not self.entered.is_set():
            self.entered.set()
            self.gave_up = not self.gate.wait(DEADLINE)
        return self.inner.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def close(self) -> None:
        self.inner.close()


class HangingFS(MemoryFS):
    def __init__(self, files) -> None:
        super().__init__(files)
        self.entered, self.gate = threading.Event(), threading.Event()
        self.readers: list[_HangingReader] = []

    def open_read(self, vpath):
        reader = _HangingReader(super().open_read(vpath), self.entered, self.gate)
        self.readers.append(reader)
        return reader


def _login(port: int) -> RawControl:
    c = RawControl("127.0.0.1", port)
    c.expect("USER alice", 331)
    c.expect("PASS pw", 230)
    return c


def test_a_hash_whose_read_hangs_holds_up_only_its_own_session():
    data = bytes(range(256)) * 8192  # 2 MiB
    fs = HangingFS({"/big.bin": data})
    with FTPServer(fs, users={"alice": "pw"}) as server:
        with _login(server.port) as a:
            a.send_line("HASH big.bin")
            a.send_line("NOOP")  # pipelined: answered after the HASH, in order
            assert fs.entered.wait(DEADLINE), "the HASH never read the file"
            with _login(server.port) as b:
                b.expect("NOOP", 200)
                b.expect("XCRC big.bin", 250)  # another session hashes meanwhile
            fs.gate.set()
            code, line = a.reply()
            assert (code, line) == (213, f"213 SHA-256 0-{len(data) - 1} "
                                         f"{hashlib.sha256(data).hexdigest()} big.bin")
            assert a.reply()[0] == 200
    assert not any(r.gave_up for r in fs.readers)


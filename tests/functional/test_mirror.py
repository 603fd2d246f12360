"""Whole trees through real mirroring clients: ``wget -m`` and ``lftp mirror`` (down)
and ``lftp mirror -R`` (up), compared byte for byte. The tree holds a name with spaces,
a non-ASCII UTF-8 name and a name that is not UTF-8 at all (b"raw\\xff.bin")."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fhelpers import tree_digest
from ftpsupport import DEADLINE

WGET = shutil.which("wget")
LFTP = shutil.which("lftp")
RAW_NAME = b"raw\xff.bin"  # not UTF-8: reachable byte for byte (surrogateescape)


def make_tree(root: Path, raw: bool = True) -> dict[bytes, str]:
    files = {
        b"a.txt": b"plain\n",
        b"with space.txt": b"spaces in the name\n",
        "café.txt".encode(): "caf\u00e9\n".encode(),
        b"sub/nested.bin": os.urandom(300_000),
        b"sub/deeper/z.txt": b"z\r\nwith a CR LF inside\n",
        b"sub/dir with space/e f.txt": b"e f\n",
    }
    if raw:
        files[RAW_NAME] = b"\x00\xffnot utf-8\n"
        files[b"sub/" + RAW_NAME] = os.urandom(5000)
    base = os.fsencode(str(root))
    for rel, data in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return tree_digest(root)


def run(argv: list[str], home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, timeout=DEADLINE * 3, cwd=cwd,
                          stdin=subprocess.DEVNULL,
                          env={**os.environ, "HOME": str(home), "LC_ALL": "C.UTF-8"})
    return proc


def output(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr).decode("utf-8", "replace")


# -- wget ------------------------------------------------------------------------------
def wget_mirror(server, dest: Path, home: Path) -> subprocess.CompletedProcess:
    dest.mkdir()
    return run([WGET, "-m", "-nH", "--no-verbose", "--tries=1", f"--timeout={DEADLINE}",
                "--no-proxy", "-P", str(dest), server.url("/")], home)


@pytest.mark.skipif(WGET is None, reason="wget is not installed")
def test_wget_mirror(ftpd_server, tmp_path):
    server = ftpd_server()
    expected = make_tree(server.root, raw=False)
    proc = wget_mirror(server, tmp_path / "wget", tmp_path)
    assert proc.returncode == 0, output(proc)
    assert tree_digest(tmp_path / "wget", ignore=(b".listing",)) == expected


@pytest.mark.skipif(WGET is None, reason="wget is not installed")
def test_wget_single_files_active_and_passive(ftpd_server, tmp_path):
    server = ftpd_server()
    make_tree(server.root, raw=False)
    for mode in ("--passive-ftp", "--no-passive-ftp"):
        dest = tmp_path / mode.strip("-")
        dest.mkdir()
        proc = run([WGET, "--no-verbose", "--tries=1", f"--timeout={DEADLINE}", "--no-proxy",
                    mode, "-P", str(dest), server.url("sub/nested.bin"),
                    server.url("with space.txt")], tmp_path)
        assert proc.returncode == 0, output(proc)
        assert (dest / "nested.bin").read_bytes() == (server.root / "sub/nested.bin").read_bytes()
        assert (dest / "with space.txt").read_bytes() == b"spaces in the name\n"
    assert "] PORT " in server.log() or "] EPRT " in server.log()


@pytest.mark.skipif(WGET is None, reason="wget is not installed")
def test_wget_mirror_non_utf8_name(ftpd_server, tmp_path):
    server = ftpd_server(check_log=False)
    expected = make_tree(server.root, raw=True)
    proc = wget_mirror(server, tmp_path / "wget", tmp_path)
    assert proc.returncode == 0, output(proc)
    assert tree_digest(tmp_path / "wget", ignore=(b".listing",)) == expected


# -- lftp ------------------------------------------------------------------------------
def lftp(server, script: str, home: Path, passive: bool = True) -> subprocess.CompletedProcess:
    settings = (f"set ftp:passive-mode {'true' if passive else 'false'}; "
                "set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; "
                "set cmd:fail-exit yes; set ftp:ssl-allow false; ")
    host = f"[{server.host}]" if ":" in server.host else server.host
    opening = f"open -u {server.user},{server.password} ftp://{host}:{server.port}; "
    return run([LFTP, "-c", settings + opening + script], home)


needs_lftp = pytest.mark.skipif(LFTP is None, reason="lftp is not installed")


@needs_lftp
@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_lftp_mirror_download(ftpd_server, tmp_path, passive):
    server = ftpd_server()
    expected = make_tree(server.root)
    dest = tmp_path / "down"
    proc = lftp(server, f"mirror / {dest}", tmp_path, passive)
    assert proc.returncode == 0, output(proc)
    assert tree_digest(dest) == expected
    assert (dest / "sub" / "dir with space").is_dir()


@needs_lftp
def test_lftp_mirror_upload(ftpd_server, tmp_path):
    server = ftpd_server()
    src = tmp_path / "src"
    expected = make_tree(src)
    (server.root / "up").mkdir()
    proc = lftp(server, f"mirror -R {src} /up", tmp_path)
    assert proc.returncode == 0, output(proc)
    assert tree_digest(server.root / "up") == expected
    # and back down again, through the same names
    dest = tmp_path / "again"
    proc = lftp(server, f"mirror /up {dest}", tmp_path)
    assert proc.returncode == 0, output(proc)
    assert tree_digest(dest) == expected


@needs_lftp
def test_lftp_mirror_over_ipv6(ftpd_server6, tmp_path):
    server = ftpd_server6()
    expected = make_tree(server.root)
    dest = tmp_path / "down6"
    proc = lftp(server, f"mirror / {dest}", tmp_path)
    assert proc.returncode == 0, output(proc)
    assert tree_digest(dest) == expected
    assert "] EPSV " in server.log()


@needs_lftp
def test_lftp_resumes_transfers(ftpd_server, tmp_path, payload):
    server = ftpd_server()
    (server.root / "down.bin").write_bytes(payload)
    local = tmp_path / "down.bin"
    local.write_bytes(payload[:1_234_567])
    proc = lftp(server, f"lcd {tmp_path}; get -c down.bin", tmp_path)
    assert proc.returncode == 0, output(proc)
    assert local.read_bytes() == payload
    assert "] REST 1234567" in server.log()
    (tmp_path / "up.bin").write_bytes(payload)
    (server.root / "up.bin").write_bytes(payload[:777_777])
    proc = lftp(server, f"lcd {tmp_path}; put -c up.bin", tmp_path)
    assert proc.returncode == 0, output(proc)
    assert (server.root / "up.bin").read_bytes() == payload

"""curl against the real ``ftpd`` command: listings, downloads, uploads, EPSV (curl's
default), PASV (--disable-epsv), active mode (-P), and resumed uploads and downloads."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ftpsupport import DEADLINE, sha256

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args: str) -> subprocess.CompletedProcess:
    """Run curl verbosely (the FTP dialogue is on stderr); fail loudly on an error."""
    proc = subprocess.run([CURL, "-sS", "-v", "--max-time", str(DEADLINE), "--noproxy", "*",
                           *args], capture_output=True, timeout=DEADLINE + 5)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return proc


def sent(proc: subprocess.CompletedProcess) -> list[str]:
    """The commands curl sent (``> CMD`` lines of -v)."""
    text = proc.stderr.decode("utf-8", "replace")
    return [line[2:].split(" ")[0] for line in text.splitlines() if line.startswith("> ")]


@pytest.fixture
def server(ftpd_server, payload):
    server = ftpd_server()
    (server.root / "file.bin").write_bytes(payload)
    (server.root / "dir").mkdir()
    (server.root / "dir" / "inner.txt").write_bytes(b"inner\n")
    return server


def test_directory_listing(server):
    proc = curl(server.url("/"))
    lines = proc.stdout.decode().splitlines()
    assert any(line.startswith("d") and line.endswith(" dir") for line in lines)
    assert any(line.startswith("-") and line.endswith(" file.bin") for line in lines)
    assert "LIST" in sent(proc)
    proc = curl("--list-only", server.url("/dir/"))
    assert proc.stdout.decode().splitlines() == ["inner.txt"]
    assert "NLST" in sent(proc)


def test_download_epsv(server, payload, tmp_path):
    out = tmp_path / "out.bin"
    proc = curl("-o", str(out), server.url("file.bin"))
    assert sha256(out) == sha256(payload)
    assert "EPSV" in sent(proc) and "PASV" not in sent(proc)


def test_download_pasv(server, payload, tmp_path):
    out = tmp_path / "out.bin"
    proc = curl("--disable-epsv", "-o", str(out), server.url("file.bin"))
    assert sha256(out) == sha256(payload)
    assert "PASV" in sent(proc) and "EPSV" not in sent(proc)


@pytest.mark.parametrize("port_arg", ["-", "127.0.0.1"])
def test_download_active(server, payload, tmp_path, port_arg):
    out = tmp_path / "out.bin"
    proc = curl("-P", port_arg, "-o", str(out), server.url("file.bin"))
    assert sha256(out) == sha256(payload)
    assert {"EPRT", "PORT"} & set(sent(proc))


def test_active_pasv_style_port(server, payload, tmp_path):
    out = tmp_path / "out.bin"
    proc = curl("--ftp-port", "127.0.0.1", "--disable-eprt", "-o", str(out),
                server.url("file.bin"))
    assert sha256(out) == sha256(payload)
    assert "PORT" in sent(proc) and "EPRT" not in sent(proc)


def test_upload(server, payload, tmp_path):
    src = tmp_path / "up.bin"
    src.write_bytes(payload)
    proc = curl("-T", str(src), server.url("dir/"))
    assert "STOR" in sent(proc)
    assert sha256(server.root / "dir" / "up.bin") == sha256(payload)
    curl("-P", "-", "-T", str(src), server.url("active.bin"))
    assert sha256(server.root / "active.bin") == sha256(payload)
    curl("--disable-epsv", "-T", str(src), server.url("pasv.bin"))
    assert sha256(server.root / "pasv.bin") == sha256(payload)


def test_upload_creating_directories(server, tmp_path):
    src = tmp_path / "small.txt"
    src.write_bytes(b"small\n")
    curl("--ftp-create-dirs", "-T", str(src), server.url("new/deeper/small.txt"))
    assert (server.root / "new" / "deeper" / "small.txt").read_bytes() == b"small\n"


def test_upload_resume(server, payload, tmp_path):
    src = tmp_path / "resume.bin"
    src.write_bytes(payload)
    (server.root / "resume.bin").write_bytes(payload[: len(payload) // 3])
    proc = curl("-C", "-", "-T", str(src), server.url("resume.bin"))
    assert "SIZE" in sent(proc)
    assert sha256(server.root / "resume.bin") == sha256(payload)


def test_download_resume(server, payload, tmp_path):
    out = tmp_path / "partial.bin"
    out.write_bytes(payload[:1_000_000])
    proc = curl("-C", "-", "-o", str(out), server.url("file.bin"))
    assert "REST" in sent(proc)
    assert sha256(out) == sha256(payload)


def test_anonymous_download(server, payload, tmp_path):
    out = tmp_path / "anon.bin"
    curl("-o", str(out), server.url("file.bin", user=False))
    assert sha256(out) == sha256(payload)


def test_ipv6_epsv_and_eprt(ftpd_server6, payload, tmp_path):
    server = ftpd_server6()
    (server.root / "file.bin").write_bytes(payload)
    out = tmp_path / "v6.bin"
    proc = curl("-g", "-o", str(out), server.url("file.bin"))
    assert "EPSV" in sent(proc)
    assert sha256(out) == sha256(payload)
    out.unlink()
    proc = curl("-g", "-P", "-", "-o", str(out), server.url("file.bin"))
    assert "EPRT" in sent(proc)
    assert sha256(out) == sha256(payload)
    proc = curl("-g", "-T", str(out), server.url("back.bin"))
    assert sha256(server.root / "back.bin") == sha256(payload)
    proc = curl("-g", server.url("/"))
    assert any(line.endswith(" back.bin") for line in proc.stdout.decode().splitlines())


def test_ssl_attempt_falls_back_to_plain(server, payload, tmp_path):
    """--ssl tries AUTH TLS/SSL first; a server without TLS refuses and the session goes on."""
    out = tmp_path / "plain.bin"
    proc = curl("--ssl", "-o", str(out), server.url("file.bin"))
    commands = sent(proc)
    assert commands[0] == "AUTH" and "RETR" in commands
    assert sha256(out) == sha256(payload)

"""Every row of the SPEC 8 table through real clients (ftplib, curl) against ftpd with
``-r s3://BUCKET/PREFIX`` on SeaweedFS; what each command left in the bucket is checked
with direct S3 requests (``Seaweed.request``/``keys``/``pending_uploads``)."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import signal
import socket
import struct
import subprocess

import pytest
from ftpsupport import DEADLINE, RawControl, sha256, wait_until
from s3ftpd import start_s3ftpd

BIG = os.urandom(6 * 1024 * 1024 + 12345)  # two parts of --s3-part-size 5M
CURL = shutil.which("curl")


def login(server) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=DEADLINE)
    ftp.connect("127.0.0.1", server.port)
    ftp.login("user", "pw")
    return ftp


def obj(seaweed, key: str) -> bytes | None:
    status, body = seaweed.request("GET", key=key)
    return body if status == 200 else None


def put(seaweed, key: str, body: bytes) -> None:
    status, text = seaweed.request("PUT", key=key, body=body)
    assert status == 200, text


def test_stor_is_one_object_retr_and_rest_stream_it(s3ftpd, seaweed):
    server, prefix = s3ftpd
    ftp = login(server)
    try:
        assert ftp.storbinary("STOR big.bin", io.BytesIO(BIG)).startswith("226")
        assert sha256(obj(seaweed, f"{prefix}/big.bin")) == sha256(BIG)
        assert seaweed.pending_uploads() == []
        got = bytearray()
        ftp.retrbinary("RETR big.bin", got.extend)
        assert sha256(bytes(got)) == sha256(BIG)
        tail = bytearray()
        ftp.retrbinary("RETR big.bin", tail.extend, rest=len(BIG) - 100_000)
        assert bytes(tail) == BIG[-100_000:]
        assert ftp.size("big.bin") == len(BIG)
        assert ftp.sendcmd("MDTM big.bin").startswith("213 ")
    finally:
        ftp.quit()


def test_directories_are_prefixes_and_markers(s3ftpd, seaweed):
    server, prefix = s3ftpd
    put(seaweed, f"{prefix}/made/by/s3.txt", b"direct")  # a prefix without a marker
    ftp = login(server)
    try:
        ftp.mkd("empty")
        assert f"{prefix}/empty/" in seaweed.keys(prefix)
        assert sorted(ftp.nlst()) == ["empty", "made"]
        assert "made" in "\n".join(_lines(ftp, "LIST"))
        facts = dict(ftp.mlsd("made"))
        assert facts["by"]["type"] == "dir"
        ftp.cwd("/made/by")
        assert ftp.nlst() == ["s3.txt"]
        assert "type=file" in ftp.sendcmd("MLST s3.txt")
        ftp.cwd("/")
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.rmd("made")  # not empty
        ftp.rmd("empty")
        assert f"{prefix}/empty/" not in seaweed.keys(prefix)
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.cwd("/nowhere")
    finally:
        ftp.quit()


def _lines(ftp: ftplib.FTP, cmd: str) -> list[str]:
    lines: list[str] = []
    ftp.retrlines(cmd, lines.append)
    return lines


def test_stou_dele_and_rename(s3ftpd, seaweed):
    server, prefix = s3ftpd
    ftp = login(server)
    try:
        ftp.voidcmd("TYPE I")
        reply = ftp.storbinary("STOU", io.BytesIO(b"unique"))
        name = reply.split("unique file name: ")[1].rstrip(").")
        assert obj(seaweed, f"{prefix}/{name}") == b"unique"
        ftp.rename(name, "renamed.txt")
        assert obj(seaweed, f"{prefix}/renamed.txt") == b"unique"
        assert obj(seaweed, f"{prefix}/{name}") is None
        ftp.mkd("full")
        ftp.storbinary("STOR full/x", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.rename("full", "moved")  # a non-empty directory
        ftp.delete("renamed.txt")
        assert obj(seaweed, f"{prefix}/renamed.txt") is None
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.delete("renamed.txt")  # absent now
    finally:
        ftp.quit()


def test_append_and_restarted_store_are_refused_naming_the_storage(s3ftpd, seaweed):
    server, prefix = s3ftpd
    ftp = login(server)
    try:
        ftp.storbinary("STOR f.txt", io.BytesIO(b"first"))
        for cmd, rest in (("APPE f.txt", None), ("STOR f.txt", 2)):
            with pytest.raises(ftplib.error_perm) as info:
                ftp.storbinary(cmd, io.BytesIO(b"more"), rest=rest)
            text = str(info.value)
            assert text.startswith("550") and "S3" in text and "append" in text.lower()
        assert obj(seaweed, f"{prefix}/f.txt") == b"first"
        for cmd in ("MFMT 20200101000000 f.txt", "SITE CHMOD 600 f.txt",
                    "SITE SYMLINK f.txt link"):
            with pytest.raises(ftplib.error_perm) as info:
                ftp.sendcmd(cmd)
            assert str(info.value).startswith("550") and "S3" in str(info.value)
    finally:
        ftp.quit()


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_uploads_lists_and_downloads(s3ftpd, seaweed, tmp_path):
    server, prefix = s3ftpd
    src = tmp_path / "src.bin"
    src.write_bytes(BIG[:1_000_000])
    url = f"ftp://user:pw@127.0.0.1:{server.port}"
    base = [CURL, "-sS", "--max-time", str(DEADLINE), "--noproxy", "*"]
    run = lambda *a: subprocess.run([*base, *a], capture_output=True,  # noqa: E731
                                    timeout=DEADLINE + 5, check=True)
    run("-T", str(src), f"{url}/sub/up.bin", "--ftp-create-dirs")
    assert obj(seaweed, f"{prefix}/sub/up.bin") == src.read_bytes()
    assert run(f"{url}/sub/", "-l").stdout.split() == [b"up.bin"]
    out = tmp_path / "down.bin"
    run("-o", str(out), f"{url}/sub/up.bin")
    assert out.read_bytes() == src.read_bytes()
    part = tmp_path / "part.bin"
    run("-o", str(part), "-C", "500000", f"{url}/sub/up.bin")
    assert part.read_bytes() == src.read_bytes()[500000:]
    failed = subprocess.run([*base, "-a", "-T", str(src), f"{url}/sub/up.bin"],
                            capture_output=True, timeout=DEADLINE + 5)
    assert failed.returncode != 0 and b"550" in failed.stderr


# -- interrupted uploads leave nothing ---------------------------------------------------
def _start_upload(server, name: str) -> tuple[RawControl, socket.socket]:
    ctl = RawControl("127.0.0.1", server.port)
    ctl.login("user", "pw")
    ctl.expect("TYPE I", 200)
    host, port = ctl.pasv()
    data = socket.create_connection((host, port), timeout=DEADLINE)
    ctl.expect(f"STOR {name}", 150)
    data.sendall(BIG)  # more than a part: the multipart upload has begun
    return ctl, data


def _nothing_left(seaweed, key: str) -> None:
    wait_until(lambda: seaweed.pending_uploads() == [], "the multipart upload aborted")
    assert obj(seaweed, key) is None


def test_reset_data_connection_leaves_no_object_and_no_upload(s3ftpd, seaweed):
    server, prefix = s3ftpd
    ctl, data = _start_upload(server, "reset.bin")
    data.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    data.close()  # RST: the upload did not end, it broke
    code, _ = ctl.reply()
    assert code == 426
    _nothing_left(seaweed, f"{prefix}/reset.bin")
    ctl.close()


def test_abor_mid_upload_leaves_no_object_and_no_upload(s3ftpd, seaweed):
    server, prefix = s3ftpd
    ctl, data = _start_upload(server, "abor.bin")
    ctl.send_line("ABOR")
    codes = {ctl.reply()[0], ctl.reply()[0]}
    assert codes == {426, 226}
    data.close()
    _nothing_left(seaweed, f"{prefix}/abor.bin")
    ctl.close()


def test_lost_control_connection_mid_upload_leaves_nothing(s3ftpd, seaweed):
    server, prefix = s3ftpd
    ctl, data = _start_upload(server, "lost.bin")
    ctl.close()
    data.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    data.close()
    _nothing_left(seaweed, f"{prefix}/lost.bin")
    assert "Traceback" not in server.log()


def test_server_stop_mid_upload_leaves_nothing(seaweed, tmp_path):
    """SIGTERM while an upload stalls: the drain (--shutdown-timeout) ends, the session
    is closed, and its multipart upload is aborted."""
    server = start_s3ftpd(tmp_path, seaweed.endpoint, "s3://ftpd/stopped",
                          "--shutdown-timeout", "1")
    ctl, data = _start_upload(server, "stopped.bin")  # then the client stalls
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(DEADLINE)
    data.close()
    ctl.close()
    _nothing_left(seaweed, "stopped/stopped.bin")
    assert "Traceback" not in server.log()

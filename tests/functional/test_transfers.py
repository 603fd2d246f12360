"""Transfers under stress, through the real ``ftpd`` command: interrupted uploads and
their resumption, atomic uploads, refused active connections, connection caps, parallel
clients, a v4-mapped (dual-stack) listener, and the graceful drain on SIGTERM. The
timeouts (stalled and missing data connections, idle control connections) are tested
on virtual time in ``tests/hardening/test_hardening_timeouts.py``."""

from __future__ import annotations

import ftplib
import io
import os
import signal
import socket
import struct
import subprocess
import threading

import pytest
from fhelpers import connect
from ftpsupport import DEADLINE, RawControl, accepts, sha256, wait_until

BIG = 48 << 20  # sparse: more than socket buffers hold


def make_big(path) -> None:
    with open(path, "wb") as f:
        f.truncate(BIG)


def read_all(conn: socket.socket) -> bytes:
    out = bytearray()
    while chunk := conn.recv(1 << 20):
        out += chunk
    return bytes(out)


def test_empty_file_round_trip(ftpd_server):
    server = ftpd_server()
    ftp = server.ftp()
    ftp.storbinary("STOR empty", io.BytesIO(b""))
    assert (server.root / "empty").read_bytes() == b""
    for pasv in (True, False):
        ftp.set_pasv(pasv)
        got = bytearray(b"x")
        ftp.retrbinary("RETR empty", got.extend)
        assert got == b"x"
    ftp.quit()


def test_ascii_crlf_across_read_chunks(ftpd_server):
    """A CR LF split between two 256 KiB reads is still one line end on the wire."""
    server = ftpd_server()
    body = b"a" * (256 * 1024 - 1) + b"\r\n" + b"b\n" + b"c" * (256 * 1024 - 2) + b"\nd"
    (server.root / "split.txt").write_bytes(body)
    ftp = server.ftp()
    ftp.voidcmd("TYPE A")
    conn = ftp.transfercmd("RETR split.txt")
    wire = read_all(conn)
    conn.close()
    ftp.voidresp()
    assert wire == body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    ftp.quit()


def test_abor_during_upload_then_resume(ftpd_server, payload):
    server = ftpd_server()
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR part.bin")
    conn.sendall(payload[:1_000_000])
    resp = ftp.abort()
    assert resp.startswith("426"), resp
    assert ftp.getresp().startswith("226")
    conn.close()
    part = (server.root / "part.bin").read_bytes()  # what arrived is kept
    assert payload.startswith(part)
    ftp.storbinary("STOR part.bin", io.BytesIO(payload[len(part):]), rest=len(part))
    assert sha256(server.root / "part.bin") == sha256(payload)
    ftp.quit()


def test_reset_during_upload_then_appe(ftpd_server, payload):
    server = ftpd_server()
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR cut.bin")
    conn.sendall(payload[:500_000])
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST: the upload is cut, not finished
    with pytest.raises(ftplib.error_temp, match="^426"):
        ftp.voidresp()
    part = (server.root / "cut.bin").read_bytes()
    assert payload.startswith(part)
    ftp.storbinary("APPE cut.bin", io.BytesIO(payload[len(part):]))
    assert sha256(server.root / "cut.bin") == sha256(payload)
    ftp.quit()


def test_client_closing_a_download_early(ftpd_server):
    server = ftpd_server()
    make_big(server.root / "big.bin")
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    conn.recv(1000)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    with pytest.raises(ftplib.error_temp, match="^426"):
        ftp.voidresp()
    assert ftp.voidcmd("NOOP").startswith("200")
    ftp.quit()


def test_atomic_uploads(ftpd_server, payload):
    server = ftpd_server("--atomic-uploads")
    (server.root / "final.bin").write_bytes(b"old version")
    uploader = server.ftp()
    watcher = server.ftp()
    uploader.voidcmd("TYPE I")
    conn = uploader.transfercmd("STOR final.bin")
    conn.sendall(payload[:200_000])
    on_disk = sorted(p.name for p in server.root.iterdir())
    assert len(on_disk) == 2 and on_disk[0].startswith(".ftpd-upload-"), on_disk
    # others see the old file, and never the temporary
    assert watcher.nlst() == ["final.bin"]
    assert [name for name, _ in watcher.mlsd()] == ["final.bin"]
    listing: list[str] = []
    watcher.retrlines("LIST -a", listing.append)
    assert len(listing) == 1 and listing[0].endswith(" final.bin")
    got = bytearray()
    watcher.retrbinary("RETR final.bin", got.extend)
    assert got == b"old version"
    conn.sendall(payload[200_000:])
    conn.close()
    assert uploader.voidresp().startswith("226")
    assert sorted(p.name for p in server.root.iterdir()) == ["final.bin"]
    assert sha256(server.root / "final.bin") == sha256(payload)
    # an aborted atomic upload leaves nothing behind
    conn = uploader.transfercmd("STOR aborted.bin")
    conn.sendall(payload[:100_000])
    assert uploader.abort().startswith("426")
    assert uploader.getresp().startswith("226")
    conn.close()
    assert sorted(p.name for p in server.root.iterdir()) == ["final.bin"]
    uploader.quit()
    watcher.quit()




@pytest.mark.parametrize("extended", [False, True], ids=["PORT", "EPRT"])
def test_active_connection_refused(ftpd_server, extended):
    server = ftpd_server()
    (server.root / "f.txt").write_bytes(b"f")
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # closed again below: nobody listens there
    with RawControl(server.host, server.port) as c:
        c.login()
        if extended:
            assert c.cmd(f"EPRT |1|127.0.0.1|{port}|")[0] == 200
        else:
            assert c.cmd(f"PORT 127,0,0,1,{port >> 8},{port & 0xFF}")[0] == 200
        assert c.cmd("RETR f.txt")[0] == 150
        assert c.reply()[0] == 425
        assert c.cmd("NOOP")[0] == 200








def test_max_connections(ftpd_server):
    server = ftpd_server("--max-connections", "2")
    first = RawControl(server.host, server.port)
    second = RawControl(server.host, server.port)
    try:
        assert first.greeting[0] == 220 and second.greeting[0] == 220
        third = socket.create_connection((server.host, server.port), timeout=DEADLINE)
        with third:
            assert third.recv(1024).startswith(b"421 ")
            assert third.recv(1024) == b""
        assert first.cmd("NOOP")[0] == 200  # the others are undisturbed
        assert first.cmd("QUIT")[0] == 221
        assert first.wait_closed()
        with RawControl(server.host, server.port) as fourth:
            assert fourth.greeting[0] == 220
        assert second.cmd("NOOP")[0] == 200
    finally:
        first.close()
        second.close()


def test_max_connections_per_ip(ftpd_server):
    server = ftpd_server("--max-connections-per-ip", "1")
    with RawControl(server.host, server.port) as first:
        assert first.greeting[0] == 220
        with socket.create_connection((server.host, server.port), timeout=DEADLINE) as again:
            assert again.recv(1024).startswith(b"421 ")
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        other.settimeout(DEADLINE)
        other.bind(("127.0.0.2", 0))
        with other:
            other.connect((server.host, server.port))
            assert other.recv(1024).startswith(b"220 ")
        assert first.cmd("NOOP")[0] == 200


def test_parallel_clients(ftpd_server):
    server = ftpd_server()
    blobs = [os.urandom(1_000_000 + i) for i in range(6)]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            ftp = server.ftp()
            ftp.set_pasv(i % 2 == 0)
            ftp.storbinary(f"STOR p{i}.bin", io.BytesIO(blobs[i]), blocksize=32768)
            got = bytearray()
            ftp.retrbinary(f"RETR p{i}.bin", got.extend, blocksize=32768)
            assert bytes(got) == blobs[i]
            ftp.quit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE * 2)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    for i, blob in enumerate(blobs):
        assert sha256(server.root / f"p{i}.bin") == sha256(blob)


def test_large_directory_listing(ftpd_server):
    server = ftpd_server()
    names = {f"file-{i:05d}.txt" for i in range(3000)}
    for name in names:
        (server.root / name).touch()
    ftp = server.ftp()
    assert set(ftp.nlst()) == names
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    assert {line.rsplit(" ", 1)[1] for line in lines} == names
    assert len(list(ftp.mlsd())) == 3000
    ftp.quit()


def test_v4_mapped_listener(ftpd_server):
    """A dual-stack socket: IPv4 clients appear as ::ffff:a.b.c.d and are treated as IPv4."""
    server = ftpd_server(host="::ffff:127.0.0.1")
    (server.root / "m.bin").write_bytes(b"mapped" * 1000)
    ftp = connect("127.0.0.1", server.port)
    resp = ftp.sendcmd("PASV")
    assert "(127,0,0,1," in resp
    for pasv in (True, False):
        ftp.set_pasv(pasv)
        got = bytearray()
        ftp.retrbinary("RETR m.bin", got.extend)
        assert bytes(got) == b"mapped" * 1000
    assert "Connected to 127.0.0.1" in ftp.sendcmd("STAT")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("PORT 127,0,0,2,200,1")
    ftp.quit()


def test_sigterm_drains_sessions(ftpd_server):
    server = ftpd_server()
    make_big(server.root / "big.bin")
    idle = RawControl(server.host, server.port)
    busy = server.ftp()
    busy.voidcmd("TYPE I")
    conn = busy.transfercmd("RETR big.bin")
    received = len(conn.recv(1 << 16))
    os.kill(server.proc.pid, signal.SIGTERM)
    with idle:
        code, text = idle.reply()
        assert code == 421, text
        assert idle.wait_closed()
    wait_until(lambda: not accepts(server.host, server.port), "the listener to close")
    assert server.proc.poll() is None  # still draining the transfer
    received += len(read_all(conn))
    conn.close()
    assert received == BIG
    assert busy.voidresp().startswith("226")
    with pytest.raises(ftplib.error_temp, match="^421"):
        busy.getresp()
    try:
        assert server.proc.wait(DEADLINE) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("ftpd did not exit after the last session")


def test_quit_during_upload_waits_for_the_transfer(ftpd_server, payload):
    server = ftpd_server()
    with RawControl(server.host, server.port) as c:
        c.login()
        c.cmd("TYPE I")
        host, port = c.pasv()
        data = socket.create_connection((host, port), timeout=DEADLINE)
        assert c.cmd("STOR q.bin")[0] == 150
        data.sendall(payload[:100_000])
        c.send(b"QUIT\r\n")
        data.sendall(payload[100_000:])
        data.close()
        assert c.reply()[0] == 226
        assert c.reply()[0] == 221
        assert c.wait_closed()
    assert sha256(server.root / "q.bin") == sha256(payload)


def test_control_lost_during_upload_keeps_what_arrived(ftpd_server, payload):
    server = ftpd_server()
    c = RawControl(server.host, server.port)
    c.login()
    c.cmd("TYPE I")
    host, port = c.pasv()
    data = socket.create_connection((host, port), timeout=DEADLINE)
    assert c.cmd("STOR lost.bin")[0] == 150
    data.sendall(payload[:300_000])
    c.close()  # the client vanishes: the server drops the data connection too
    with data:
        data.settimeout(DEADLINE)
        try:
            wait_until(lambda: data.recv(1) == b"", "the data connection to be dropped")
        except ConnectionResetError:
            pass
    part = (server.root / "lost.bin").read_bytes()
    assert payload.startswith(part)
    ftp = server.ftp()  # and the server goes on; the upload can be resumed
    ftp.storbinary("APPE lost.bin", io.BytesIO(payload[len(part):]))
    assert sha256(server.root / "lost.bin") == sha256(payload)
    ftp.quit()


def test_data_connection_sequences(ftpd_server):
    server = ftpd_server()
    (server.root / "s.txt").write_bytes(b"seq")
    with RawControl(server.host, server.port) as c:
        c.login()
        assert c.cmd("RETR s.txt")[0] == 425  # no PORT/PASV yet
        c.pasv()
        host, port = c.pasv()  # a second PASV replaces the first
        with socket.create_connection((host, port), timeout=DEADLINE) as data:
            assert c.cmd("RETR s.txt")[0] == 150
            assert data.recv(100) == b"seq"
        assert c.reply()[0] == 226
        assert c.cmd("RETR s.txt")[0] == 425  # each transfer needs a new PORT/PASV
        # PASV, connect, then PORT: the active address wins
        host, port = c.pasv()
        stray = socket.create_connection((host, port), timeout=DEADLINE)
        with socket.create_server(("127.0.0.1", 0)) as listener, stray:
            listener.settimeout(DEADLINE)
            lport = listener.getsockname()[1]
            assert c.cmd(f"PORT 127,0,0,1,{lport >> 8},{lport & 0xFF}")[0] == 200
            assert c.cmd("RETR s.txt")[0] == 150
            conn, _ = listener.accept()
            with conn:
                assert conn.recv(100) == b"seq"
        assert c.reply()[0] == 226
        assert c.cmd("NOOP")[0] == 200

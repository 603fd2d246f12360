"""FTP bounce and data theft, through the real ``ftpd`` command. 127.0.0.2 is another
loopback address: a third party as far as the server can tell."""

from __future__ import annotations

import ftplib
import socket

import pytest
from ftpsupport import DEADLINE, RawControl, can_bind, wait_until

OTHER = "127.0.0.2"


pytestmark = pytest.mark.skipif(not can_bind(OTHER),
                                reason="127.0.0.2 is not usable on this machine")


def port_arg(host: str, port: int) -> str:
    return ",".join(host.split(".") + [str(port >> 8), str(port & 0xFF)])


def read_all(conn: socket.socket) -> bytes:
    out = bytearray()
    while chunk := conn.recv(1 << 16):
        out += chunk
    return bytes(out)


def dropped(sock: socket.socket) -> bool:
    """True once the server has closed *sock* (EOF or reset), within the deadline."""
    sock.settimeout(DEADLINE)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def server(ftpd_server):
    server = ftpd_server()
    (server.root / "f.bin").write_bytes(b"payload " * 1000)
    return server


def test_port_to_another_address_is_refused(server):
    ftp = server.ftp()
    with socket.create_server((OTHER, 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(ftplib.error_perm, match="^501"):
            ftp.sendcmd(f"PORT {port_arg(OTHER, port)}")
        with pytest.raises(ftplib.error_perm, match="^501"):
            ftp.sendcmd(f"EPRT |1|{OTHER}|{port}|")
        # the refused address is not used by a following transfer either
        with pytest.raises(ftplib.error_temp, match="^425"):
            ftp.sendcmd("RETR f.bin")
        ftp.voidcmd("NOOP")  # a connection made for the RETR is queued by now
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    ftp.quit()


@pytest.mark.parametrize("port", [21, 25, 80, 1023])
def test_port_to_privileged_port_is_refused(server, port):
    ftp = server.ftp()
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd(f"PORT {port_arg('127.0.0.1', port)}")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd(f"EPRT |1|127.0.0.1|{port}|")
    ftp.quit()


def test_eprt_to_another_family_is_refused(ftpd_server6):
    server = ftpd_server6()
    ftp = server.ftp()
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("EPRT |1|127.0.0.1|40000|")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("EPRT |2|::1|80|")
    ftp.quit()


def test_permit_foreign_addresses(ftpd_server):
    server = ftpd_server("--permit-foreign-addresses")
    (server.root / "f.bin").write_bytes(b"fxp " * 500)
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    with socket.create_server((OTHER, 0)) as listener:
        listener.settimeout(DEADLINE)
        port = listener.getsockname()[1]
        assert ftp.sendcmd(f"PORT {port_arg(OTHER, port)}").startswith("200")
        assert ftp.sendcmd("RETR f.bin").startswith("150")
        conn, _ = listener.accept()
        with conn:
            assert read_all(conn) == b"fxp " * 500
    assert ftp.voidresp().startswith("226")
    # privileged ports stay refused even then
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd(f"PORT {port_arg(OTHER, 21)}")
    ftp.quit()


@pytest.mark.parametrize("retr_first", [False, True], ids=["before-RETR", "after-RETR"])
def test_passive_data_theft_is_dropped(server, retr_first):
    with RawControl(server.host, server.port) as c:
        c.login()
        c.cmd("TYPE I")
        host, port = c.pasv()
        if retr_first:
            assert c.cmd("RETR f.bin")[0] == 150
        thief = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        thief.bind((OTHER, 0))
        thief.connect((host, port))
        with thief:
            assert dropped(thief)
        with socket.create_connection((host, port), timeout=DEADLINE) as data:
            if not retr_first:
                assert c.cmd("RETR f.bin")[0] == 150
            assert read_all(data) == b"payload " * 1000
        assert c.reply()[0] == 226
        assert c.cmd("QUIT")[0] == 221
    assert "data theft" in server.log()


def test_passive_from_another_address_with_permit(ftpd_server):
    server = ftpd_server("--permit-foreign-addresses")
    (server.root / "f.bin").write_bytes(b"fxp!" * 100)
    with RawControl(server.host, server.port) as c:
        c.login()
        c.cmd("TYPE I")
        host, port = c.pasv()
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        other.bind((OTHER, 0))
        other.settimeout(DEADLINE)
        other.connect((host, port))
        with other:
            assert c.cmd("RETR f.bin")[0] == 150
            assert read_all(other) == b"fxp!" * 100
        assert c.reply()[0] == 226


def test_many_thieves_do_not_block_the_client(server):
    """The listener stays open while thieves are dropped, however many come."""
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    host, port = ftp.makepasv()
    thieves = []
    for _ in range(10):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((OTHER, 0))
        t.connect((host, port))
        thieves.append(t)
    try:
        wait_until(lambda: all(dropped(t) for t in thieves), "the thieves to be dropped")
    finally:
        for t in thieves:
            t.close()
    with socket.create_connection((host, port), timeout=DEADLINE) as data:
        assert ftp.sendcmd("RETR f.bin").startswith("150")
        assert read_all(data) == b"payload " * 1000
    assert ftp.voidresp().startswith("226")
    ftp.quit()

"""Command-line options seen from a client: passive port range and its exhaustion,
masquerade address, umask, several listen addresses, and a TOML config file."""

from __future__ import annotations

import ftplib
import io
import socket
import stat

import pytest
from fhelpers import connect
from ftpsupport import free_port


def free_port_pair() -> int:
    """LOW such that LOW and LOW+1 are free now, above the kernel's ephemeral range."""
    for low in range(61000, 65000, 7):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", low))
                b.bind(("127.0.0.1", low + 1))
            return low
        except OSError:
            continue
    pytest.fail("no two consecutive free ports found")


def test_passive_port_range_and_exhaustion(ftpd_server):
    low = free_port_pair()
    server = ftpd_server("--passive-ports", f"{low}-{low + 1}")
    (server.root / "f.txt").write_bytes(b"ranged")
    clients = [server.ftp() for _ in range(3)]
    try:
        ports = set()
        for ftp in clients[:2]:
            host, port = ftp.makepasv()  # each holds its listener open
            ports.add(port)
        assert ports == {low, low + 1}
        with pytest.raises(ftplib.error_temp, match="^425"):
            clients[2].makepasv()
        assert clients[2].voidcmd("NOOP").startswith("200")
        clients[0].sendcmd("ABOR")  # frees a port
        got = bytearray()
        clients[2].retrbinary("RETR f.txt", got.extend)
        assert got == b"ranged"
    finally:
        for ftp in clients:
            ftp.close()


def test_masquerade_address(ftpd_server):
    server = ftpd_server("--masquerade-address", "192.0.2.7")
    ftp = server.ftp()
    resp = ftp.sendcmd("PASV")
    assert resp.startswith("227") and "(192,0,2,7," in resp
    assert ftp.sendcmd("EPSV").startswith("229")  # EPSV carries no address
    ftp.quit()


def test_umask(ftpd_server):
    server = ftpd_server("--umask", "077")
    ftp = server.ftp()
    ftp.storbinary("STOR private.txt", io.BytesIO(b"p"))
    ftp.mkd("private")
    ftp.quit()
    assert stat.S_IMODE((server.root / "private.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE((server.root / "private").stat().st_mode) == 0o700


def test_default_umask(ftpd_server):
    server = ftpd_server()
    ftp = server.ftp()
    ftp.storbinary("STOR public.txt", io.BytesIO(b"p"))
    ftp.quit()
    assert stat.S_IMODE((server.root / "public.txt").stat().st_mode) == 0o644


def test_several_listen_addresses(ftpd_server):
    port6 = free_port("::1")
    server = ftpd_server("-l", f"[::1]:{port6}")
    (server.root / "both.txt").write_bytes(b"both")
    for host, port in ((server.host, server.port), ("::1", port6)):
        ftp = connect(host, port)
        got = bytearray()
        ftp.retrbinary("RETR both.txt", got.extend)
        assert got == b"both"
        ftp.quit()


def test_config_file(ftpd_server, tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text('write = true\nmax-bad-commands = 2\numask = "027"\n')
    server = ftpd_server("-c", str(config))
    ftp = server.ftp("anonymous", "x")
    ftp.storbinary("STOR anon.txt", io.BytesIO(b"a"))  # write = true
    assert stat.S_IMODE((server.root / "anon.txt").stat().st_mode) == 0o640
    for _ in range(2):
        with pytest.raises(ftplib.error_perm, match="^500"):
            ftp.sendcmd("BOGUS")
    with pytest.raises(ftplib.error_temp, match="^421"):
        ftp.getresp()  # the second bad command in a row closes the session
    ftp.close()


def test_command_line_wins_over_config(ftpd_server, tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text("max-bad-commands = 1\n")
    server = ftpd_server("-c", str(config), "--max-bad-commands", "5")
    ftp = server.ftp()
    for _ in range(4):
        with pytest.raises(ftplib.error_perm, match="^500"):
            ftp.sendcmd("BOGUS")
    assert ftp.voidcmd("NOOP").startswith("200")
    ftp.quit()


def test_no_flag_turns_off_a_true_flag_of_the_config(ftpd_server, tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text("write = true\n")
    server = ftpd_server("-c", str(config), "--no-write")
    ftp = server.ftp("anonymous", "x")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.storbinary("STOR anon.txt", io.BytesIO(b"a"))
    ftp.quit()
    assert not (server.root / "anon.txt").exists()

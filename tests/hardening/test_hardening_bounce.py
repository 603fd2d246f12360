"""Anti-bounce and data-theft checks are on by default (SPEC §3). 127.0.0.2 is another
loopback address: a third party as far as the server can tell."""

from __future__ import annotations

import socket

import pytest
from ftpsupport import DEADLINE, can_bind
from hhelpers import HOST, open_data, read_all

OTHER = "127.0.0.2"


pytestmark = pytest.mark.skipif(not can_bind(OTHER), reason="127.0.0.2 is not usable here")


def _port_arg(host: str, port: int) -> str:
    return ",".join(host.split(".") + [str(port >> 8), str(port & 0xFF)])


def _dropped(sock: socket.socket) -> bool:
    sock.settimeout(DEADLINE)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_port_and_eprt_to_a_third_party_are_501(ftpd):
    server = ftpd()
    (server.root / "f.bin").write_bytes(b"secret")
    with server.control(login=True) as c, socket.create_server((OTHER, 0)) as listener:
        port = listener.getsockname()[1]
        assert c.cmd(f"PORT {_port_arg(OTHER, port)}")[0] == 501
        assert c.cmd(f"EPRT |1|{OTHER}|{port}|")[0] == 501
        assert c.cmd(f"PORT {_port_arg(HOST, 21)}")[0] == 501  # privileged port
        assert c.cmd("RETR f.bin")[0] == 425  # nothing was set up
        c.ok("NOOP", 200)  # a connection made for the RETR is queued by now
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


@pytest.mark.parametrize("when", ["before RETR", "after RETR"])
def test_passive_connection_from_a_third_party_is_dropped(ftpd, when):
    server = ftpd()
    payload = b"only for the client\n" * 1000
    (server.root / "f.bin").write_bytes(payload)
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        host, port = c.pasv()
        if when == "after RETR":
            c.ok("RETR f.bin", 150)
        thief = open_data(host, port, bind=OTHER)
        with thief:
            assert _dropped(thief), "the foreign data connection was served"
        with open_data(host, port) as data:
            if when == "before RETR":
                c.ok("RETR f.bin", 150)
            assert read_all(data) == payload
        code, text = c.reply()
        assert code == 226, text

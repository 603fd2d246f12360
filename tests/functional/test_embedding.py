"""The embedding API with real clients: the README's example as written, a server on a
directory, and servers handed a socket the program already holds (listening or
connected), as ``-W`` and ``-I`` do with fd 0."""

from __future__ import annotations

import ftplib
import io
import socket
import threading
from pathlib import Path

import pytest
from fhelpers import LoopFTP, connect
from ftpsupport import DEADLINE, loop_turns, wait_until

from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS
from ftpd.io.clock import VirtualClock

README_EXAMPLE = '''\
from ftpd.embed import FTPServer
from ftpd.fs.memory import MemoryFS

with FTPServer(MemoryFS({"/hello.txt": b"hi\\n"}), users={"alice": "secret"}) as server:
    print("serving on port", server.port)
'''


def fetch(ftp: ftplib.FTP, name: str) -> bytes:
    got = bytearray()
    ftp.retrbinary(f"RETR {name}", got.extend)
    return bytes(got)


def test_readme_example():
    """Run the README's snippet; while it serves, fetch its file with ftplib."""
    printed: list[tuple] = []
    served: list[bytes] = []

    def fake_print(*args: object) -> None:
        printed.append(args)
        port = args[-1]
        assert isinstance(port, int) and port > 0
        ftp = connect("127.0.0.1", port, "alice", "secret")
        served.append(fetch(ftp, "hello.txt"))
        assert ftp.nlst() == ["hello.txt"]
        ftp.quit()

    namespace: dict = {"print": fake_print, "__name__": "readme_example"}
    exec(compile(README_EXAMPLE, "README.md", "exec"), namespace)
    assert printed and printed[0][0] == "serving on port"
    assert served == [b"hi\n"]
    server = namespace["server"]
    # after the with-block the server no longer accepts
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_readme_shows_this_example():
    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert "```python\n" + README_EXAMPLE + "```\n" in readme.read_text("utf-8")


def test_embedded_on_a_directory(tmp_path):
    (tmp_path / "disk.txt").write_bytes(b"on disk")
    events: list = []
    with FTPServer(str(tmp_path), users={"bob": "pw"}) as server:
        server.bus.register("fs.upload", lambda data, _user: events.append(data))
        ftp = connect("127.0.0.1", server.port, "bob", "pw")
        assert fetch(ftp, "disk.txt") == b"on disk"
        ftp.storbinary("STOR up.txt", io.BytesIO(b"uploaded"))
        ftp.quit()
        anon = connect("127.0.0.1", server.port, "anonymous", "x")
        with pytest.raises(ftplib.error_perm, match="^550"):
            anon.storbinary("STOR no.txt", io.BytesIO(b"no"))
        anon.quit()
    assert (tmp_path / "up.txt").read_bytes() == b"uploaded"
    # the upload, then the refused one (EVENTS.md: status PERM)
    assert [(e.path, e.status) for e in events] == [("/up.txt", "OK"), ("/no.txt", "PERM")]


def serve_in_thread(server: FTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="embedded-ftpd", daemon=True)
    thread.start()
    return thread


def _sessions_left(server: FTPServer, count: int) -> None:
    """Wait until the server counts *count* sessions, and has done what a close does."""
    wait_until(lambda: len(server.server.connections) == count, f"{count} session(s) left")
    loop_turns(server)


def test_handed_a_listening_socket_with_idle_timeout():
    """--idle-timeout on virtual time: a connected client keeps the server up however
    long; once the last one leaves, it exits at the timeout, not before."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fs = MemoryFS({"/a.txt": b"from a held socket"})
    clock = VirtualClock()
    server = FTPServer(fs, users={"alice": "secret"}, sock=listener, idle_timeout=60,
                       timeout=0, clock=clock)  # (no control timeout: sessions stay)
    idle_events: list[float] = []
    server.bus.register("core.idle-timeout", lambda data, name: idle_events.append(clock.time()))
    # connected before the server runs: queued on the held socket, served at once
    first = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    thread = serve_in_thread(server)
    try:
        assert server.port == port
        ftp1 = ftp_on(first)
        ftp1.login("alice", "secret")
        ftp2 = connect("127.0.0.1", port, "alice", "secret")
        for ftp in (ftp1, ftp2):
            assert fetch(ftp, "a.txt") == b"from a held socket"
        ftp1.quit()
        _sessions_left(server, 1)
        clock.advance(3600)  # far longer than the idle timeout, but a client is connected
        loop_turns(server)
        assert thread.is_alive()
        assert ftp2.voidcmd("NOOP").startswith("200")
        ftp2.quit()
        _sessions_left(server, 0)  # idle from now on
        clock.advance(60 - 1 / 16)
        loop_turns(server)
        assert thread.is_alive(), "exited before the idle timeout"
        ftp3 = connect("127.0.0.1", port, "alice", "secret")  # in time: idle no more
        clock.advance(3600)
        loop_turns(server)
        assert thread.is_alive()
        ftp3.quit()
        _sessions_left(server, 0)
        idle_since = clock.time()
        clock.advance(60 - 1 / 16)
        loop_turns(server)
        assert thread.is_alive(), "exited before the idle timeout"
        clock.advance(1 / 16)
        thread.join(DEADLINE)  # serve_forever returns
        assert not thread.is_alive()
        assert idle_events == [idle_since + 60]
    finally:
        server.stop()
        listener.close()


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair over 127.0.0.1 (client side, server side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=DEADLINE)
        server_side, _ = listener.accept()
    return client, server_side


def ftp_on(sock: socket.socket) -> ftplib.FTP:
    """An ftplib client speaking on a socket that is already connected."""
    ftp = LoopFTP(timeout=DEADLINE)
    ftp.sock = sock
    ftp.af = sock.family
    ftp.host, ftp.port = sock.getpeername()[:2]
    ftp.file = sock.makefile("r", encoding=ftp.encoding)
    ftp.welcome = ftp.getresp()
    return ftp


def test_handed_a_connected_socket():
    client, server_side = tcp_pair()
    fs = MemoryFS({"/c.txt": b"over a connected socket"})
    server = FTPServer(fs, users={"alice": "secret"}, sock=server_side, idle_timeout=30)
    thread = serve_in_thread(server)
    try:
        ftp = ftp_on(client)
        assert ftp.welcome.startswith("220")
        ftp.login("alice", "secret")
        assert fetch(ftp, "c.txt") == b"over a connected socket"
        ftp.set_pasv(False)
        ftp.storbinary("STOR d.txt", io.BytesIO(b"active upload"))
        assert fetch(ftp, "d.txt") == b"active upload"
        ftp.quit()
        # one connection, served until it closes: then serve_forever returns at once,
        # long before the idle timeout
        thread.join(DEADLINE)
        assert not thread.is_alive()
    finally:
        server.stop()
        client.close()


def test_connected_socket_closed_by_the_client():
    client, server_side = tcp_pair()
    server = FTPServer(MemoryFS({}), sock=server_side, idle_timeout=30)
    thread = serve_in_thread(server)
    try:
        ftp = ftp_on(client)
        ftp.login("anonymous", "x")
        ftp.close()  # no QUIT: the socket (and ftplib's file on it) just closes
        thread.join(DEADLINE)
        assert not thread.is_alive()
    finally:
        server.stop()


def test_stop_from_another_thread():
    server = FTPServer(MemoryFS({"/s.txt": b"s"})).start()
    ftp = connect("127.0.0.1", server.port, "anonymous", "x")
    server.stop()
    # the idle session is told 421 and closed
    wait_until(lambda: _closed(ftp), "the session to be closed by stop()")
    server.stop()  # joins the serving thread (bounded)
    assert not server._thread.is_alive()


def _closed(ftp: ftplib.FTP) -> bool:
    try:
        ftp.voidcmd("NOOP")
    except (ftplib.error_temp, EOFError, OSError):
        return True
    return False

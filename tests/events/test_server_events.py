"""End-to-end: the real ``ftpd`` (a subprocess on 127.0.0.1) sends NcFTPd-framed event
messages to a UDP socket and a System V message queue held by the test, in every launch
mode, and writes the xferlog.

Every expected frame is rebuilt here from EVENTS.md, independently of ftpd's encoder:
``"STR\\n" + "%3d\\n" % len(body) + body``, each token followed by ``\\n``. Values not known
in advance (time, duration, rate, session id, bytes of an interrupted transfer) are checked
by shape and range; everything else byte for byte.

Servers are stopped by pid in teardown (SIGTERM, a bounded wait, SIGKILL); every wait has
a deadline; queues are removed by the ``queue_key`` fixture's finally."""

from __future__ import annotations

import base64
import ftplib
import io
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from ftpsupport import (
    DEADLINE,
    FtpdProcess,
    RawControl,
    free_port,
    greets,
    read_text,
    start_ftpd,
    stop_pid,
    wait_until,
)

from ftpd.embed import FTPServer
from ftpd.events.ncftpd import decode
from ftpd.events.sinks import UdpSink
from ftpd.fs.memory import MemoryFS
from ftpd.io.clock import VirtualClock

from .conftest import wait_for_file

HOST = "127.0.0.1"
USER, PASSWORD = "alice", "pw"
ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"

# token shapes (EVENTS.md): integer seconds, "%.3f" decimals, the 12-char base64 session id
INT = re.compile(rb"[0-9]+")
DEC3 = re.compile(rb"[0-9]+\.[0-9]{3}")
SESSION_ID = re.compile(rb"[A-Za-z0-9+/]{11}A")  # 9 bytes, the last one zero: ends in 'A'


# -- the wire format, rebuilt from EVENTS.md -----------------------------------------------

def frame(tokens: list[bytes]) -> bytes:
    """The framed message for *tokens*, as EVENTS.md spells it."""
    body = b"".join(tok + b"\n" for tok in tokens)
    return b"STR\n" + b"%3d\n" % len(body) + body


def check_frame(data: bytes, expected: list[bytes | re.Pattern[bytes]]) -> list[bytes]:
    """Check one message against *expected* tokens (bytes: exactly; a pattern: its shape)
    and return its tokens. The whole frame is then compared byte for byte with the one
    rebuilt from the expected values and the shapes' actual values."""
    assert data[:4] == b"STR\n", data[:40]
    assert data[7:8] == b"\n", data[:40]
    body = data[8:]
    assert data[4:7] == b"%3d" % len(body), (data[4:7], len(body))
    assert 0 < len(body) <= 999
    assert body.endswith(b"\n"), body[-40:]
    assert b"\0" not in body and b"\r" not in body
    toks = body[:-1].split(b"\n")
    assert toks[0] == expected[0], f"a {toks[0]!r} message where {expected[0]!r} was due: {data!r}"
    assert len(toks) == len(expected), (toks, expected)
    rebuilt = []
    for i, (tok, want) in enumerate(zip(toks, expected, strict=True)):
        if isinstance(want, re.Pattern):
            assert want.fullmatch(tok), f"token {i + 1} {tok!r} does not match {want.pattern!r}"
            rebuilt.append(tok)
        else:
            assert tok == want, f"token {i + 1}: {tok!r} != {want!r} in {toks}"
            rebuilt.append(want)
    assert data == frame(rebuilt)
    return toks


def pid_field(pid: int, server_id: str | None = None) -> int:
    """The session id's pid field as ftpd-eventd(8) defines it: the pid xored with the
    CRC-32 of the server id (default: the host name) folded to 16 bits."""
    crc = zlib.crc32((server_id or os.uname().nodename).encode())
    return (pid ^ (crc >> 16) ^ (crc & 0xFFFF)) & 0xFFFF


class Expect:
    """One session's messages: the common tokens (type, time, user, email, host, session)
    and the type's own. The session id must be the same in every message of the session
    and have NcFTPd's shape: start time, the server's pid (mixed with the server id), a
    counter and a zero byte."""

    def __init__(self, pid: int, started: float, user: bytes = USER.encode(),
                 email: bytes = b"", host: bytes = HOST.encode(),
                 server_id: str | None = None) -> None:
        self.pid, self.user, self.email, self.host = pid, user, email, host
        self.server_id = server_id
        self.started = int(started)  # before the server was started
        self.session: bytes | None = None

    def check(self, data: bytes, letter: bytes, *rest: bytes | re.Pattern[bytes]) -> list[bytes]:
        toks = check_frame(data, [letter, INT, self.user, self.email, self.host,
                                  self.session or SESSION_ID, *rest])
        assert self.started <= int(toks[1]) <= time.time() + 1, toks[1]
        if self.session is None:
            raw = base64.b64decode(toks[5], validate=True)
            start, pid, _counter, zero = struct.unpack(">IHHB", raw)
            assert zero == 0
            assert pid == pid_field(self.pid, self.server_id), (pid, self.pid)
            assert self.started - 1 <= start <= time.time() + 1, start
            self.session = toks[5]
        return toks


def transfer(path: bytes, nbytes: int | re.Pattern[bytes], status: bytes = b"OK",
             ttype: bytes = b"I", offset: int = 0, size: int | None = None) -> list:
    """The per-type tokens of R and S messages."""
    if size is None:
        assert isinstance(nbytes, int)
        size = nbytes
    count = b"%d" % nbytes if isinstance(nbytes, int) else nbytes
    return [path, count, DEC3, DEC3, status, ttype, b"%d" % offset, b"%d" % size]


def logout(files_down: int, bytes_down: int, files_up: int, bytes_up: int,
           reason: bytes) -> list:
    return [INT, *(b"%d" % n for n in (files_down, bytes_down, files_up, bytes_up)), reason]


# -- the test's receivers --------------------------------------------------------------------

class UdpReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((HOST, 0))
        self.spec = f"udp:{HOST}:{self.sock.getsockname()[1]}"

    def take(self, count: int, timeout: float = DEADLINE) -> list[bytes]:
        """Exactly *count* datagrams (fails with what came if they do not come in time)."""
        got: list[bytes] = []
        end = time.monotonic() + timeout
        while len(got) < count:
            left = end - time.monotonic()
            if left <= 0:
                pytest.fail(f"{len(got)} of {count} datagrams in {timeout}s: {got}")
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recv(65536))
            except TimeoutError:
                continue
        return got

    def nothing_more(self, server: Any) -> None:
        """Nothing came after what was taken: a fresh session's login and logout are the
        next two messages (one sender socket, in order: a stray or doubled message would
        be among them). No waiting for something not to happen."""
        server.ftp().quit()
        later = self.take(2)
        assert [decode(m).name for m in later] == ["login", "logout"], later

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def udp():
    receiver = UdpReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


def queue_take(mq, count: int, timeout: float = DEADLINE) -> list[tuple[bytes, int]]:
    """*count* messages from a System V queue, polling without blocking (bounded)."""
    import sysv_ipc

    got: list[tuple[bytes, int]] = []

    def have_all() -> bool:
        for _ in range(count - len(got)):  # what is there now, never more than wanted
            try:
                got.append(mq.receive(block=False))
            except sysv_ipc.BusyError:
                break
        return len(got) >= count

    wait_until(have_all, f"{count} queue messages (have {got})", timeout, interval=0.01)
    return got


# -- the server ------------------------------------------------------------------------------

class Ftpd(FtpdProcess):
    """``python -m ftpd`` standalone on 127.0.0.1, logging to *ftpd_log*; its stderr goes
    to ``log_path``. *started* is the time before it was started."""

    def __init__(self, args: list[str], *, root: Path, ftpd_log: Path, started: float,
                 **kwargs) -> None:
        super().__init__(args, **kwargs)
        self.root, self.ftpd_log, self.started = root, ftpd_log, started

    def errors(self) -> str:
        return read_text(self.log_path) + self.log()

    def ftp(self, user: str | None = USER, password: str = PASSWORD) -> ftplib.FTP:
        client = ftplib.FTP(timeout=DEADLINE)
        client.connect(HOST, self.port)
        if user is not None:
            client.login(user, password)
        return client

    def log(self) -> str:
        return read_text(self.ftpd_log)


@pytest.fixture
def ftpd(tmp_path):
    """Start servers: ``ftpd(*args, root=None)``; all are stopped by pid afterwards. Each
    process is kept at once, so that teardown stops it whatever happens while waiting
    for it; a probe session reads the greeting and QUITs (no login: no message)."""
    spawned: list[Ftpd] = []

    def start(*args: str, root: Path | None = None) -> Ftpd:
        if root is None:
            root = tmp_path / "root"
            root.mkdir(exist_ok=True)
        started = time.time()
        stamp = time.monotonic_ns()
        ftpd_log = tmp_path / f"ftpd-{stamp}.log"

        def spawn(ports: list[int], _attempt: int) -> Ftpd:
            server = Ftpd(["-l", f"{HOST}:{ports[0]}", "-r", str(root), "--log", str(ftpd_log),
                           *args], root=root, ftpd_log=ftpd_log, started=started, host=HOST,
                          port=ports[0], log_path=tmp_path / f"ftpd-{stamp}.err",
                          stdout=subprocess.DEVNULL)
            spawned.append(server)
            return server

        return start_ftpd(spawn, host=HOST, probe=greets, race="in use")

    try:
        yield start
    finally:
        for server in spawned:
            server.stop()


def named(sink: str, *more: str) -> list[str]:
    return ["-n", "-u", USER, "-P", PASSWORD, "--event-sink", sink, *more]


def store(client: ftplib.FTP, name: str, data: bytes) -> str:
    return client.storbinary(f"STOR {name}", io.BytesIO(data))


def fetch(client: ftplib.FTP, name: str) -> bytes:
    out = bytearray()
    client.retrbinary(f"RETR {name}", out.extend)
    return bytes(out)


# -- one whole session, message by message ---------------------------------------------------

def test_named_user_session_over_udp(ftpd, udp):
    server = ftpd(*named(udp.spec))
    data = b"hello, events\n" * 100
    client = server.ftp()
    client.retrlines("LIST", lambda line: None)
    client.mkd("incoming")
    store(client, "incoming/report.txt", data)
    assert fetch(client, "incoming/report.txt") == data
    client.rename("incoming/report.txt", "incoming/final.txt")
    assert client.sendcmd("SITE CHMOD 644 incoming/final.txt").startswith("200")
    assert client.sendcmd("SITE SYMLINK incoming/final.txt latest.txt").startswith("200")
    client.delete("latest.txt")
    client.delete("incoming/final.txt")
    client.rmd("incoming")
    assert client.quit().startswith("221")

    msgs = udp.take(12)
    udp.nothing_more(server)
    n = len(data)
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"T", b"/", b"OK", b"", b"")
    ex.check(msgs[2], b"M", b"/incoming")
    ex.check(msgs[3], b"S", *transfer(b"/incoming/report.txt", n))
    ex.check(msgs[4], b"R", *transfer(b"/incoming/report.txt", n))
    ex.check(msgs[5], b"N", b"/incoming/report.txt", b"/incoming/final.txt")
    ex.check(msgs[6], b"C", b"/incoming/final.txt", b"0644")
    ex.check(msgs[7], b"L", b"/incoming/final.txt", b"/latest.txt")
    ex.check(msgs[8], b"D", b"/latest.txt", b"file")
    ex.check(msgs[9], b"D", b"/incoming/final.txt", b"file")
    ex.check(msgs[10], b"D", b"/incoming", b"dir")
    ex.check(msgs[11], b"O", *logout(1, n, 1, n, b"QUIT"))
    # the receiving library agrees with the bytes
    assert [decode(m).name for m in msgs] == [
        "login", "listing", "mkdir", "upload", "download", "rename", "chmod", "symlink",
        "delete", "delete", "delete", "logout"]


def test_transfer_tokens_restart_offset_and_ascii_type(ftpd, udp):
    server = ftpd(*named(udp.spec))
    (server.root / "ten.bin").write_bytes(b"0123456789")
    client = server.ftp()
    client.voidcmd("TYPE I")
    client.sendcmd("REST 4")
    conn = client.transfercmd("RETR ten.bin")
    with conn:
        got = b""
        while chunk := conn.recv(4096):
            got += chunk
    assert client.voidresp().startswith("226")
    assert got == b"456789"
    client.voidcmd("TYPE A")
    lines: list[str] = []
    client.retrlines("RETR ten.bin", lines.append)
    assert lines == ["0123456789"]
    client.quit()
    msgs = udp.take(4)
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"R", *transfer(b"/ten.bin", 6, offset=4, size=10))
    # a file without a newline: TYPE A sends the same ten bytes
    ex.check(msgs[2], b"R", *transfer(b"/ten.bin", 10, ttype=b"A"))
    ex.check(msgs[3], b"O", *logout(2, 16, 0, 0, b"QUIT"))


def test_utf8_path_length_counts_bytes(ftpd, udp):
    server = ftpd(*named(udp.spec))
    client = server.ftp()
    client.encoding = "utf-8"
    name = "répertoire-Ωmega-日本"
    client.mkd(name)
    client.quit()
    msgs = udp.take(3)
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    toks = ex.check(msgs[1], b"M", ("/" + name).encode("utf-8"))
    assert len(toks[6]) > len("/" + name)  # the length header counted bytes, not characters
    ex.check(msgs[2], b"O", *logout(0, 0, 0, 0, b"QUIT"))


def test_each_session_has_its_own_id(ftpd, udp):
    server = ftpd(*named(udp.spec))
    first = server.ftp()
    second = server.ftp()
    first.mkd("one")
    second.mkd("two")
    second.quit()
    first.quit()
    msgs = udp.take(6)
    a, b = Expect(server.pid, server.started), Expect(server.pid, server.started)
    a.check(msgs[0], b"I")
    b.check(msgs[1], b"I")
    assert a.session != b.session
    a.check(msgs[2], b"M", b"/one")
    b.check(msgs[3], b"M", b"/two")
    b.check(msgs[4], b"O", *logout(0, 0, 0, 0, b"QUIT"))
    a.check(msgs[5], b"O", *logout(0, 0, 0, 0, b"QUIT"))


# -- anonymous users -------------------------------------------------------------------------

@pytest.mark.parametrize("login", ["anonymous", "ftp"])
def test_anonymous_email_is_the_password_cut_to_64_bytes(ftpd, udp, login):
    server = ftpd("--event-sink", udp.spec)
    password = ("guest." * 20)[:88] + "@example.org"
    assert len(password.encode()) == 100
    client = server.ftp(login, password)
    client.quit()
    ex = Expect(server.pid, server.started, user=b"anonymous", email=password.encode()[:64])
    msgs = udp.take(2)
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"O", *logout(0, 0, 0, 0, b"QUIT"))


def test_anonymous_email_cut_never_splits_a_utf8_character(ftpd, udp):
    server = ftpd("--event-sink", udp.spec)
    password = "a" * 63 + "é" + "b" * 34  # é is bytes 64-65
    client = ftplib.FTP(timeout=DEADLINE, encoding="utf-8")
    client.connect(HOST, server.port)
    client.login("anonymous", password)
    client.quit()
    msgs = udp.take(2)
    email = msgs[0].split(b"\n")[5]
    assert email == b"a" * 63
    Expect(server.pid, server.started, user=b"anonymous", email=email).check(msgs[0], b"I")


# -- a path far longer than a message --------------------------------------------------------

def shortened(tok: bytes, real: bytes) -> None:
    """*tok* is *real* shortened in the middle: ``head...tail``."""
    assert len(tok) < len(real)
    assert tok.count(b"...") == 1, tok
    head, tail = tok.split(b"...")
    assert real.startswith(head) and real.endswith(tail), tok
    assert head.startswith(b"/") and tail, tok


def test_3000_character_path_still_gives_a_valid_frame(ftpd, udp):
    server = ftpd(*named(udp.spec))
    names = [f"{i:02d}" + "d" * 197 for i in range(15)]  # 15 x "/" + 199 = 3000
    long_dir = "/" + "/".join(names)
    assert len(long_dir) == 3000
    client = server.ftp()
    for name in names:  # a command line holds at most 2048 bytes: walk down
        client.mkd(name)
        client.cwd(name)
    data = os.urandom(5000)
    store(client, "end.txt", data)
    client.retrlines("LIST", lambda line: None)
    client.rename("end.txt", "moved.txt")
    client.quit()
    assert (server.root / long_dir[1:] / "moved.txt").read_bytes() == data

    msgs = udp.take(1 + 15 + 3 + 1)
    ex = Expect(server.pid, server.started)
    for msg in msgs:
        assert len(msg) <= 8 + 999
        decode(msg)  # the library accepts every one
    ex.check(msgs[0], b"I")
    for i, msg in enumerate(msgs[1:16]):
        real = ("/" + "/".join(names[:i + 1])).encode()
        toks = ex.check(msg, b"M", re.compile(rb"/.*"))
        if sum(len(t) + 1 for t in toks[:6]) + len(real) + 1 <= 999:  # it fits as it is
            assert toks[6] == real
        else:
            shortened(toks[6], real)
    real_file = (long_dir + "/end.txt").encode()
    toks = ex.check(msgs[16], b"S", *transfer(re.compile(rb"/.*"), len(data)))
    shortened(toks[6], real_file)
    assert toks[6].endswith(b"/end.txt")  # the last component is kept
    toks = ex.check(msgs[17], b"T", re.compile(rb"/.*"), b"OK", b"", b"")
    shortened(toks[6], long_dir.encode())
    toks = ex.check(msgs[18], b"N", re.compile(rb"/.*"), re.compile(rb"/.*"))
    shortened(toks[6], real_file)
    shortened(toks[7], (long_dir + "/moved.txt").encode())
    assert toks[6].endswith(b"/end.txt") and toks[7].endswith(b"/moved.txt")
    ex.check(msgs[19], b"O", *logout(0, 0, 1, len(data), b"QUIT"))


# -- System V message queue ------------------------------------------------------------------

def ipcs_line(key: int) -> list[str]:
    out = subprocess.run(["ipcs", "-q"], capture_output=True, text=True, timeout=DEADLINE,
                         check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0].lower() == f"{key:#010x}":
            return fields
    pytest.fail(f"key {key:#010x} not in ipcs -q:\n{out}")


def test_mqueue_sink_delivers_the_session(ftpd, udp, queue_key):
    import sysv_ipc

    server = ftpd(*named(f"mqueue:{queue_key:#x}", "--event-sink", udp.spec))
    mq = sysv_ipc.MessageQueue(queue_key)
    assert mq.mode & 0o777 == 0o600
    fields = ipcs_line(queue_key)  # key msqid owner perms used-bytes messages
    assert fields[3] == "600" and fields[2] == pwd.getpwuid(os.getuid()).pw_name
    data = b"q" * 4096
    client = server.ftp()
    store(client, "up.bin", data)
    client.quit()
    got = queue_take(mq, 3)
    assert mq.current_messages == 0
    ex = Expect(server.pid, server.started)
    for (msg, mtype), letter, rest in zip(got, (b"I", b"S", b"O"), (
            [], transfer(b"/up.bin", 4096), logout(0, 0, 1, 4096, b"QUIT")), strict=True):
        assert mtype == 1
        assert msg.endswith(b"\0") and not msg.endswith(b"\0\0")
        ex.check(msg[:-1], letter, *rest)
        decode(msg)  # with its NUL, as a C receiver would hand it over
    # both sinks sent the same frames
    assert [m for m, _ in got] == [d + b"\0" for d in udp.take(3)]


def test_mqueue_sink_perm_option(ftpd, queue_key):
    import sysv_ipc

    ftpd(*named(f"mqueue:{queue_key},perm=0640"))  # a decimal key this time
    assert sysv_ipc.MessageQueue(queue_key).mode & 0o777 == 0o640
    assert ipcs_line(queue_key)[3] == "640"


def test_full_queue_drops_are_counted_and_never_block(ftpd, tmp_path, queue_key):
    import sysv_ipc

    mq = sysv_ipc.MessageQueue(queue_key, sysv_ipc.IPC_CREX, mode=0o600)
    filled: list[bytes] = []
    for filler in (b"f" * 1000, b"f"):  # big ones, then one-byte ones into the last gap
        while True:
            try:
                mq.send(filler, block=False)
            except sysv_ipc.BusyError:
                break
            filled.append(filler)
            assert len(filled) < 100_000
    server = ftpd(*named(f"mqueue:{queue_key:#x}"))
    description = f"mqueue:{queue_key:#x}"
    client = server.ftp()  # the login message is the first drop: logged at once
    wait_until(lambda: "dropped" in server.log(), what="the first drop logged")
    first = re.escape(f"event sink {description}: dropped 1 message(s) (1 in all): "
                      "queue is full (raise kernel.msgmnb for a bigger one)")
    assert re.search(r" WARNING " + first + "$", server.log(), re.M), server.log()

    data = os.urandom(1 << 20)
    reply = store(client, "big.bin", data)  # a send blocking on the full queue never ends
    assert reply.startswith("226"), reply
    assert (server.root / "big.bin").read_bytes() == data
    client.quit()
    assert server.stop() == 0
    # the other two drops (upload, logout) are logged when the sink closes, not before
    log = server.log()
    assert log.count("dropped") == 2, log
    assert f"event sink {description}: dropped 2 message(s) (3 in all): queue is full" in log
    # the queue still holds exactly what the test put there
    assert mq.current_messages == len(filled)
    assert [mq.receive(block=False) for _ in filled] == [(f, 1) for f in filled]


# -- every launch mode -----------------------------------------------------------------------

def test_udp_sink_under_inetd_nowait(tmp_path, udp):
    root = tmp_path / "root"
    root.mkdir()
    log_path = tmp_path / "inetd.log"
    with socket.create_server((HOST, 0)) as listener:
        client_sock = socket.create_connection(listener.getsockname(), timeout=DEADLINE)
        conn, _ = listener.accept()
    started = time.time()
    with conn:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ftpd", "-I", "-r", str(root), "--log", str(log_path),
             *named(udp.spec)], stdin=conn, stdout=conn, stderr=conn, close_fds=True)
    try:
        client = ftplib.FTP(timeout=DEADLINE)
        client.sock, client.af, client.host = client_sock, client_sock.family, HOST
        client.file = client_sock.makefile("r", encoding=client.encoding)
        assert client.getresp().startswith("220")
        client.login(USER, PASSWORD)
        store(client, "inetd.txt", b"via inetd\n")
        assert fetch(client, "inetd.txt") == b"via inetd\n"
        client.quit()
        assert proc.wait(DEADLINE) == 0, read_text(log_path)
        client.close()
        msgs = udp.take(4)
        ex = Expect(proc.pid, started)
        ex.check(msgs[0], b"I")
        ex.check(msgs[1], b"S", *transfer(b"/inetd.txt", 10))
        ex.check(msgs[2], b"R", *transfer(b"/inetd.txt", 10))
        ex.check(msgs[3], b"O", *logout(1, 10, 1, 10, b"QUIT"))
    finally:
        stop_pid(proc)
        client_sock.close()


@pytest.mark.skipif(not os.path.exists(ACTIVATE), reason="systemd-socket-activate not installed")
def test_udp_sink_under_systemd_socket_activation(tmp_path, udp):
    root = tmp_path / "root"
    root.mkdir()
    log_path = tmp_path / "systemd.log"
    err_path = tmp_path / "activate.err"
    port = free_port()
    started = time.time()
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [ACTIVATE, "-l", f"{HOST}:{port}", sys.executable, "-m", "ftpd", "-r", str(root),
             "--log", str(log_path), *named(udp.spec)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        def listening() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"systemd-socket-activate exited {proc.returncode}: "
                            f"{read_text(err_path)}")
            return "Listening on" in read_text(err_path)

        wait_until(listening, what="systemd-socket-activate to listen")
        client = ftplib.FTP(timeout=DEADLINE)
        client.connect(HOST, port)  # the first connection makes it exec ftpd (same pid)
        client.login(USER, PASSWORD)
        store(client, "sd.txt", b"socket activated\n")
        client.quit()
        msgs = udp.take(3)
        assert "(systemd)" in read_text(log_path), read_text(log_path)
        ex = Expect(proc.pid, started)
        ex.check(msgs[0], b"I")
        ex.check(msgs[1], b"S", *transfer(b"/sd.txt", 17))
        ex.check(msgs[2], b"O", *logout(0, 0, 1, 17, b"QUIT"))
    finally:
        stop_pid(proc)


# -- transfers that do not end well ----------------------------------------------------------

@pytest.mark.parametrize("urgent", [False, True], ids=["plain", "telnet-sync"])
def test_abor_of_a_download_gives_status_abor(ftpd, udp, urgent):
    server = ftpd(*named(udp.spec))
    size = 64 << 20
    with open(server.root / "big.bin", "wb") as f:
        f.truncate(size)
    client = server.ftp()
    client.voidcmd("TYPE I")
    conn = client.transfercmd("RETR big.bin")
    received = 0
    while received < 256 << 10:
        chunk = conn.recv(65536)
        assert chunk
        received += len(chunk)
    # the data connection is stalled: the server is mid-transfer
    if urgent:  # ftplib's abort(): ABOR sent as TCP urgent data
        assert client.abort().startswith("426")
    else:
        client.putcmd("ABOR")
        assert client.getmultiline().startswith("426")
    assert client.getmultiline().startswith("226")
    conn.close()
    client.quit()
    msgs = udp.take(3)
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    toks = ex.check(msgs[1], b"R", *transfer(b"/big.bin", INT, b"ABOR", size=size))
    sent = int(toks[7])
    assert received <= sent < size
    ex.check(msgs[2], b"O", *logout(0, sent, 0, 0, b"QUIT"))


def test_upload_dropped_by_the_client_is_incomplete(ftpd, udp):
    server = ftpd(*named(udp.spec))
    client = server.ftp()
    client.voidcmd("TYPE I")
    conn = client.transfercmd("STOR part.bin")
    conn.sendall(b"p" * (256 << 10))
    target = server.root / "part.bin"
    wait_until(lambda: target.exists() and target.stat().st_size > 0, what="data on disk")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST: the connection is lost, not ended
    assert client.getmultiline().startswith("426")
    client.quit()
    msgs = udp.take(3)
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    toks = ex.check(msgs[1], b"S", b"/part.bin", INT, DEC3, DEC3, b"INCOMPLETE", b"I", b"0",
                    INT)
    got = int(toks[7])
    assert 0 < got <= 256 << 10
    assert int(toks[13]) == got == target.stat().st_size  # file size: what is on disk
    ex.check(msgs[2], b"O", *logout(0, 0, 0, got, b"QUIT"))


@pytest.mark.parametrize("reason", ["EOF", "SHUTDOWN"])
def test_logout_reasons(ftpd, udp, reason):
    server = ftpd(*named(udp.spec))
    client = server.ftp()
    if reason == "EOF":
        client.close()
    elif reason == "SHUTDOWN":
        os.kill(server.pid, signal.SIGTERM)
    assert client.sock is None or client.getmultiline().startswith("421")
    msgs = udp.take(2)
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"O", *logout(0, 0, 0, 0, reason.encode()))
    client.close()


def test_logout_reason_timeout_on_virtual_time(udp):
    """The 300 s control timeout, in process: virtual wall time ends at the real start,
    so the event stamps pass Expect's sanity window."""
    started = time.time()
    clock = VirtualClock(epoch=started - 300)
    with FTPServer(MemoryFS({}), users={USER: PASSWORD}, anonymous=False, clock=clock,
                   timeout=300) as server:
        sink = UdpSink(HOST, udp.sock.getsockname()[1])
        sink.attach(server.bus)
        try:
            with RawControl(HOST, server.port) as c:
                c.login(USER, PASSWORD)
                clock.advance(300)
                assert c.reply()[0] == 421
            msgs = udp.take(2)
        finally:
            sink.close()
    ex = Expect(os.getpid(), started - 300)
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"O", *logout(0, 0, 0, 0, b"TIMEOUT"))


# -- xferlog and SIGHUP ----------------------------------------------------------------------

XFERLOG_LINE = re.compile(
    r"(?P<when>\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) (?P<secs>\d+) (?P<host>\S+) "
    r"(?P<size>\d+) (?P<path>\S+) (?P<type>[ab]) _ (?P<dir>[oi]) (?P<access>[ar]) "
    r"(?P<user>\S+) ftp 0 \* (?P<status>[ci])")


def xferlog_fields(path: Path) -> list[dict[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        m = XFERLOG_LINE.fullmatch(line)
        assert m, line
        time.strptime(m["when"], "%a %b %d %H:%M:%S %Y")
        assert int(m["secs"]) >= 1
        out.append({k: m[k] for k in ("host", "size", "path", "type", "dir", "access",
                                      "user", "status")})
    return out


def xfer(size: int, path: str, direction: str) -> dict[str, str]:
    return {"host": HOST, "size": str(size), "path": path, "type": "b", "dir": direction,
            "access": "r", "user": USER, "status": "c"}


def reload(server: Ftpd) -> None:
    before = server.log().count("configuration reloaded")
    os.kill(server.pid, signal.SIGHUP)
    wait_until(lambda: server.log().count("configuration reloaded") > before,
               what="SIGHUP reload")


def test_xferlog_one_line_per_transfer_and_reopened_after_sighup(ftpd, tmp_path):
    xferlog = tmp_path / "xferlog"
    server = ftpd("-n", "-u", USER, "-P", PASSWORD, "--xferlog", str(xferlog))
    client = server.ftp()
    store(client, "a.bin", b"a" * 1234)
    fetch(client, "a.bin")
    client.retrlines("LIST", lambda line: None)  # not a transfer of a file: no line
    client.mkd("sub")
    wait_for_file(xferlog, lines=2)
    assert xferlog_fields(xferlog) == [xfer(1234, "/a.bin", "i"), xfer(1234, "/a.bin", "o")]

    rotated = tmp_path / "xferlog.1"
    xferlog.rename(rotated)  # logrotate: move, then SIGHUP
    reload(server)
    store(client, "b.bin", b"b" * 99)  # the same session goes on, into the fresh file
    wait_for_file(xferlog, lines=1)
    client.quit()
    assert xferlog_fields(xferlog) == [xfer(99, "/b.bin", "i")]
    assert len(xferlog_fields(rotated)) == 2


def test_sighup_keeps_exactly_one_sink(ftpd, udp):
    server = ftpd(*named(udp.spec))
    client = server.ftp()
    reload(server)
    reload(server)
    store(client, "after.txt", b"x")
    client.quit()
    msgs = udp.take(3)
    udp.nothing_more(server)  # each message once: the old sinks are closed, not kept
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"S", *transfer(b"/after.txt", 1))
    ex.check(msgs[2], b"O", *logout(0, 0, 1, 1, b"QUIT"))


# -- refused transfers (EVENTS.md: status PERM, NOENT) ---------------------------------------

def test_refused_download_of_a_missing_file_gives_noent(ftpd, udp):
    server = ftpd(*named(udp.spec))
    client = server.ftp()
    client.voidcmd("TYPE I")
    with pytest.raises(ftplib.error_perm, match="^550"):
        fetch(client, "missing.bin")
    client.quit()
    msgs = udp.take(2)  # (a third would be the logout)
    ex = Expect(server.pid, server.started)
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"R", *transfer(b"/missing.bin", 0, b"NOENT", size=0))
    ex.check(udp.take(1)[0], b"O", *logout(0, 0, 0, 0, b"QUIT"))


def test_refused_anonymous_upload_gives_perm(ftpd, udp):
    server = ftpd("--event-sink", udp.spec)  # anonymous is read-only without -w
    client = server.ftp("anonymous", "guest@example.org")
    client.voidcmd("TYPE I")
    with pytest.raises(ftplib.error_perm, match="^550"):
        store(client, "nope.bin", b"x")
    client.quit()
    msgs = udp.take(2)
    ex = Expect(server.pid, server.started, user=b"anonymous", email=b"guest@example.org")
    ex.check(msgs[0], b"I")
    ex.check(msgs[1], b"S", *transfer(b"/nope.bin", 0, b"PERM", size=0))
    ex.check(udp.take(1)[0], b"O", *logout(0, 0, 0, 0, b"QUIT"))


def test_the_sessions_ask_the_server_bus_whether_anyone_listens(tmp_path):
    """Server.config (also a reloaded one) answers ``listens`` from the live bus: a
    listener registered at any time gets its events from then on."""
    from ftpd.core.session import SessionConfig
    from ftpd.embed import FTPServer

    server = FTPServer(str(tmp_path)).server
    config = server.config
    assert not config.listens("fs.mkdir")
    server.bus.register("fs.mkdir", lambda data, user: None)
    assert config.listens("fs.mkdir")
    server.config = SessionConfig()  # as a reload does
    assert server.config.listens("fs.mkdir") and not server.config.listens("fs.rmdir")
    server.loop.close()

"""``--proxy-protocol``: a real ftpd told that 127.0.0.1 is its load balancer. Raw
sockets from 127.0.0.1 play the balancer (a header, then the client's bytes); the
session must see the carried client address — STAT's "Connected to", the bounce
check, the passive theft check, the per-IP cap — and a connection from the balancer
without a valid header is closed without a word."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from ftpsupport import FtpdProcess, RawControl, ftpd_argv, start_ftpd, stop_pid, wait_until

from ftpd.io.proxyproto import v1_header, v2_header

HOST = "127.0.0.1"
CLIENT = ("203.0.113.7", 40001)
OTHER = ("203.0.113.8", 40002)
FRONT = ("198.51.100.1", 21)
PAYLOAD = bytes(range(256)) * 300


def start(tmp_path: Path, *args: str) -> FtpdProcess:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "file.bin").write_bytes(PAYLOAD)

    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        argv = ["-l", f"{HOST}:{ports[0]}", "-r", str(root), "-v", "-u", "user", "-P", "pw",
                "--failed-login-delay", "0", "--shutdown-timeout", "5", *args]
        return FtpdProcess(argv, port=ports[0], log_path=tmp_path / f"ftpd{attempt}.log")

    # the readiness probe connects from 127.0.0.1 and sends nothing: with a balancer on
    # loopback that is a connection without a header, dropped (and logged) after 10 s
    # at most, which is fine: the probe only needs the port to accept
    return start_ftpd(spawn)


@pytest.fixture
def balanced(tmp_path: Path):
    server = start(tmp_path, "--proxy-protocol", HOST)
    yield server
    server.stop()


def through_balancer(server: FtpdProcess, header: bytes, first: bytes = b"") -> RawControl:
    """A control connection from the 'balancer': *header*, and *first* in the same
    packet (a client's first command may arrive with it)."""
    conn = RawControl(server.host, server.port, greet=False)
    conn.send(header + first)
    return conn


def connected_to(conn: RawControl) -> str:
    text = conn.expect("STAT", 211)
    return next(line for line in text.splitlines() if "Connected to" in line)


@pytest.mark.parametrize("make", [v1_header, v2_header], ids=["v1", "v2"])
def test_session_sees_the_carried_client(balanced, make):
    with through_balancer(balanced, make(CLIENT, FRONT), b"USER user\r\n") as conn:
        assert conn.reply()[0] == 220
        assert conn.reply()[0] == 331  # the command sent with the header was kept
        conn.expect("PASS pw", 230)
        assert connected_to(conn).endswith(CLIENT[0])
    wait_until(lambda: f"{CLIENT[0]}:{CLIENT[1]} via balancer {HOST}" in balanced.log(),
               "the carried address in the log")


def test_header_byte_by_byte(balanced):
    with through_balancer(balanced, b"") as conn:
        for byte in v2_header(CLIENT, FRONT):
            conn.send(bytes([byte]))
        assert conn.reply()[0] == 220
        conn.login()
        assert connected_to(conn).endswith(CLIENT[0])


def test_local_command_is_a_health_check_served_as_the_balancer(balanced):
    with through_balancer(balanced, v2_header(None)) as conn:
        assert conn.reply()[0] == 220
        conn.login()
        assert connected_to(conn).endswith(HOST)
        conn.expect("QUIT", 221)


@pytest.mark.parametrize("data, reason", [
    (b"USER user\r\n", "no PROXY header"),  # a client reaching ftpd past the balancer
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "bad v1 header"),
    (b"PROXY TCP4 1.2.3.4 " + b"9" * 120, "too long"),
    (b"\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\x00", "TCP only"),
])
def test_no_valid_header_is_closed_without_a_reply(balanced, data, reason):
    with through_balancer(balanced, data) as conn:
        assert conn.wait_closed()
        assert conn.received == b""
    wait_until(lambda: f"{HOST}: dropped: " in balanced.log() and reason in balanced.log(),
               "one log line for the drop")


def test_closing_within_the_header_is_dropped_and_the_server_goes_on(balanced):
    conn = through_balancer(balanced, v2_header(CLIENT, FRONT)[:10])
    conn.close()
    wait_until(lambda: "closed within the PROXY header" in balanced.log(), "the drop logged")
    with through_balancer(balanced, v1_header(CLIENT, FRONT)) as again:
        assert again.reply()[0] == 220


def test_per_ip_cap_counts_the_carried_address(tmp_path):
    server = start(tmp_path, "--proxy-protocol", HOST, "--max-connections-per-ip", "1")
    try:
        with through_balancer(server, v2_header(CLIENT, FRONT)) as first:
            assert first.reply()[0] == 220
            with through_balancer(server, v2_header(CLIENT, FRONT)) as second:
                assert second.reply()[0] == 421  # the same client, via the same balancer
            with through_balancer(server, v1_header(OTHER, FRONT)) as other:
                assert other.reply()[0] == 220  # another client, via the same balancer
    finally:
        server.stop()


def test_port_bounce_check_uses_the_carried_client(balanced):
    with through_balancer(balanced, v2_header(CLIENT, FRONT)) as conn:
        assert conn.reply()[0] == 220
        conn.login()
        # 127.0.0.1 is where the bytes come from, but not the client: a bounce
        assert "bounce" in conn.expect("PORT 127,0,0,1,200,10", 501)
        assert "bounce" in conn.expect("EPRT |1|127.0.0.1|51210|", 501)
        conn.expect("PORT 203,0,113,7,200,10", 200)  # the client's own address is fine


def closed_silently(sock: socket.socket) -> bool:
    """The server closed *sock* (a FIN, or a reset: it left our bytes unread) having
    sent nothing."""
    sock.settimeout(10)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def data_connection(port: int, header: bytes) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(header)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    for _ in range(100_000):
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_passive_data_through_the_balancer_and_the_theft_check(balanced):
    with through_balancer(balanced, v2_header(CLIENT, FRONT)) as conn:
        assert conn.reply()[0] == 220
        conn.login()
        conn.expect("TYPE I", 200)
        _, port = conn.pasv()
        thief = data_connection(port, v2_header(OTHER, FRONT))  # another client: theft
        nothing = data_connection(port, b"RAW BYTES\r\n")  # no header from the balancer
        with thief, nothing:
            assert closed_silently(thief)
            assert closed_silently(nothing)
        wait_until(lambda: f"{OTHER[0]} via balancer {HOST} refused" in balanced.log(),
                   "the theft logged with the carried address")
        with data_connection(port, v1_header(CLIENT, FRONT)) as data:
            conn.send_line("RETR file.bin")
            assert conn.reply()[0] in (125, 150)
            assert read_all(data) == PAYLOAD
        assert conn.reply()[0] == 226


def test_passive_header_naming_the_balancer_is_theft(balanced):
    """A data connection from the balancer must carry a header; one whose header names
    127.0.0.1 when the client is 203.0.113.7 is theft too."""
    with through_balancer(balanced, v2_header(CLIENT, FRONT)) as conn:
        assert conn.reply()[0] == 220
        conn.login()
        _, port = conn.pasv()
        with data_connection(port, v2_header((HOST, 5000), FRONT)) as data:
            assert closed_silently(data)
        conn.expect("ABOR", (225, 226))


def test_header_from_anyone_else_is_a_bad_command(tmp_path):
    server = start(tmp_path, "--proxy-protocol", "192.0.2.0/24")
    try:
        with RawControl(server.host, server.port) as conn:
            assert conn.greeting[0] == 220
            code, _ = conn.cmd(v1_header(CLIENT, FRONT).rstrip(b"\r\n"))
            assert code == 500
            conn.login()
            assert connected_to(conn).endswith(HOST)  # no header took effect
    finally:
        server.stop()


def test_implicit_ftps_behind_the_balancer(tmp_path):
    """The header comes before the TLS handshake, and the reader takes not one byte of
    the ClientHello that follows it."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = tmp_path / "cert.pem"
    ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(cert))
    root = tmp_path / "root"
    root.mkdir()

    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        argv = ["-l", f"{HOST}:{ports[0]}", "--implicit-listen", f"{HOST}:{ports[1]}",
                "--tls-cert", str(cert), "-r", str(root), "-u", "user", "-P", "pw",
                "--failed-login-delay", "0", "--proxy-protocol", HOST]
        return FtpdProcess(argv, port=ports[0], log_path=tmp_path / f"tls{attempt}.log")

    server = start_ftpd(spawn, nports=2)
    try:
        implicit_port = int(server.argv[server.argv.index("--implicit-listen") + 1]
                            .rpartition(":")[2])
        context = ssl.create_default_context()
        ca.configure_trust(context)
        raw = socket.create_connection((HOST, implicit_port), timeout=10)
        raw.sendall(v2_header(CLIENT, FRONT))
        conn = RawControl.__new__(RawControl)
        conn.attach(context.wrap_socket(raw, server_hostname=HOST))
        with conn:
            assert conn.reply()[0] == 220
            conn.login()
            assert connected_to(conn).endswith(CLIENT[0])
    finally:
        server.stop()


def inetd_session(tmp_path: Path, first: bytes) -> tuple[socket.socket, subprocess.Popen]:
    """ftpd -I serving one loopback connection (fds 0 and 1, as inetd hands it over)
    after the 'balancer' sent *first*."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    with socket.create_server((HOST, 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        server_side, _ = listener.accept()
    with server_side:
        proc = subprocess.Popen(
            ftpd_argv("-I", "-r", str(root), "-u", "user", "-P", "pw", "--log",
                      str(tmp_path / "inetd.log"), "--proxy-protocol", HOST),
            stdin=server_side.fileno(), stdout=server_side.fileno(),
            stderr=subprocess.DEVNULL)
    client.sendall(first)
    return client, proc


def test_inetd_nowait_reads_the_header_first(tmp_path):
    client, proc = inetd_session(tmp_path, v1_header(CLIENT, FRONT) + b"USER user\r\n")
    try:
        conn = RawControl.__new__(RawControl)
        conn.attach(client)
        assert conn.reply()[0] == 220
        assert conn.reply()[0] == 331
        conn.expect("PASS pw", 230)
        assert connected_to(conn).endswith(CLIENT[0])
        conn.expect("QUIT", 221)
        assert proc.wait(10) == 0
    finally:
        client.close()
        stop_pid(proc)


def test_inetd_nowait_without_a_header_exits_without_a_reply(tmp_path):
    client, proc = inetd_session(tmp_path, b"USER user\r\n")
    try:
        assert closed_silently(client)
        assert proc.wait(10) == 0
        assert "dropped: no PROXY header" in (tmp_path / "inetd.log").read_text()
    finally:
        client.close()
        stop_pid(proc)


def test_sigterm_with_a_header_pending_exits_0_and_closes_it(tmp_path):
    server = start(tmp_path, "--proxy-protocol", HOST)
    conn = through_balancer(server, v2_header(CLIENT, FRONT)[:9])
    try:
        wait_until(lambda: "closed before a PROXY header" in server.log(), "the probe's drop")
        assert server.stop() == 0
        assert closed_silently(conn.sock)
    finally:
        conn.close()


def test_events_carry_the_client_address(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((HOST, 0))
        receiver.settimeout(10)
        sink = f"udp:{HOST}:{receiver.getsockname()[1]}"
        server = start(tmp_path, "--proxy-protocol", HOST, "--event-sink", sink)
        try:
            with through_balancer(server, v2_header(CLIENT, FRONT)) as conn:
                assert conn.reply()[0] == 220
                conn.login()
            frames = []
            for _ in range(20):  # the login event, among at most a few others
                frames.append(receiver.recv(65536))
                if CLIENT[0].encode() in frames[-1]:
                    break
            assert CLIENT[0].encode() in frames[-1], frames
            assert not any(b"127.0.0.1" in frame for frame in frames), frames
        finally:
            server.stop()


def test_headers_pending_are_capped_by_max_connections(tmp_path):
    server = start(tmp_path, "--proxy-protocol", HOST, "--max-connections", "1")
    try:
        wait_until(lambda: "closed before a PROXY header" in server.log(), "the probe's drop")
        header = v2_header(CLIENT, FRONT)
        with through_balancer(server, header[:5]) as pending:
            with through_balancer(server, header) as second:  # waits behind none: dropped
                assert closed_silently(second.sock)
            wait_until(lambda: "1 PROXY headers pending already" in server.log(), "the drop")
            pending.send(header[5:])
            assert pending.reply()[0] == 220
    finally:
        server.stop()

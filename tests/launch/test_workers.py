"""``--workers 2`` standalone on a free loopback port: both workers serve, the caps count
the sessions of both, event session ids stay unique, SIGHUP reaches every worker,
SIGTERM drains (a running transfer completes, then every process exits), a killed
worker is replaced and its sessions stop counting, --idle-timeout ends them all."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from ftpsupport import (
    DEADLINE,
    FtpdProcess,
    can_bind,
    read_text,
    start_ftpd,
    wait_until,
)
from lhelpers import Control, wait_exit, wait_pid_gone
from workerhelp import (
    children,
    open_session,
    quit_all,
    serving_pid,
    spread_sessions,
    wait_serving_pid,
    wait_workers,
)

BIG = 32 << 20  # a transfer that cannot fit in the socket buffers


def start(tmp_path: Path, served: Path, *args: str) -> FtpdProcess:
    log = tmp_path / "ftpd.log"

    def spawn(ports: list[int], attempt: int) -> FtpdProcess:
        return FtpdProcess(["-r", str(served), "-l", f"127.0.0.1:{ports[0]}", "--workers", "2",
                            "--log", str(log), *args], port=ports[0],
                           log_path=tmp_path / f"stderr-{attempt}.txt")

    server = start_ftpd(spawn)
    server.log_path = log
    return server


@pytest.fixture
def workers(tmp_path, served, request):
    args = getattr(request, "param", ())
    server = start(tmp_path, served, *args)
    try:
        yield server, wait_workers(server.pid, 2, server.log_path)
    finally:
        pids = children(server.pid)
        server.stop()
        for pid in pids:  # a worker left behind would be a bug: stopped all the same
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass



def _start_download(session: Control) -> tuple[socket.socket, int]:
    """Log in and start RETR big.bin; the data socket and the bytes read so far."""
    session.login()
    session.expect("TYPE I", 200)
    data = session.epsv()
    session.send("RETR big.bin")
    assert session.reply()[0] == 150
    return data, len(data.recv(65536))

def test_both_workers_serve_sessions(workers):
    server, pids = workers
    sessions = spread_sessions(server.port, pids, 4)
    for ctl, _ in sessions:
        ctl.login()
        assert ctl.cmd("RETR README.txt")[0] in (425, 503)  # a command, on its worker
    assert {pid for _, pid in sessions} == set(pids)
    quit_all(sessions)
    assert children(server.pid) == pids
    assert server.stop() == 0


@pytest.mark.parametrize("workers", [("--max-connections", "3")], indirect=True)
def test_max_connections_counts_the_sessions_of_every_worker(workers):
    server, pids = workers
    sessions = spread_sessions(server.port, pids, 3)
    for _ in range(4):  # whichever worker takes it, the fourth is one too many
        over = Control.connect("127.0.0.1", server.port)
        assert over.reply() == (421, "Too many connections; try again later.")
        assert over.read_to_eof() == b""
        over.close()
    quit_all(sessions[:1])
    again = wait_until(lambda: admitted(server.port), "the seat to come free")
    quit_all([(again, 0), *sessions[1:]])
    assert "max-connections" in read_text(server.log_path)


def admitted(port: int) -> Control | None:
    """A session greeted with 220, or None (refused with 421)."""
    ctl = Control.connect("127.0.0.1", port)
    code, _ = ctl.reply()
    if code == 220:
        return ctl
    ctl.close()
    return None


@pytest.mark.skipif(not can_bind("127.0.0.2"), reason="no 127.0.0.2 loopback")
@pytest.mark.parametrize("workers", [("--max-connections-per-ip", "2")], indirect=True)
def test_per_ip_cap_counts_the_sessions_of_every_worker(workers):
    server, pids = workers
    sessions = spread_sessions(server.port, pids, 2)
    for _ in range(4):
        over = Control.connect("127.0.0.1", server.port)
        assert over.reply() == (421, "Too many connections from your address.")
        over.close()
    other = open_session(server.port, source="127.0.0.2")  # another address is welcome
    other.login()
    quit_all([*sessions, (other, 0)])


def test_session_ids_are_unique_across_workers(workers):
    server, pids = workers
    sessions = spread_sessions(server.port, pids, 6)
    quit_all(sessions)
    wait_until(lambda: read_text(server.log_path).count("DISCONNECT") >= 6, "6 disconnects")
    text = read_text(server.log_path)
    ids = re.findall(r"\[([A-Za-z0-9+/=]{12})\] CONNECT", text)
    assert len(ids) >= 6 and len(set(ids)) == len(ids), ids
    by_pid = {int(pid): set(re.findall(rf"ftpd\[{pid}\] INFO \[([^\]]+)\] CONNECT", text))
              for pid in map(str, pids)}
    assert all(by_pid.values()), by_pid  # each worker named sessions, none twice
    assert not set.intersection(*by_pid.values())


def test_sighup_reload_reaches_every_worker(tmp_path, served):
    config = tmp_path / "ftpd.toml"
    config.write_text('banner = "before"\n')
    server = start(tmp_path, served, "-c", str(config))
    try:
        pids = wait_workers(server.pid, 2, server.log_path)
        config.write_text('banner = "after"\n')
        os.kill(server.pid, signal.SIGHUP)
        wait_until(lambda: read_text(server.log_path).count("configuration reloaded") == 2,
                   "both workers to reload")
        sessions = spread_sessions(server.port, pids, 4)
        assert {ctl.replies[0] for ctl, _ in sessions} == {(220, "after")}
        quit_all(sessions)
        config.write_text("no-such-key = 1\n")  # a bad one: said once, the old one stays
        os.kill(server.pid, signal.SIGHUP)
        wait_until(lambda: "reload failed" in read_text(server.log_path), "the refusal")
        assert read_text(server.log_path).count("reload failed") == 1
        assert open_session(server.port).replies[0] == (220, "after")
    finally:
        server.stop()


def test_sigterm_drains_a_running_transfer_then_every_process_exits(tmp_path, served):
    (served / "big.bin").write_bytes(os.urandom(1 << 20) * (BIG >> 20))
    server = start(tmp_path, served)
    pids = wait_workers(server.pid, 2, server.log_path)
    sessions = spread_sessions(server.port, pids, 2)
    (mover, _), (idle, _) = sessions
    data, got = _start_download(mover)
    os.kill(server.pid, signal.SIGTERM)
    assert idle.reply() == (421, "Server shutting down.")  # the idle one, on the other worker
    for pid in pids:  # as systemd does (the whole control group): still only a drain
        os.kill(pid, signal.SIGTERM)
    for _ in range(BIG):  # bounded: at least one byte per read
        chunk = data.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    data.close()
    assert got == BIG
    assert mover.reply()[0] == 226
    assert wait_exit(server.proc) == 0
    for pid in pids:
        wait_pid_gone(pid)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE).close()


def test_a_killed_worker_is_replaced_and_its_seats_are_freed(tmp_path, served):
    server = start(tmp_path, served, "--max-connections", "2")
    try:
        pids = wait_workers(server.pid, 2, server.log_path)
        victim_ctl = open_session(server.port)
        victim = wait_serving_pid(victim_ctl.sock, pids)
        os.kill(victim, signal.SIGKILL)
        assert victim_ctl.read_to_eof() == b""
        now = wait_workers(server.pid, 2, server.log_path, served=3)
        assert victim not in now and set(pids) - {victim} <= set(now)
        assert "killed by signal 9: restarting it" in read_text(server.log_path)
        both = [open_session(server.port), open_session(server.port)]  # 2 seats again
        for ctl in both:
            ctl.login()
        assert all(serving_pid(ctl.sock, now) for ctl in both)
        quit_all([(ctl, 0) for ctl in both])
    finally:
        server.stop()


def test_idle_timeout_ends_the_supervisor_and_every_worker(tmp_path, served):
    server = start(tmp_path, served, "--idle-timeout", "1")
    pids = wait_workers(server.pid, 2, server.log_path)
    held = open_session(server.port)
    held.login()
    until = time.monotonic() + 1.5  # a session on one worker keeps all of them up
    for _ in range(10_000):
        if time.monotonic() >= until:
            break
        held.expect("NOOP", 200)
    assert server.alive() and children(server.pid) == pids
    held.expect("QUIT", 221)
    held.read_to_eof()
    last = time.monotonic()
    assert wait_exit(server.proc, 1 + DEADLINE) == 0
    assert time.monotonic() - last >= 0.9, "exited before --idle-timeout passed"
    for pid in pids:
        wait_pid_gone(pid)
    assert read_text(server.log_path).count("idle for 1.0s: exiting") == 1


def test_a_second_sigterm_stops_the_workers_now(tmp_path, served):
    (served / "big.bin").write_bytes(os.urandom(1 << 20) * (BIG >> 20))
    server = start(tmp_path, served)
    pids = wait_workers(server.pid, 2, server.log_path)
    mover = open_session(server.port)
    data, got = _start_download(mover)
    os.kill(server.pid, signal.SIGTERM)
    wait_until(lambda: "stop signal: draining 1 session(s)" in read_text(server.log_path),
               "the drain to begin")
    os.kill(server.pid, signal.SIGTERM)
    for _ in range(BIG):
        try:
            chunk = data.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += len(chunk)
    data.close()
    assert got < BIG  # cut short: stopped now, not drained
    assert wait_exit(server.proc) == 0
    for pid in pids:
        wait_pid_gone(pid)
    assert "second stop signal: stopping the workers now" in read_text(server.log_path)


def test_one_worker_is_one_process(tmp_path, served):
    """--workers 1 (the default) is ftpd as it always was: no supervisor, no child."""
    log = tmp_path / "ftpd.log"
    server = start_ftpd(lambda ports, attempt: FtpdProcess(
        ["-r", str(served), "-l", f"127.0.0.1:{ports[0]}", "--workers", "1", "--log", str(log)],
        port=ports[0], log_path=tmp_path / f"stderr-{attempt}.txt"))
    try:
        ctl = open_session(server.port)
        assert serving_pid(ctl.sock, [server.pid]) == server.pid
        assert children(server.pid) == []
        quit_all([(ctl, 0)])
    finally:
        server.stop()
    assert "worker" not in read_text(log)

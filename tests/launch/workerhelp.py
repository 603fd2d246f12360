"""Helpers for the ``--workers`` tests: the supervisor's worker pids (from /proc), which
worker holds a client's connection (its socket's inode among the worker's fds), and
sessions opened until every worker holds some. Every loop is bounded."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from ftpsupport import DEADLINE, read_text, wait_until
from lhelpers import Control

MAX_SESSIONS = 64  # sessions opened at most to find one on each worker


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is *pid*."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != b"Z":
            found.append(int(entry))
    return sorted(found)


def wait_workers(pid: int, count: int, log: Path | None = None,
                 served: int | None = None) -> list[int]:
    """The *count* workers of supervisor *pid*, once each says it is serving (in *log*:
    ``served`` such lines in all, by default *count*)."""
    wanted = count if served is None else served
    wait_until(lambda: log is None or read_text(log).count(" serving (pid ") >= wanted,
               f"{wanted} 'worker serving' lines")
    return wait_until(lambda: (kids := children(pid)) and len(kids) == count and kids,
                      f"{count} workers of pid {pid}")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _server_side_inode(sock: socket.socket) -> str | None:
    """The inode of the server's end of *sock*'s connection (from /proc/net/tcp)."""
    client_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                return fields[9]
    return None


def serving_pid(sock: socket.socket, workers: list[int]) -> int | None:
    """Which of *workers* holds the server side of *sock*'s connection."""
    inode = _server_side_inode(sock)
    return next((pid for pid in workers if inode in _socket_inodes(pid)), None)


def wait_serving_pid(sock: socket.socket, workers: list[int]) -> int:
    return wait_until(lambda: serving_pid(sock, workers), "the worker holding a connection")


def open_session(port: int, source: str = "127.0.0.1") -> Control:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE,
                                    source_address=(source, 0))
    ctl = Control(sock)
    code, text = ctl.reply()
    assert code == 220, text
    return ctl


def spread_sessions(port: int, workers: list[int], count: int,
                    opener: Callable[[], Control] | None = None) -> list[tuple[Control, int]]:
    """*count* open sessions (at least 2), held by every worker among them: sessions
    are opened, and the last one replaced while they are all on one worker (bounded)."""
    opener = opener or (lambda: open_session(port))
    held: list[tuple[Control, int]] = []
    for _ in range(MAX_SESSIONS):
        ctl = opener()
        held.append((ctl, wait_serving_pid(ctl.sock, workers)))
        if len(held) == count and len({pid for _, pid in held}) == len(workers):
            return held
        if len(held) == count:  # all on too few workers: let the last one go, again
            last, _ = held.pop()
            last.expect("QUIT", 221)
            last.read_to_eof()
            last.close()
    raise AssertionError(f"no spread of {count} sessions over {workers} in {MAX_SESSIONS}")


def quit_all(sessions: list[tuple[Control, int]]) -> None:
    for ctl, _ in sessions:
        ctl.expect("QUIT", 221)
        ctl.read_to_eof()
        ctl.close()

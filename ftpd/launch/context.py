"""What every launch mode yields: the sockets to serve. The server does not know
which mode built it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import NamedTuple

from ftpd.core.record import Record


class Endpoint(NamedTuple):
    """A listening socket to accept on, or a connected control socket to serve."""

    sock: socket.socket
    implicit_tls: bool = False
    name: str = ""
    inherited: bool = False  # belongs to a launcher: never closed early, queue left alone
    client: tuple[str, int] | None = None  # a PROXY header's client, read by a parent already


class LaunchContext(Record):
    __slots__ = ("mode", "listeners", "connections", "notify", "watchdog_usec")

    def __init__(self, mode: str, listeners: list[Endpoint] | None = None,
                 connections: list[Endpoint] | None = None,
                 notify: Callable[[str], None] | None = None, watchdog_usec: int = 0) -> None:
        self.mode = mode  # standalone, inetd, inetd-wait, systemd, launchd, embedded
        self.listeners: list[Endpoint] = listeners if listeners is not None else []
        self.connections: list[Endpoint] = connections if connections is not None else []
        self.notify = notify  # sd_notify, whenever NOTIFY_SOCKET is set
        self.watchdog_usec = watchdog_usec

    @property
    def per_connection(self) -> bool:
        """No listeners: serve the handed-over connection(s) and exit (inetd no-wait)."""
        return not self.listeners

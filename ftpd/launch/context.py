"""What every launch mode yields: the sockets to serve. The server does not know
which mode built it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Endpoint:
    """A listening socket to accept on, or a connected control socket to serve."""

    sock: socket.socket
    implicit_tls: bool = False
    name: str = ""
    inherited: bool = False  # belongs to a launcher: never closed early, queue left alone


@dataclass
class LaunchContext:
    mode: str  # standalone, inetd, inetd-wait, systemd, launchd, embedded
    listeners: list[Endpoint] = field(default_factory=list)
    connections: list[Endpoint] = field(default_factory=list)
    notify: Callable[[str], None] | None = None  # sd_notify when under systemd
    watchdog_usec: int = 0

    @property
    def per_connection(self) -> bool:
        """No listeners: serve the handed-over connection(s) and exit (inetd no-wait)."""
        return not self.listeners

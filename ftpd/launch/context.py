"""What every launch mode yields: the sockets to serve. The server does not know
which mode built it."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable

from ftpd.core.record import Record


class Endpoint(namedtuple("Endpoint", ("sock", "implicit_tls", "name", "inherited", "client",
                                       "greeted"),
                           defaults=(False, "", False, None, False))):
    """A listening socket to accept on, or a connected control socket to serve.

    ``inherited``: belongs to a launcher (never closed early, queue left alone);
    ``client``: a PROXY header's client, read by a parent already; ``greeted``: the 220
    is written already (inetd no-wait, ``ftpd.launch.inetd.greet``). A
    ``collections.namedtuple``: ``typing`` stays off the ``ftpd -I`` start-up path."""

    __slots__ = ()


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

"""The server: one loop serving the sockets of a LaunchContext. Accepts, enforces
connection caps, exits when idle, drains gracefully on SIGTERM (the "poisoned"
state) and reloads on SIGHUP. It knows sessions only as control connections."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ftpd.auth.base import Authorizer
from ftpd.core.events import ServerEvent
from ftpd.core.ids import server_key, session_id
from ftpd.core.record import Record
from ftpd.core.session import SessionConfig
from ftpd.io.backoff import OUT_OF_FDS, AcceptPause
from ftpd.io.chunks import ChunkPool
from ftpd.io.control import ControlConnection
from ftpd.io.loop import EventLoop, TimerHandle
from ftpd.launch.context import Endpoint, LaunchContext
from ftpd.log import get_logger

log = get_logger("ftpd.server")

ACCEPTS_PER_EVENT = 64


class ServerOptions(Record):
    """Limits and timers of the transport (the core's policy is SessionConfig)."""

    __slots__ = ("timeout", "data_timeout", "max_connections", "max_connections_per_ip",
                 "idle_timeout", "shutdown_timeout", "auth_workers", "server_id")

    def __init__(self, timeout: float = 300.0, data_timeout: float = 300.0,
                 max_connections: int = 512, max_connections_per_ip: int = 0,
                 idle_timeout: float = 0.0, shutdown_timeout: float = 60.0,
                 auth_workers: int = 2, server_id: str | None = None) -> None:
        self.timeout, self.data_timeout = timeout, data_timeout
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self.idle_timeout, self.shutdown_timeout = idle_timeout, shutdown_timeout
        self.auth_workers = auth_workers
        self.server_id = server_id or os.uname().nodename  # --server-id: in session ids


class Server:
    def __init__(self, launch: LaunchContext, session_config: SessionConfig,
                 authorizer: Authorizer, options: ServerOptions | None = None,
                 bus: Any = None) -> None:
        if bus is None:
            from ftpd.events.bus import EventBus

            bus = EventBus()
        self.launch = launch
        self.config = session_config
        self.authorizer = authorizer
        self.options = options or ServerOptions()
        self.bus = bus
        self.loop = EventLoop()
        self.recv_buffer = bytearray(1 << 20)  # shared: the loop is single-threaded
        self.connections: set[ControlConnection] = set()
        self.per_ip: Counter[str] = Counter()
        self.tls: Any = None  # ftpd.io.tls.TLSManager when FTPS is configured
        self.on_reload: Callable[[], None] | None = None
        self.event_listeners: list[Any] = []  # sinks and xferlog (closed on exit)
        self.stopping = False
        self._listeners: list[Endpoint] = []
        self._counter = 0
        self._pid = os.getpid()
        self._key_of: tuple[str, int] = ("", 0)  # (server id, its server_key), cached
        self._idle_timer: TimerHandle | None = None
        self._executor: Any = None
        self.chunk_pool = ChunkPool(self.loop)  # data chunks of pool-fed transfers
        self._started = threading.Event()
        self._implicit_config: SessionConfig | None = None
        self._implicit_base: SessionConfig | None = None
        self.accept_pause = AcceptPause(self.loop)  # out of descriptors: wait, then retry

    # -- sessions ---------------------------------------------------------------------
    def session_config(self, implicit_tls: bool) -> SessionConfig:
        if not implicit_tls:
            return self.config
        if self._implicit_base is not self.config:  # first use, or reloaded since
            self._implicit_base = self.config
            self._implicit_config = self.config.replace(implicit_tls=True)
        assert self._implicit_config is not None
        return self._implicit_config

    def _next_id(self) -> str:
        self._counter += 1
        server_id = self.options.server_id
        if self._key_of[0] != server_id:  # first id, or --server-id changed on reload
            self._key_of = (server_id, server_key(server_id))
        return session_id(time.time(), self._pid, self._counter, self._key_of[1])

    def _adopt(self, sock: socket.socket, implicit_tls: bool) -> None:
        try:
            conn = ControlConnection(self, sock, self._next_id(), implicit_tls)
        except OSError:  # the client is already gone (getpeername fails)
            sock.close()
            return
        refuse = None
        host = conn.peer[0]
        if self.stopping:
            refuse = "Server shutting down."
        elif len(self.connections) >= self.options.max_connections:
            refuse = "Too many connections; try again later."
        elif 0 < self.options.max_connections_per_ip <= self.per_ip[host]:
            refuse = "Too many connections from your address."
        self.connections.add(conn)
        self.per_ip[host] += 1
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if refuse is not None:
            log.info("refused %s: %s", host, refuse)
            if implicit_tls:  # no TLS handshake for a refusal: just close
                conn.close()
                return
        conn.start(refuse)
        self._status()

    def connection_closed(self, conn: ControlConnection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        host = conn.peer[0]
        self.per_ip[host] -= 1
        if self.per_ip[host] <= 0:
            del self.per_ip[host]
        self._status()
        if not self.connections:
            if self.stopping or self.launch.per_connection:
                self.loop.call_soon(self.loop.stop)
            else:
                self._arm_idle_timer()

    def start_workers(self) -> None:
        """The auth worker pool (created on first use, or before privileges drop)."""
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.options.auth_workers,
                                                thread_name_prefix="ftpd-auth")

    def authenticate(self, username: str, password: str, done: Callable[[Any], None]) -> None:
        """Run the authorizer off the loop (password hashing is slow by design)."""
        if getattr(self.authorizer, "cheap", False):  # no hashing: answer on the loop
            try:
                account = self.authorizer.authenticate(username, password)
            except Exception:
                log.exception("authorizer failed for %r", username)
                account = None
            self.loop.call_soon(done, account)
            return
        self.start_workers()

        def check() -> None:
            try:
                account = self.authorizer.authenticate(username, password)
            except Exception:
                log.exception("authorizer failed for %r", username)
                account = None
            self.loop.call_soon_threadsafe(done, account)

        self._executor.submit(check)

    # -- listening ----------------------------------------------------------------------
    def _accept(self, endpoint: Endpoint) -> None:
        for _ in range(ACCEPTS_PER_EVENT):
            try:
                sock, _addr = endpoint.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_FDS:  # the connection stays queued: do not spin
                    self.accept_pause.out_of_fds(exc, self._unwatch_listeners,
                                                 self._watch_listeners)
                else:  # the client gave up meanwhile (ECONNABORTED, ...)
                    log.warning("accept failed: %s", exc)
                return
            self._adopt(sock, endpoint.implicit_tls)

    def _watch_listeners(self) -> None:
        for ep in self._listeners:
            self.loop.add_reader(ep.sock, lambda ep=ep: self._accept(ep))

    def _unwatch_listeners(self) -> None:
        for ep in self._listeners:
            self.loop.remove_reader(ep.sock)

    def _arm_idle_timer(self) -> None:
        if self.options.idle_timeout > 0 and self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.options.idle_timeout, self._idle_exit)

    def _idle_exit(self) -> None:
        self._idle_timer = None
        if not self.connections:
            log.info("idle for %ss: exiting", self.options.idle_timeout)
            self.bus.generate("core.idle-timeout",
                              ServerEvent(time.time(), {"idle": self.options.idle_timeout}))
            self.loop.stop()

    def _status(self) -> None:
        if self.launch.notify is not None:
            self.launch.notify(f"STATUS={len(self.connections)} session(s)")

    # -- running -------------------------------------------------------------------
    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [ep.sock.getsockname()[:2] for ep in self.launch.listeners]

    def serve(self) -> None:
        """Run until stopped; returns when the loop ends (idle, drained, or stop())."""
        for ep in self.launch.listeners:
            ep.sock.setblocking(False)
            self._listeners.append(ep)
        self._watch_listeners()
        if threading.current_thread() is threading.main_thread():
            import signal

            self.loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal)
            self.loop.add_signal_handler(signal.SIGINT, self._on_stop_signal)
            self.loop.add_signal_handler(signal.SIGHUP, self._on_hup)
            # the CLI blocks these until now, so none is lost or fatal during start-up
            signal.pthread_sigmask(signal.SIG_UNBLOCK,
                                   {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
        self.start_event_listeners()
        self.bus.generate("core.startup", ServerEvent(time.time(), {"mode": self.launch.mode}))
        for ep in self.launch.connections:
            self._adopt(ep.sock, ep.implicit_tls)
        if not self.connections and not self.launch.per_connection:
            self._arm_idle_timer()
        if self.launch.notify is not None:
            self.launch.notify("READY=1")
            self._status()
            if self.launch.watchdog_usec:
                self._watchdog()
        self._started.set()
        try:
            if self.connections or self._listeners:
                self.loop.run()
        finally:
            self._cleanup()

    def start_event_listeners(self) -> None:
        """Hand the loop to event listeners that do their I/O on it (``start(loop)``, e.g.
        the Redis sink); at start-up and after a reload built new ones. Idempotent."""
        for listener in self.event_listeners:
            start = getattr(listener, "start", None)
            if start is not None:
                start(self.loop)

    def _watchdog(self) -> None:
        assert self.launch.notify is not None
        self.launch.notify("WATCHDOG=1")
        self.loop.call_later(self.launch.watchdog_usec / 2e6, self._watchdog)

    def _on_stop_signal(self, signum: int) -> None:
        if self.stopping:
            log.info("second stop signal: stopping now")
            self.stop_now()
        else:
            log.info("stop signal: draining %d session(s)", len(self.connections))
            self.begin_shutdown()

    def _on_hup(self, signum: int) -> None:
        if self.on_reload is None:
            log.info("SIGHUP: nothing to reload")
            return
        try:
            self.on_reload()
        except Exception as exc:  # a bad new config keeps the old one
            log.error("reload failed, keeping the old configuration: %s", exc)
        else:
            self.start_event_listeners()
            self.bus.generate("core.reload", ServerEvent(time.time()))

    def begin_shutdown(self) -> None:
        """Stop accepting; idle sessions get 421 now, running transfers finish first."""
        if self.stopping:
            return
        self.stopping = True
        if self.launch.notify is not None:
            self.launch.notify("STOPPING=1")
        for ep in self._listeners:
            self.loop.forget(ep.sock)
            if not ep.inherited:
                ep.sock.close()
        self._listeners.clear()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        for conn in list(self.connections):
            conn.call(conn.session.shutdown)
        if not self.connections:
            self.loop.stop()
        elif self.options.shutdown_timeout >= 0:
            self.loop.call_later(self.options.shutdown_timeout, self.stop_now)

    def stop_now(self) -> None:
        for conn in list(self.connections):
            conn.close()
        self.loop.stop()

    def stop(self) -> None:
        """Thread-safe: stop serving (graceful), from any thread."""
        self.loop.call_soon_threadsafe(self.begin_shutdown)

    def wait_started(self, timeout: float = 10.0) -> bool:
        return self._started.wait(timeout)

    def _cleanup(self) -> None:
        for conn in list(self.connections):
            conn.close()
        for ep in self._listeners:
            self.loop.forget(ep.sock)
            ep.sock.close()
        self._listeners.clear()
        self.bus.generate("core.shutdown", ServerEvent(time.time()))
        for listener in self.event_listeners:
            listener.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.chunk_pool.shutdown()
        self.loop.close()


"""The server: one loop serving the sockets of a LaunchContext. Accepts, enforces
connection caps, exits when idle, drains gracefully on SIGTERM (the "poisoned"
state) and reloads on SIGHUP. It knows sessions only as control connections."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ftpd.auth.base import Authorizer
from ftpd.core.events import ServerEvent
from ftpd.core.ids import server_key, session_id
from ftpd.core.record import Record
from ftpd.core.session import SessionConfig
from ftpd.io.backoff import OUT_OF_FDS, AcceptPause
from ftpd.io.chunks import ChunkPool
from ftpd.io.clock import Clock
from ftpd.io.control import ControlConnection
from ftpd.io.loop import EventLoop, TimerHandle
from ftpd.io.seats import Seats
from ftpd.launch.context import Endpoint, LaunchContext
from ftpd.log import get_logger

log = get_logger("ftpd.server")

ACCEPTS_PER_EVENT = 64
PASSES = 16  # wake-ups a busier --workers worker leaves a new connection to the others


class ServerOptions(Record):
    """Limits and timers of the transport (the core's policy is SessionConfig)."""

    __slots__ = ("timeout", "data_timeout", "max_connections", "max_connections_per_ip",
                 "idle_timeout", "shutdown_timeout", "auth_workers", "fs_workers",
                 "server_id", "proxy_networks", "access")

    def __init__(self, timeout: float = 300.0, data_timeout: float = 300.0,
                 max_connections: int = 512, max_connections_per_ip: int = 0,
                 idle_timeout: float = 0.0, shutdown_timeout: float = 60.0,
                 auth_workers: int = 2, fs_workers: int = 8,
                 server_id: str | None = None, proxy_networks: Any = None,
                 access: Any = None) -> None:
        self.timeout, self.data_timeout = timeout, data_timeout
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self.idle_timeout, self.shutdown_timeout = idle_timeout, shutdown_timeout
        self.auth_workers = auth_workers
        self.fs_workers = fs_workers
        self.server_id = server_id or os.uname().nodename  # --server-id: in session ids
        # ftpd.io.proxyread.ProxyNetworks (--proxy-protocol), or None: peers that must
        # begin with a PROXY header, whose carried client address is then the peer
        self.proxy_networks = proxy_networks
        self.access = access  # ftpd.access.AccessRules (--allow/--deny), or None


class Server:
    def __init__(self, launch: LaunchContext, session_config: SessionConfig,
                 authorizer: Authorizer, options: ServerOptions | None = None,
                 bus: Any = None, clock: Clock | None = None) -> None:
        """*clock* (``ftpd.io.clock``) drives every timer: real time unless a test
        passes a ``VirtualClock``."""
        if bus is None:
            from ftpd.events.bus import EventBus

            bus = EventBus()
        self.launch = launch
        self.bus = bus
        self.config = session_config
        self.authorizer = authorizer
        self.options = options or ServerOptions()
        self.loop = EventLoop(clock)
        self.recv_buffer = bytearray(1 << 20)  # shared: the loop is single-threaded
        self.connections: set[ControlConnection] = set()
        # connections counted for the caps: this process's (``Seats``), or every
        # --workers process's (``ftpd.io.seats.SharedSeats``, set by ftpd.launch.workers)
        self.seats: Any = Seats()
        self.idle_exit = True  # False in a --workers worker: the supervisor watches idleness
        self.accepts_per_event = ACCEPTS_PER_EVENT  # 1 in a worker: the others get a turn
        self.stop_signals_escalate = True  # a second SIGTERM stops now (not in a worker)
        self.tls: Any = None  # ftpd.io.tls.TLSManager when FTPS is configured
        self.on_reload: Callable[[], None] | None = None
        self.event_listeners: list[Any] = []  # sinks and xferlog (closed on exit)
        self.metrics: Any = None  # ftpd.metrics.Metrics with --metrics (read at scrape time)
        self.preload: tuple[str, ...] = ()  # modules this configuration imports lazily
        self.stopping = False
        self._listeners: list[Endpoint] = []
        self._counter = 0
        self._passed = 0  # consecutive wake-ups this worker left to a less busy one
        self._pid = os.getpid()
        self._key_of: tuple[str, int] = ("", 0)  # (server id, its server_key), cached
        self._idle_timer: TimerHandle | None = None
        self._executor: Any = None
        self.chunk_pool = ChunkPool(self.loop)  # data chunks of pool-fed transfers
        self._fs_pool: Any = None
        self._started = threading.Event()
        self._implicit_config: SessionConfig | None = None
        self._implicit_base: SessionConfig | None = None
        self.accept_pause = AcceptPause(self.loop)  # out of descriptors: wait, then retry
        self.header_readers: set[Any] = set()  # PROXY headers being read (not yet sessions)
        self.spawner: Any = None  # --pam on a shared loop: ftpd.launch.persession

    # -- sessions ---------------------------------------------------------------------
    @property
    def config(self) -> SessionConfig:
        """What new sessions get (replaced on reload); its events are built only
        when someone listens on this server's bus."""
        return self._config

    @config.setter
    def config(self, config: SessionConfig) -> None:
        config.listens = self.bus.__contains__
        self._config = config

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

    def _admit(self, sock: socket.socket, implicit_tls: bool, greeted: bool = False) -> None:
        """A new control connection: from a --proxy-protocol balancer its PROXY header
        is read first (caps count the client it carries), anyone else is adopted now."""
        networks = self.options.proxy_networks
        if networks:
            try:
                peer = sock.getpeername()
            except OSError:
                sock.close()
                return
            if peer[0] in networks:
                from ftpd.io.proxyread import ProxyHeaderReader

                if len(self.header_readers) >= self.options.max_connections:
                    log.warning("%s: dropped: %d PROXY headers pending already", peer[0],
                                len(self.header_readers))
                    sock.close()
                    return

                def done(header: Any) -> None:
                    self.header_readers.discard(reader)
                    self._proxied(sock, implicit_tls, peer, header)

                reader = ProxyHeaderReader(self.loop, sock, peer[0], done)
                self.header_readers.add(reader)
                return
        self._adopt(sock, implicit_tls, greeted=greeted)

    def _proxied(self, sock: socket.socket, implicit_tls: bool, peer: tuple[Any, ...],
                 header: Any) -> None:
        if header is None:  # missing or invalid: closed without a reply (logged)
            sock.close()
            self._after_drop()
            return
        from ftpd.io.proxyread import carried_peer

        client = carried_peer(header, peer)
        if header.client is None:  # the balancer's own health check: served as itself
            log.debug("%s: PROXY v%d health check (no address)", peer[0], header.version)
        else:
            log.info("%s:%s via balancer %s (PROXY v%d)", client[0], client[1], peer[0],
                     header.version)
        self._adopt(sock, implicit_tls, client)

    def _after_drop(self) -> None:
        """A connection that never became a session: per-connection launches end."""
        if self.connections or self.header_readers:
            return
        if self.launch.per_connection:
            self.loop.call_soon(self.loop.stop)
        elif not self.stopping:
            self._arm_idle_timer()

    def _adopt(self, sock: socket.socket, implicit_tls: bool,
               client: tuple[str, int] | None = None, greeted: bool = False) -> None:
        """A control connection; *greeted*: its 220 is written already (inetd no-wait)."""
        try:
            conn = ControlConnection(self, sock, self._next_id(), implicit_tls, client)
        except OSError:  # the client is already gone (getpeername fails)
            sock.close()
            return
        host = conn.peer[0]
        over_cap = self.seats.take(host, self.options.max_connections,
                                   self.options.max_connections_per_ip)
        refusal = self._refusal(host, over_cap)
        if refusal is None and self.spawner is not None:  # --pam: the session's own process
            child = self.spawner.hand_over(conn, implicit_tls)
            if child is None:
                refusal = "no-session-process", "Service not available; try again later."
            else:
                conn = child
        self.connections.add(conn)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if refusal is None:
            conn.start(greeted=greeted)
        else:
            from ftpd.sessionlog import refused_line

            reason, text = refusal
            log.info("%s", refused_line(conn.session.session_id, host, reason))
            if implicit_tls:  # no TLS handshake for a refusal: just close
                conn.close()
                return
            conn.start(text)
        self._status()

    def _refusal(self, host: str, over_cap: str | None) -> tuple[str, str] | None:
        """Why a new connection from *host* is turned away (the log's reason, the 421
        text), or None. --allow/--deny come before anything else; *over_cap* is the cap
        ``seats.take`` found it over."""
        access = self.options.access
        if access is not None and not access.permits(host):
            return "deny", "Service not available for your address."
        if self.stopping:
            return "shutdown", "Server shutting down."
        if over_cap == "max-connections":
            return "max-connections", "Too many connections; try again later."
        if over_cap == "max-connections-per-ip":
            return "max-connections-per-ip", "Too many connections from your address."
        return None

    def connection_closed(self, conn: ControlConnection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self.seats.release(conn.peer[0])
        self._status()
        if not self.connections:
            if self.stopping or self.launch.per_connection:
                self.loop.call_soon(self.loop.stop)
            else:
                self._arm_idle_timer()

    def start_workers(self) -> None:
        """The worker pools: the auth pool (password hashing) and the filesystem pool
        (the core's asks). Made on first use, or before privileges drop (--run-as)."""
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.options.auth_workers,
                                                thread_name_prefix="ftpd-auth")
        self._start_fs_pool()

    def _start_fs_pool(self) -> Any:
        if self._fs_pool is None:
            from ftpd.io.pool import WorkerPool

            self._fs_pool = WorkerPool(self.options.fs_workers, self.loop.call_soon_threadsafe)
        return self._fs_pool

    def run_in_pool(self, fn: Callable[..., Any], args: tuple[Any, ...],
                    done: Callable[[Any, BaseException | None], None]) -> None:
        """Run a session's ``Call`` (a filesystem call) in the filesystem worker pool;
        ``done(result, exc)`` runs on the loop. A pool of its own, not the auth pool:
        a slow or hung storage must not hold up logins, nor slow password hashing
        the file operations of sessions already in. Bounded: a storage that hangs
        ties up at most ``fs_workers`` threads; further calls wait in its queue."""
        loop = self.loop

        def answered(result: Any, exc: BaseException | None) -> None:
            loop.outstanding -= 1
            done(result, exc)

        loop.outstanding += 1  # the loop is not idle while a call is out (virtual time)
        try:
            self._start_fs_pool().submit(fn, args, answered)
        except RuntimeError as exc:  # the pool is shut down: the server is stopping
            answered(None, exc)

    def authenticate(self, username: str, password: str, done: Callable[[Any], None]) -> None:
        """Run the authorizer off the loop (password hashing is slow by design)."""
        if getattr(self.authorizer, "cheap", False):  # no hashing: answer on the loop
            try:
                account = self.authorizer.authenticate(username, password)
            except Exception:
                log.exception("authorizer failed for %r", username)
                account = None
            done(account)  # the command goes on now, as for any order answered at once
            return
        self.start_workers()
        loop = self.loop

        def answered(account: Any) -> None:
            loop.outstanding -= 1
            done(account)

        def check() -> None:
            try:
                account = self.authorizer.authenticate(username, password)
            except Exception:
                log.exception("authorizer failed for %r", username)
                account = None
            loop.call_soon_threadsafe(answered, account)

        loop.outstanding += 1  # the loop is not idle while a check is out (virtual time)
        self._executor.submit(check)

    # -- listening ----------------------------------------------------------------------
    def _accept(self, endpoint: Endpoint) -> None:
        if not self.seats.my_turn() and self._passed < PASSES:
            self._passed += 1  # --workers: a less busy worker, woken too, takes it
            return
        self._passed = 0
        for _ in range(self.accepts_per_event):
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
            self._admit(sock, endpoint.implicit_tls)

    def _watch_listeners(self) -> None:
        for ep in self._listeners:
            self.loop.add_reader(ep.sock, lambda ep=ep: self._accept(ep))

    def _unwatch_listeners(self) -> None:
        for ep in self._listeners:
            self.loop.remove_reader(ep.sock)

    def _arm_idle_timer(self) -> None:
        if self.options.idle_timeout > 0 and self._idle_timer is None and self.idle_exit:
            self._idle_timer = self.loop.call_later(self.options.idle_timeout, self._idle_exit)

    def _idle_exit(self) -> None:
        self._idle_timer = None
        if self.header_readers:  # a balancer's connection is on its way: not idle
            self._arm_idle_timer()
        elif not self.connections:
            log.info("idle for %ss: exiting", self.options.idle_timeout)
            self.bus.generate("core.idle-timeout", ServerEvent(self.loop.clock.wall(),
                                                               {"idle": self.options.idle_timeout}))
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
        self.bus.generate("core.startup",
                          ServerEvent(self.loop.clock.wall(), {"mode": self.launch.mode}))
        for ep in self.launch.connections:
            if ep.client is not None:  # --pam: the parent read its PROXY header
                self._adopt(ep.sock, ep.implicit_tls, ep.client, ep.greeted)
            else:
                self._admit(ep.sock, ep.implicit_tls, ep.greeted)
        if not self.connections and not self.header_readers and not self.launch.per_connection:
            self._arm_idle_timer()
        if self.launch.notify is not None:
            self.launch.notify("READY=1")
            self._status()
            if self.launch.watchdog_usec:
                self._watchdog()
        self._started.set()
        try:
            if self.connections or self.header_readers or self._listeners:
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
        if self.stopping and not self.stop_signals_escalate:
            log.debug("stop signal: draining already")
        elif self.stopping:
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
            self.bus.generate("core.reload", ServerEvent(self.loop.clock.wall()))

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
        self._drop_header_readers()
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

    def _drop_header_readers(self) -> None:
        for reader in list(self.header_readers):
            reader.cancel()
            reader.sock.close()
        self.header_readers.clear()

    def _cleanup(self) -> None:
        self._drop_header_readers()
        for conn in list(self.connections):
            conn.close()
        for ep in self._listeners:
            self.loop.forget(ep.sock)
            ep.sock.close()
        self._listeners.clear()
        self.bus.generate("core.shutdown", ServerEvent(self.loop.clock.wall()))
        for listener in self.event_listeners:
            listener.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.chunk_pool.shutdown()
        if self._fs_pool is not None:
            self._fs_pool.shutdown()
        self.loop.close()


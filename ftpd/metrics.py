"""Prometheus metrics for ``--metrics ADDR`` (the optional extra ``ftpd[metrics]``).

Counters are fed by the events bus on the loop thread; prometheus_client's HTTP server
answers scrapes from a daemon thread of its own and never touches the loop (its metrics
are thread-safe). Live values (sessions open, event-sink drops) are read from the server
at scrape time. Imported only when --metrics is set: prometheus_client alone costs about
100 ms of start-up, which a process per connection (inetd no-wait) would pay each time
for numbers nobody could aggregate, so that mode refuses --metrics (``ftpd.cli``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ftpd.events.bus import Listener
from ftpd.log import get_logger

log = get_logger("ftpd.metrics")

INSTALL_HINT = ("--metrics needs the prometheus_client library: "
                "install the extra, pip install 'ftpd[metrics]'")
# Local filesystem calls take microseconds, object-store calls up to seconds.
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DIRECTIONS = {"download": "down", "upload": "up"}
# FileSystem methods timed as one storage call each (ftpd.fs.base.FileSystem).
TIMED_OPS = ("stat", "lstat", "listdir", "readlink", "open_read", "open_write", "mkdir",
             "rmdir", "remove", "rename", "chmod", "utime", "symlink")

Observe = Callable[[str, float], None]


class MetricsError(Exception):
    """--metrics cannot be served (library missing, address not bindable): one line."""


class Metrics(Listener):
    """The registry of one server, fed by its bus. ``observe_storage_call`` and
    ``storage_call`` are for the transport, wherever it runs filesystem calls."""

    events = ("session.connect", "session.login", "session.login-failed",
              "fs.download", "fs.upload")

    def __init__(self, server: Any) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise MetricsError(INSTALL_HINT) from None
        prom.disable_created_metrics()  # no *_created series: this process is ours
        self.registry = prom.CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.sessions = prom.Counter("ftpd_sessions", "Control connections greeted.",
                                     registry=reg)
        self.logins = prom.Counter("ftpd_logins", "Logins, by result (ok or failed).",
                                   ["result"], registry=reg)
        self.bytes = prom.Counter("ftpd_transfer_bytes", "File bytes moved over data "
                                  "connections, by direction (down or up).",
                                  ["direction"], registry=reg)
        self.files = prom.Counter("ftpd_transfer_files", "Files transferred completely "
                                  "(status OK), by direction.", ["direction"], registry=reg)
        self.transfers = prom.Counter("ftpd_transfers", "Ended or refused file transfers, "
                                      "by direction and status (OK, ABOR, INCOMPLETE, PERM, "
                                      "NOENT, ERROR).", ["direction", "status"], registry=reg)
        self.storage = prom.Histogram("ftpd_storage_call_seconds", "Duration of filesystem "
                                      "calls, by operation.", ["op"], registry=reg,
                                      buckets=STORAGE_BUCKETS)
        for result in ("ok", "failed"):
            self.logins.labels(result)
        for direction in DIRECTIONS.values():
            self.bytes.labels(direction)
            self.files.labels(direction)
        self._storage_children: dict[str, Any] = {}
        self.live = LiveCollector(server)
        reg.register(self.live)
        self._httpd: Any = None

    # -- the bus ----------------------------------------------------------------------
    def on_event(self, event_data: Any, name: str) -> None:
        if name == "session.connect":
            self.sessions.inc()
        elif name == "session.login":
            self.logins.labels("ok").inc()
        elif name == "session.login-failed":
            self.logins.labels("failed").inc()
        else:  # fs.download, fs.upload
            direction = DIRECTIONS[event_data.direction]
            self.transfers.labels(direction, event_data.status).inc()
            if event_data.bytes:
                self.bytes.labels(direction).inc(event_data.bytes)
            if event_data.status == "OK":
                self.files.labels(direction).inc()

    # -- storage calls ------------------------------------------------------------------
    def observe_storage_call(self, op: str, seconds: float) -> None:
        """Record one filesystem call of *op* that took *seconds* (any thread)."""
        child = self._storage_children.get(op)
        if child is None:
            child = self._storage_children[op] = self.storage.labels(op)
        child.observe(seconds)

    @contextmanager
    def storage_call(self, op: str) -> Iterator[None]:
        """``with metrics.storage_call("stat"): fs.stat(path)``"""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe_storage_call(op, time.perf_counter() - start)

    def timed_factory(self, factory: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """A SessionConfig.fs_factory whose filesystems time every call (and the
        factory's own work, as op ``mount``)."""

        def make(account: Any) -> Any:
            with self.storage_call("mount"):
                fs = factory(account)
            return TimedFileSystem(fs, self.observe_storage_call)

        nowait = getattr(factory, "nowait", None)
        if nowait is not None:  # answered from memory: nothing to time, the same seam
            from ftpd.io.nowait import NOT_NOW

            def make_nowait(account: Any) -> Any:
                start = time.perf_counter()
                fs = nowait(account)
                if fs is NOT_NOW:
                    return fs
                self.observe_storage_call("mount", time.perf_counter() - start)
                return TimedFileSystem(fs, self.observe_storage_call)

            make.nowait = make_nowait  # type: ignore[attr-defined]
        return make

    # -- HTTP ---------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Listen on *host*:*port* (a daemon thread); returns the address bound."""
        from prometheus_client import start_http_server

        from ftpd.launch.standalone import format_address

        try:
            self._httpd, _thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(f"--metrics {format_address(host, port)}: cannot listen: "
                               f"{exc.strerror or exc}") from None
        return self._httpd.server_address[:2]

    def close(self) -> None:
        """Stop answering scrapes (waits at most the server's 0.5 s poll)."""
        self.detach()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()


class LiveCollector:
    """Values read at scrape time, on the HTTP thread: the number of connections, and
    the sinks' own ``dropped`` counters. Sinks that a reload closed are folded into a
    total per sink, so the counter never goes back."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._sinks: list[Any] = []
        self._retired: dict[str, int] = {}

    def sinks_replaced(self, old: list[Any], new: list[Any]) -> None:
        """*old* listeners are closed (their counts final); *new* ones serve from now."""
        with self._lock:
            for sink in old:
                if hasattr(sink, "dropped"):
                    self._retired[sink.description] = (
                        self._retired.get(sink.description, 0) + sink.dropped)
            self._sinks = [sink for sink in new if hasattr(sink, "dropped")]

    def _dropped(self) -> dict[str, int]:
        with self._lock:
            totals = dict(self._retired)
            for sink in self._sinks:
                totals[sink.description] = totals.get(sink.description, 0) + sink.dropped
        return totals

    def describe(self) -> list[Any]:
        return self._families()

    def _families(self) -> list[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        return [GaugeMetricFamily("ftpd_sessions_open", "Control connections open."),
                CounterMetricFamily("ftpd_event_sink_dropped", "Event messages an "
                                    "--event-sink dropped, by sink.", labels=["sink"])]

    def collect(self) -> Iterator[Any]:
        sessions, dropped = self._families()
        sessions.add_metric([], len(self.server.connections))
        yield sessions
        for description, count in self._dropped().items():
            dropped.add_metric([description], count)
        yield dropped


class TimedFileSystem:
    """A FileSystem that reports how long each call on it takes. Reads and writes on the
    file objects ``open_read``/``open_write`` return are not timed (the data pump moves
    them, with sendfile and splice where it can); everything else is forwarded."""

    def __init__(self, fs: Any, observe: Observe) -> None:
        self._fs = fs
        self._observe = observe

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fs, name)  # AttributeError: hasattr() stays truthful
        if name == "lstat_entries":
            return self._timed_entries(attr)
        return attr

    def _timed_entries(self, lstat_entries: Callable[..., Any]) -> Callable[..., Any]:
        def entries(vdir: str, names: Any) -> Iterator[Any]:
            """One observation for the whole directory, however it is iterated."""
            spent = 0.0
            it = iter(lstat_entries(vdir, names))
            try:
                while True:
                    start = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                    finally:
                        spent += time.perf_counter() - start
                    yield item
            finally:
                self._observe("lstat_entries", spent)

        return entries

    def __repr__(self) -> str:
        return f"<timed {self._fs!r}>"


def _timed(op: str) -> Callable[..., Any]:
    def call(self: TimedFileSystem, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self._fs, op)(*args, **kwargs)
        finally:
            self._observe(op, time.perf_counter() - start)

    call.__name__ = call.__qualname__ = op
    return call


for _op in TIMED_OPS:
    setattr(TimedFileSystem, _op, _timed(_op))


def start_metrics(server: Any, address: tuple[str, int]) -> Metrics:
    """The metrics of *server*, listening on *address* and fed by its bus."""
    metrics = Metrics(server)
    host, port = metrics.serve(*address)
    metrics.attach(server.bus)
    metrics.live.sinks_replaced([], server.event_listeners)
    from ftpd.launch.standalone import format_address

    log.info("metrics on http://%s/metrics", format_address(host, port))
    return metrics

"""The receiving side of NcFTPd event messages, for ftpd-eventd and your own receivers.
Reading never waits for processing: a reader thread drains the transport into a bounded
backlog, and only a full backlog stops it reading. Nothing received is dropped."""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ftpd.events.messages import Message, decode
from ftpd.events.ncftpd import MalformedMessage

log = logging.getLogger("ftpd.eventd")
_DONE = object()  # the reader's last word in the backlog


# -- event fields as text (for -v and --exec) --------------------------------------------------

def _text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.3f}"
    if name == "mode":
        return f"{value:04o}"
    return str(value)


def event_fields(ev: Message) -> list[tuple[str, str]]:
    """(name, text) for every field of *ev*: the common ones, the sender's server id, the
    type's own, then any tokens this version does not know as token_N (N as numbered in
    EVENTS.md)."""
    out = [("event", ev.name), ("type", ev.type), ("time", str(int(ev.time.timestamp()))),
           ("user", ev.user), ("email", ev.email), ("host", ev.host), ("session", ev.session_id),
           ("server", ev.server)]
    own = dataclasses.fields(ev)[8:]  # after type ... session_id, extra and server
    out += [(f.name, _text(f.name, getattr(ev, f.name))) for f in own]
    first = 7 + len(own)
    out += [(f"token_{first + i}", tok) for i, tok in enumerate(ev.extra)]
    return out


def event_env(ev: Message) -> dict[str, str]:
    """The FTPD_* environment of an --exec command (FTPD_EVENT=upload, FTPD_PATH=...)."""
    env = {"FTPD_" + name.upper(): value for name, value in event_fields(ev)}
    env["FTPD_SESSION_ID"] = ev.session_id
    return env


def describe(ev: Message) -> str:
    """One readable line (-v): ``upload user=alice host=... path=/incoming/report.pdf ...``."""
    parts = [ev.name, ev.time.strftime("at=%Y-%m-%dT%H:%M:%SZ")]
    for name, value in event_fields(ev)[1:]:
        if name in ("type", "time") or (name in ("email", "server") and not value):
            continue
        parts.append(f"{name}={shlex.quote(value)}")
    return " ".join(parts)


# -- what to do with an event --------------------------------------------------------------

class Delivery:
    """A message that must be settled: ``settle(True)`` once its handler and --exec command
    succeeded, ``settle(False)`` when one failed (a Redis entry is then not acknowledged
    and will be handled again). Plain bytes in the backlog need no settling."""

    __slots__ = ("data", "server", "settle")

    def __init__(self, data: bytes, server: str, settle: Callable[[bool], None]) -> None:
        self.data, self.server, self.settle = data, server, settle


class Dispatcher:
    """Decodes messages and calls the handler (in this thread, in order) and the --exec
    command (in at most *workers* threads; more events wait in the backlog)."""

    def __init__(self, handler: Any = None, command: Sequence[str] | None = None,
                 workers: int = 4, verbose: bool = False) -> None:
        self.handler = handler
        self.command = list(command) if command else None
        self.verbose = verbose
        self.events = self.malformed = 0
        self._methods: dict[type, Callable[[Message], Any] | None] = {}
        self._pool: Any = None
        if self.command:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="exec")
            self._slots = threading.BoundedSemaphore(workers)
            # the daemon's own environment, without FTPD_* that could be mistaken for fields
            self._base_env = {k: v for k, v in os.environ.items() if not k.startswith("FTPD_")}

    def dispatch(self, item: bytes | Delivery) -> None:
        """Handle one message from the backlog: raw bytes, or a Delivery to settle."""
        if isinstance(item, Delivery):
            data, server, settle = item.data, item.server, item.settle
        else:
            data, server, settle = item, "", _unsettled
        try:
            ev = decode(data, server)
        except MalformedMessage as exc:
            self.malformed += 1
            log.warning("malformed message skipped (%s): %r", exc, bytes(data[:60]))
            settle(True)  # it will never decode: handling it again would not help
            return
        self.events += 1
        if self.verbose:
            log.info("%s", describe(ev))
        ok = True
        if self.handler is not None:
            method = self._method(type(ev))
            if method is not None:
                try:
                    method(ev)
                except Exception:
                    ok = False
                    log.exception("handler failed on %s event", ev.name)
        if self._pool is None:
            settle(ok)
            return
        self._slots.acquire()
        try:
            self._pool.submit(self._run, ev, ok, settle)
        except BaseException:
            self._slots.release()
            raise

    def _method(self, cls: type) -> Callable[[Message], Any] | None:
        try:
            return self._methods[cls]
        except KeyError:
            name = getattr(cls, "name", "unknown")
            found = getattr(self.handler, "on_" + name, None) or getattr(
                self.handler, "on_event", None)
            self._methods[cls] = found
            return found

    def _run(self, ev: Message, ok: bool, settle: Callable[[bool], None]) -> None:
        command = self.command or []
        try:
            env = {**self._base_env, **event_env(ev)}
            done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, check=False)
            if done.returncode:
                ok = False
                log.warning("--exec %s: exit status %d on %s event", command[0],
                            done.returncode, ev.name)
        except Exception as exc:
            ok = False
            log.error("--exec %s failed on %s event: %s", command[0], ev.name, exc)
        finally:
            self._slots.release()
        try:
            settle(ok)
        except Exception:
            log.exception("settling the %s event failed", ev.name)

    def close(self) -> None:
        """Wait for the commands still running."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _unsettled(ok: bool) -> None:
    """Datagrams and queue messages are gone once read: nothing to acknowledge."""


# -- readers: transport -> backlog -----------------------------------------------------------

class Reader(threading.Thread):
    """Moves raw messages from a transport into the backlog until stopped; always ends by
    putting _DONE. ``failed`` says it stopped on an error rather than on request."""

    def __init__(self, backlog: queue.Queue[Any]) -> None:
        super().__init__(name="reader", daemon=True)
        self.backlog = backlog
        self.stopping = False
        self.failed = False

    def run(self) -> None:
        try:
            self.read()
        except Exception:
            self.failed = True
            log.exception("reader failed")
        finally:
            self.backlog.put(_DONE)

    def read(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping = True
        self.wake()

    def wake(self) -> None:
        """Interrupt a blocking read (safe in a signal handler, repeatable)."""

    def close(self) -> None:
        """After the last message was handled: finish what settling left (Redis acks)."""


class UdpReader(Reader):
    """Waits on the socket and a wake-up pipe; drains every datagram the socket holds."""

    def __init__(self, sock: Any, backlog: queue.Queue[Any]) -> None:
        super().__init__(backlog)
        self.sock = sock
        sock.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def read(self) -> None:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self.stopping:
                sel.select()
                self._drain(None)
        self._drain(self.backlog.maxsize or 10000)  # what the kernel holds already

    def _drain(self, limit: int | None) -> None:
        count = 0
        while limit is None or count < limit:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("recv: %s", exc)
                continue
            self.backlog.put(data)
            count += 1

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass


class QueueReader(Reader):
    """Blocking msgrcv in this thread; stop() interrupts it with SIGUSR1 (EINTR), repeated
    by the main loop until the thread has gone, so a wake-up can never be lost."""

    def __init__(self, mq: Any, backlog: queue.Queue[Any]) -> None:
        super().__init__(backlog)
        self.mq = mq

    def read(self) -> None:
        import sysv_ipc

        while not self.stopping:
            try:
                data, _mtype = self.mq.receive(block=True)
            except sysv_ipc.Error as exc:
                if type(exc) is sysv_ipc.Error:  # EINTR: "Signaled while waiting"
                    continue
                self.failed = True
                log.error("message queue: %s", exc)
                return
            self.backlog.put(data)

    def wake(self) -> None:
        ident = self.ident
        if ident is not None and self.is_alive():
            try:
                signal.pthread_kill(ident, signal.SIGUSR1)
            except (OSError, ValueError):
                pass


# -- the daemon ------------------------------------------------------------------------------

def serve(reader: Reader, dispatcher: Dispatcher, where: str = "") -> int:
    """Run until SIGTERM/SIGINT or a reader failure; finish the backlog and the commands
    still running; return the exit status. "reading WHERE" is logged once the signal
    handlers are in place, so whoever waits for that line may signal at once."""
    state = {"stopping": False}

    def on_signal(signum: int, frame: Any) -> None:
        if not state["stopping"]:
            log.info("signal %d: stopping after %d queued event(s)", signum,
                     reader.backlog.qsize())
        state["stopping"] = True
        reader.stop()

    signal.signal(signal.SIGUSR1, lambda signum, frame: None)  # only wakes the reader
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if where:
        log.info("reading %s", where)
    reader.start()
    get = reader.backlog.get
    while True:
        try:
            item = get(timeout=0.25)
        except queue.Empty:
            if state["stopping"]:
                reader.wake()
            continue
        if item is _DONE:
            break
        dispatcher.dispatch(item)
    dispatcher.close()
    reader.close()
    log.info("stopped: %d event(s), %d malformed", dispatcher.events, dispatcher.malformed)
    return 1 if reader.failed else 0

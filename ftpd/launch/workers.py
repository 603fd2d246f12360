"""``--workers N``: N processes, each its own selector loop, accepting on the same
listening sockets, watched by a supervisor that serves nothing itself.

The supervisor holds the listening sockets (bound standalone, or inherited from
systemd, ``-W`` inetd or launchd) and forks the workers, which inherit them: every
worker watches every listener and whoever is free accepts. Inherited shared sockets
rather than one ``SO_REUSEPORT`` socket per worker, because (1) sockets systemd,
inetd or launchd bound cannot be re-bound per worker, and one mechanism serves every
launch mode; (2) a worker that dies loses nothing: connections wait in the one
accept queue for the others, whereas a ``SO_REUSEPORT`` socket's queue dies with its
worker; (3) a restarted worker needs no bind (the port cannot be lost to another
program, and root is not needed again); (4) the kernel hashes ``SO_REUSEPORT``
connections blindly, while on a shared queue the worker not busy elsewhere takes the
next one. The cost is a spurious wake-up of the other workers per connection; a
worker takes one connection per wake-up, so a burst is shared out.

The caps count the connections of all workers (``ftpd.io.seats.SharedSeats``, made
before the fork). The supervisor restarts a worker that dies (with back-off, giving
up on one that keeps dying), forwards SIGTERM/SIGINT (graceful drain, in every
worker; a second one stops them now) and SIGHUP (reload, once the new
configuration is known to be good), exits on ``--idle-timeout`` when no worker has a
connection for that long, and speaks sd_notify (READY=1 once every worker is up).
Workers start one after another, so a configuration error is said once, by the
first, and its exit code is the supervisor's."""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable
from typing import Any

from ftpd.io.loop import EventLoop, TimerHandle
from ftpd.io.seats import SharedSeats
from ftpd.launch.context import LaunchContext
from ftpd.log import get_logger

log = get_logger("ftpd.workers")

FORWARDED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD,
             signal.SIGUSR1, signal.SIGUSR2}
IDLE_SIGNAL = signal.SIGUSR1  # supervisor -> worker: idle exit (core.idle-timeout, drain)
STOP_NOW_SIGNAL = signal.SIGUSR2  # supervisor -> worker: a second stop signal came
RESTART_WINDOW = 60.0  # seconds: deaths of one worker counted for its back-off
MAX_DEATHS = 8  # deaths in the window after which a worker is not restarted
FIRST_DELAY, LONGEST_DELAY = 0.1, 10.0  # restart back-off, doubling per death
KILL_GRACE = 10.0  # seconds past --shutdown-timeout before a worker is killed

# (settings, launch context, shared seats, ready) -> exit code, run in the worker
WorkerMain = Callable[[Any, LaunchContext, SharedSeats, Callable[[], None]], int]


class Slot:
    """One worker's place: its current pid, whether it ever came up, its deaths."""

    __slots__ = ("index", "pid", "ready", "deaths", "restart")

    def __init__(self, index: int) -> None:
        self.index = index
        self.pid = 0
        self.ready = False
        self.deaths: deque[float] = deque()
        self.restart: TimerHandle | None = None


def worker_context(launch: LaunchContext) -> LaunchContext:
    """A worker's view of the sockets: the listeners, and no sd_notify (the
    supervisor is systemd's main process and speaks for all)."""
    return LaunchContext(launch.mode, listeners=list(launch.listeners))


class Supervisor:
    def __init__(self, settings: Any, launch: LaunchContext, main: WorkerMain,
                 reload_settings: Callable[[], Any],
                 on_serving: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.launch = launch
        self.main = main
        self.reload_settings = reload_settings  # raises when the new config is bad
        self.on_serving = on_serving  # once every worker is up (log the sockets)
        self.loop = EventLoop()
        self.seats = SharedSeats(settings.workers, settings.max_connections, self.loop.time)
        self.slots = [Slot(i) for i in range(settings.workers)]
        self.starting = True
        self.stopping = False
        self.exit_code = 0
        self._idle_timer: TimerHandle | None = None

    # -- running --------------------------------------------------------------------
    def serve(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self._on_stop_signal)
        self.loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        self.loop.add_signal_handler(signal.SIGCHLD, lambda signum: self._reap())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # blocked by the CLI until now
        self._start(self.slots[0])
        try:
            self.loop.run()
        finally:
            for ep in self.launch.listeners:
                ep.sock.close()
            self.loop.close()
        return self.exit_code

    def _live(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.pid]

    def _notify(self, message: str) -> None:
        if self.launch.notify is not None:
            self.launch.notify(message)

    # -- starting a worker ------------------------------------------------------------
    def _start(self, slot: Slot) -> None:
        slot.restart = None
        ready_r, ready_w = os.pipe()
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            os.close(ready_r)
            os.close(ready_w)
            log.error("cannot start worker %d: %s", slot.index, exc.strerror)
            self._died(slot, 1)
            return
        if pid == 0:
            os.close(ready_r)
            self._child(slot.index, ready_w)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(ready_w)
        slot.pid = pid
        self.loop.add_reader(ready_r, lambda: self._ready(slot, pid, ready_r))

    def _child(self, index: int, ready_w: int) -> None:
        """In the new worker: leave the supervisor's loop, serve, exit (never return
        into the supervisor's code: its finally blocks, the pid file, are not ours)."""
        code = 1
        try:
            self.loop.close()  # its signal handlers and wake-up fd are the supervisor's
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            self.seats.bind(index)

            def ready() -> None:
                os.write(ready_w, b"1")
                os.close(ready_w)

            code = self.main(self.settings, worker_context(self.launch), self.seats, ready)
        except BaseException:  # noqa: BLE001 (whatever it is, the process must end here)
            log.exception("worker %d failed", index)
        finally:
            _flush_logs()
            os._exit(code)

    def _ready(self, slot: Slot, pid: int, ready_r: int) -> None:
        try:
            data = os.read(ready_r, 1)
        except OSError:
            data = b""
        self.loop.forget(ready_r)
        os.close(ready_r)
        if not data or slot.pid != pid:  # it died before serving: _reap says why
            return
        log.info("worker %d serving (pid %d)", slot.index, pid)
        slot.ready = True
        if self.stopping:  # a stop signal came while it started
            self._signal(slot, signal.SIGTERM)
        elif self.starting:
            following = slot.index + 1
            if following < len(self.slots):
                self._start(self.slots[following])
            else:
                self._all_started()
        self._status()

    def _all_started(self) -> None:
        self.starting = False
        if self.on_serving is not None:
            self.on_serving()
        self._notify("READY=1")
        if self.launch.watchdog_usec:
            self._watchdog()
        self._arm_idle_check(self.settings.idle_timeout)

    def _status(self) -> None:
        self._notify(f"STATUS={len(self._live())} worker(s)")

    def _watchdog(self) -> None:
        self._notify("WATCHDOG=1")
        self.loop.call_later(self.launch.watchdog_usec / 2e6, self._watchdog)

    # -- a worker ended ---------------------------------------------------------------
    def _reap(self) -> None:
        for _ in range(1024):
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is not None:
                self._died(slot, os.waitstatus_to_exitcode(status))
        if self.stopping and not self._live():
            self.loop.stop()

    def _died(self, slot: Slot, code: int) -> None:
        pid, slot.pid = slot.pid, 0
        self.seats.clear(slot.index)  # its connections are gone: they count no more
        if self.stopping:
            return
        how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
        if self.starting and not slot.ready:  # it said why (one line): we stop with it
            log.debug("worker %d (pid %d) %s while starting", slot.index, pid, how)
            self.exit_code = code if code > 0 else 1
            self._begin_stop()
            return
        now = self.loop.time()
        slot.deaths.append(now)
        while slot.deaths and slot.deaths[0] < now - RESTART_WINDOW:
            slot.deaths.popleft()
        if len(slot.deaths) >= MAX_DEATHS:
            log.error("worker %d (pid %d) %s; it died %d times in %ds: not restarting it",
                      slot.index, pid, how, len(slot.deaths), RESTART_WINDOW)
            if not self._live() and not any(s.restart for s in self.slots):
                self.exit_code = 1
                self._begin_stop()
            self._status()
            return
        delay = min(FIRST_DELAY * 2 ** (len(slot.deaths) - 1), LONGEST_DELAY)
        log.warning("worker %d (pid %d) %s: restarting it in %.1fs", slot.index, pid, how,
                    delay)
        slot.ready = False
        slot.restart = self.loop.call_later(delay, self._start, slot)
        self._status()

    # -- signals ----------------------------------------------------------------------
    def _signal(self, slot: Slot, signum: int) -> None:
        if slot.pid:
            try:
                os.kill(slot.pid, signum)
            except ProcessLookupError:
                pass

    def _on_stop_signal(self, signum: int) -> None:
        if self.stopping:
            log.info("second stop signal: stopping the workers now")
            for slot in self._live():
                self._signal(slot, STOP_NOW_SIGNAL)
            return
        log.info("stop signal: draining %d worker(s)", len(self._live()))
        self._begin_stop()

    def _begin_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop accepting and drain: every worker gets *signum* (SIGTERM, or the idle
        signal), and the supervisor ends once they have all exited."""
        if self.stopping:
            return
        self.stopping = True
        self._notify("STOPPING=1")
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
                slot.restart = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        for ep in self.launch.listeners:  # our copies: the port closes with the workers'
            if not ep.inherited:
                self.loop.forget(ep.sock)
                ep.sock.close()
        for slot in self._live():
            self._signal(slot, signum)
        if not self._live():
            self.loop.stop()
        elif self.settings.shutdown_timeout >= 0:
            self.loop.call_later(self.settings.shutdown_timeout + KILL_GRACE, self._kill_all)

    def _kill_all(self) -> None:
        for slot in self._live():
            log.warning("worker %d (pid %d) still running: killed", slot.index, slot.pid)
            self._signal(slot, signal.SIGKILL)

    def _on_hup(self, signum: int) -> None:
        """Reload: checked here once (a bad configuration is said once and keeps the
        old one everywhere), then every worker re-reads it; restarts get it too."""
        try:
            settings = self.reload_settings()
        except Exception as exc:
            log.error("reload failed, keeping the old configuration: %s", exc)
            return
        if settings.workers != self.settings.workers:
            log.warning("workers changed: restart to apply")
        settings["workers"] = self.settings.workers
        self.settings = settings
        from ftpd import log as ftpd_log

        ftpd_log.reopen()  # our own log file too, after logrotate
        for slot in self._live():
            self._signal(slot, signal.SIGHUP)
        if not self.starting:
            self._arm_idle_check(settings.idle_timeout)

    # -- --idle-timeout -------------------------------------------------------------
    def _arm_idle_check(self, delay: float) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.settings.idle_timeout > 0 and not self.stopping:
            self._idle_timer = self.loop.call_later(max(0.0, delay), self._check_idle)

    def _check_idle(self) -> None:
        """No worker has had a connection for --idle-timeout: exit. Otherwise look
        again when that could first be true (never earlier)."""
        self._idle_timer = None
        idle = self.settings.idle_timeout
        total, since = self.seats.snapshot()
        now = self.loop.time()
        if total == 0 and now - since >= idle:
            log.info("idle for %ss: exiting", idle)
            self._begin_stop(IDLE_SIGNAL)
            return
        self._arm_idle_check(since + idle - now if total == 0 else idle)


def _flush_logs() -> None:
    import sys

    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def become_worker(server: Any, seats: SharedSeats) -> None:
    """Make *server* one of the workers: the caps count in *seats*, the supervisor
    decides idleness, one connection per wake-up (the others get theirs), and the
    supervisor's signals: idle exit, stop now. A stop signal from elsewhere as well
    (systemd signals the whole control group, a terminal the process group) only
    drains: the supervisor says when to stop now."""
    server.seats = seats
    server.idle_exit = False
    server.accepts_per_event = 1
    server.stop_signals_escalate = False
    server.loop.add_signal_handler(IDLE_SIGNAL, lambda signum: idle_stop(server))
    server.loop.add_signal_handler(STOP_NOW_SIGNAL, lambda signum: server.stop_now())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {IDLE_SIGNAL, STOP_NOW_SIGNAL})


def idle_stop(server: Any) -> None:
    """The supervisor found every worker idle for --idle-timeout."""
    from ftpd.core.events import ServerEvent

    idle = server.options.idle_timeout
    server.bus.generate("core.idle-timeout", ServerEvent(server.loop.clock.wall(),
                                                         {"idle": idle}))
    server.begin_shutdown()


def supervise(settings: Any, launch: LaunchContext, main: WorkerMain,
              reload_settings: Callable[[], Any],
              on_serving: Callable[[], None] | None = None) -> int:
    """Run the workers until stopped; the exit code."""
    return Supervisor(settings, launch, main, reload_settings, on_serving).serve()

"""Loggers that cost nothing until they write.

Under inetd no-wait every connection is a new process, and importing ``logging`` (and
its handlers) is several milliseconds of the time to the banner. Modules take a
``get_logger(name)``; records below the configured level return at once, and the
first record that passes imports ``logging`` and installs the configured handler
(``ftpd.logsetup``). Before ``configure()`` is called (embedding, tests) every record
goes straight to the standard ``logging`` module."""

from __future__ import annotations

TYPE_CHECKING = False  # not ``typing``'s: importing it costs ~6 ms per inetd start
if TYPE_CHECKING:
    from typing import Any


DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50

_threshold = 0  # records below it are dropped without importing logging
_pending: tuple[str, int, dict[str, Any]] | None = None
_handler: Any = None


def configure(where: str, level: int, **options: Any) -> None:
    """Say where records go and from which level; installed on first use."""
    global _threshold, _pending
    _threshold, _pending = level, (where, level, options)
    if _handler is not None:  # already installed: apply the change now
        _install()


def passes(level: int) -> bool:
    """Whether records at *level* are written at all (``-q``: not INFO), so that a
    listener whose every record would be dropped need not be attached."""
    return level >= _threshold


def install() -> None:
    """Install the configured handler now (a log file must open while we are root)."""
    _install()


def _install() -> None:
    global _pending, _handler
    if _pending is None:
        return
    from ftpd import logsetup

    where, level, options = _pending
    _pending = None
    _handler = logsetup.setup(where, level, **options)


def keep_open() -> None:
    """The log file stays the one open now, whatever happens to its path: called once a
    process became a system account (``--pam``), which may not even reach that path."""
    _install()
    if _handler is not None and hasattr(_handler, "reopenIfNeeded"):
        _handler.reopenIfNeeded = lambda: None


def reopen() -> None:
    """After logrotate (SIGHUP): reopen a log file, if one is in use."""
    if _handler is not None:
        from ftpd import logsetup

        logsetup.reopen(_handler)


class Logger:
    """The subset of ``logging.Logger`` ftpd uses, resolved lazily."""

    __slots__ = ("name", "_real")

    def __init__(self, name: str) -> None:
        self.name = name
        self._real: Any = None

    def _logger(self) -> Any:
        if _pending is not None:
            _install()
        if self._real is None:
            import logging

            self._real = logging.getLogger(self.name)
        return self._real

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return level >= _threshold and self._logger().isEnabledFor(level)

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        if level >= _threshold:
            self._logger().log(level, msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if _threshold <= DEBUG:
            self._logger().debug(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if _threshold <= INFO:
            self._logger().info(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if _threshold <= WARNING:
            self._logger().warning(msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if _threshold <= ERROR:
            self._logger().error(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if _threshold <= ERROR:
            self._logger().exception(msg, *args, **kwargs)


def get_logger(name: str) -> Logger:
    return Logger(name)

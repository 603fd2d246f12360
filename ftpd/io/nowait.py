"""Calls that can often be answered without waiting: they skip the worker pool.

A function the core asks for (``A.Call``) may offer ``fn.nowait(*args)``: its answer when
that needs nothing that can block (a login's filesystem, already opened and recently
checked), else ``NOT_NOW`` and the real call runs in the pool. A login then costs no
thread round trip (queue, wake-up, the GIL changing hands), and the loop still never
waits for storage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NOT_NOW: Any = object()


def answer_now(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``fn.nowait(*args)`` if *fn* offers one, else ``NOT_NOW``."""
    nowait = getattr(fn, "nowait", None)
    return NOT_NOW if nowait is None else nowait(*args)

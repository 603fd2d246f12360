"""Cancelled timers do not pile up in the loop's heap: each session's idle timer is
cancelled when the session ends, long before it would fall due."""

from __future__ import annotations

from ftpd.io.clock import VirtualClock
from ftpd.io.loop import COMPACT_AFTER, EventLoop


def test_the_heap_is_rebuilt_when_most_of_it_is_cancelled():
    loop = EventLoop(VirtualClock())
    try:
        kept = loop.call_later(1.0, lambda: fired.append("kept"))
        fired: list[str] = []
        for _ in range(10 * COMPACT_AFTER):
            loop.call_later(300.0, fired.append, "cancelled").cancel()
        assert len(loop._timers) <= 2 * COMPACT_AFTER + 2
        loop.clock.advance(301.0)
        loop._run_once()
        assert fired == ["kept"] and not kept.cancelled
        assert loop._cancelled == 0 and loop._timers == []
    finally:
        loop.close()


def test_a_cancelled_timer_lets_go_of_what_it_would_have_called():
    loop = EventLoop(VirtualClock())
    try:
        big = bytearray(1 << 20)
        handle = loop.call_later(300.0, len, big)
        handle.cancel()
        handle.cancel()  # twice: counted once
        assert handle.args == () and loop._cancelled == 1
    finally:
        loop.close()

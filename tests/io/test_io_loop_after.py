"""EventLoop.call_after_iteration: work gathered over one iteration is done at its end."""

from __future__ import annotations

from ftpd.io.loop import EventLoop


def test_after_iteration_runs_after_this_iteration_s_callbacks_before_the_next():
    loop = EventLoop()
    order: list[str] = []

    def first() -> None:
        order.append("first")
        loop.call_after_iteration(lambda: order.append("after"))
        loop.call_soon(second)  # queued now: the next iteration's

    def second() -> None:
        order.append("second")
        loop.stop()

    loop.call_soon(first)
    try:
        loop.run()
    finally:
        loop.close()
    assert order == ["first", "after", "second"]


def test_an_after_call_added_by_an_after_call_runs_next_iteration_without_waiting():
    loop = EventLoop()
    order: list[str] = []

    def again() -> None:
        order.append("again")
        loop.stop()

    loop.call_soon(lambda: loop.call_after_iteration(
        lambda: (order.append("once"), loop.call_after_iteration(again))))
    guard = loop.call_later(5.0, lambda: (order.append("waited"), loop.stop()))
    try:
        loop.run()  # nothing else to do: had it waited, the guard would come first
    finally:
        guard.cancel()
        loop.close()
    assert order == ["once", "again"]

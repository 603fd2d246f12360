"""The worker pool the core's asks run in: bounded, a blocked call holds up only its
own thread, results and exceptions come back through ``post``."""

from __future__ import annotations

import threading
from queue import SimpleQueue

import pytest
from ftpsupport import DEADLINE

from ftpd.io.pool import WorkerPool


def _pool(workers: int) -> tuple[WorkerPool, SimpleQueue]:
    posted: SimpleQueue = SimpleQueue()
    return WorkerPool(workers, lambda done, r, e: posted.put((done, r, e))), posted


def test_results_and_exceptions_come_back():
    pool, posted = _pool(2)
    pool.submit(len, ("abc",), "a")
    assert posted.get(timeout=DEADLINE) == ("a", 3, None)
    pool.submit(int, ("x",), "b")
    done, result, exc = posted.get(timeout=DEADLINE)
    assert (done, result) == ("b", None) and isinstance(exc, ValueError)

    def leave():
        raise SystemExit(3)

    pool.submit(leave, (), "c")
    done, _, exc = posted.get(timeout=DEADLINE)
    assert isinstance(exc, RuntimeError) and "SystemExit" in str(exc)  # never stops the loop
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(len, ("",), "d")


def test_a_blocked_call_holds_up_one_worker_and_the_pool_stays_bounded():
    pool, posted = _pool(3)
    gate, entered = threading.Event(), SimpleQueue()

    def block(n):
        entered.put(n)
        gate.wait(DEADLINE)
        return n

    for n in range(3):  # every worker busy in a call that blocks
        pool.submit(block, (n,), n)
    assert sorted(entered.get(timeout=DEADLINE) for _ in range(3)) == [0, 1, 2]
    pool.submit(len, ("waits",), "queued")  # no fourth thread: it waits its turn
    assert len(pool._threads) == 3 and posted.empty()
    gate.set()
    results = sorted(str(posted.get(timeout=DEADLINE)[1]) for _ in range(4))
    assert results == ["0", "1", "2", "5"]
    for _ in range(20):  # idle workers are reused, not multiplied
        pool.submit(len, ("",), "again")
        assert posted.get(timeout=DEADLINE)[1] == 0
    assert len(pool._threads) == 3
    pool.shutdown()

"""A bounded pool of worker threads for the calls the core asks for (filesystem calls):
each runs ``fn(*args)`` and posts ``done(result, exc)`` back to the loop. Leaner than
``concurrent.futures.ThreadPoolExecutor`` (no Future per call; about half the cost per
call, which every login pays), and nothing to cancel: a call runs or the pool is gone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

Done = Callable[[Any, BaseException | None], None]
_STOP = None


class WorkerPool:
    def __init__(self, workers: int, post: Callable[..., None], name: str = "ftpd-fs") -> None:
        self.workers, self.post, self.name = workers, post, name
        self._queue: SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], Done] | None] = \
            SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # one count per worker free for a new call
        self._closed = False

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], done: Done) -> None:
        """Queue ``fn(*args)``; RuntimeError once the pool is shut down."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        self._queue.put((fn, args, done))
        if not self._idle.acquire(blocking=False) and len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, daemon=True,
                                      name=f"{self.name}-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        post = self.post
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, args, done = item
            try:
                result = fn(*args)
            except Exception as exc:  # reaches the command as a reply, at its yield
                post(done, None, exc)
            except BaseException as exc:  # SystemExit from a plugin must not stop the loop
                post(done, None, RuntimeError(f"{type(exc).__name__} in a filesystem call"))
            else:
                post(done, result, None)
            del item, fn, args, done
            self._idle.release()

    def shutdown(self) -> None:
        """No more calls; idle workers end (one busy in a hung call ends with the process)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)

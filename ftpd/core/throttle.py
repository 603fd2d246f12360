"""Failed-login delays per client address: the pause doubles with each failure
from the same address, is capped, and is forgotten after a quiet period.
Memory is bounded: the oldest addresses are forgotten first."""

from __future__ import annotations

from collections import OrderedDict


class LoginThrottle:
    def __init__(self, base_delay: float = 1.0, cap: float = 8.0, forget_after: float = 600.0,
                 max_addresses: int = 10_000) -> None:
        self.base_delay, self.cap, self.forget_after = base_delay, cap, forget_after
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failed(self, host: str, now: float) -> float:
        """Record a failure from *host*; return how long to wait before answering."""
        count, last = self._failures.pop(host, (0, now))
        if now - last > self.forget_after:
            count = 0
        count += 1
        self._failures[host] = (count, now)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        if self.base_delay <= 0:
            return 0.0
        return min(self.cap, self.base_delay * 2 ** (count - 1))

    def succeeded(self, host: str) -> None:
        self._failures.pop(host, None)

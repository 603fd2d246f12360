"""Failed-login delays per client address: the pause doubles with each failure from
the same address, is capped, and is forgotten after a quiet period. A successful login
forgets only the failures of that user name from that address, so an anonymous login
(or any other account's) never resets the pause for the names being guessed. Memory is
bounded: the oldest addresses, and per address the oldest names, are forgotten first
(a forgotten name's failures still count for the address)."""

from __future__ import annotations

from collections import OrderedDict

MAX_NAMES_PER_ADDRESS = 16
_MAX_DOUBLINGS = 32  # 2**n stays a small float however many failures there were
_UNNAMED = -1  # where the failures of names no longer remembered one by one go


class LoginThrottle:
    def __init__(self, base_delay: float = 1.0, cap: float = 8.0, forget_after: float = 600.0,
                 max_addresses: int = 10_000) -> None:
        self.base_delay, self.cap, self.forget_after = base_delay, cap, forget_after
        self.max_addresses = max_addresses
        # host -> (failures per user name, time of the last failure); a name is kept as
        # its hash, so a 2 KB name costs no more memory than a short one
        self._failures: OrderedDict[str, tuple[dict[int, int], float]] = OrderedDict()

    def failed(self, host: str, now: float, name: str = "") -> float:
        """Record a failure for *name* from *host*; return how long to wait before
        answering (it grows with every failure from *host*, whatever the name)."""
        names, last = self._failures.pop(host, ({}, now))
        if now - last > self.forget_after:
            names = {}
        key = _key(name)
        names[key] = names.pop(key, 0) + 1  # the most recent name goes last
        while len(names) > MAX_NAMES_PER_ADDRESS:
            oldest = next(k for k in names if k != _UNNAMED)
            names[_UNNAMED] = names.get(_UNNAMED, 0) + names.pop(oldest)
        self._failures[host] = (names, now)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        if self.base_delay <= 0:
            return 0.0
        doublings = min(sum(names.values()) - 1, _MAX_DOUBLINGS)
        return min(self.cap, self.base_delay * 2 ** doublings)

    def succeeded(self, host: str, name: str) -> None:
        """*name* logged in from *host*: forget that name's failures from there."""
        entry = self._failures.get(host)
        if entry is not None and entry[0].pop(_key(name), None) is not None and not entry[0]:
            del self._failures[host]


def _key(name: str) -> int:
    return hash(name) & 0x7FFF_FFFF_FFFF_FFFF  # never _UNNAMED

"""The events bus (ProFTPD's Events API): facts go out to listeners; nothing here does I/O,
and a listener can neither stop the others nor the caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ftpd.log import get_logger

log = get_logger("ftpd.events")

Callback = Callable[[Any, Any], object]


class EventBus:
    """Named events, delivered in registration order as ``callback(event_data, user_data)``.

    Any name may be generated, listened to or not. Each name's listeners are kept as a tuple
    that is replaced, never mutated, so a callback may register or unregister while an event
    is being delivered (the change applies from the next ``generate``), and a ``generate``
    with nobody listening costs one dict lookup.
    """

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: dict[str, tuple[tuple[Callback, Any], ...]] = {}

    def register(self, name: str, callback: Callback, user_data: Any = None) -> None:
        """Call *callback* for every *name* event, after the listeners registered before it.
        The same callback may be registered more than once (it is then called once each)."""
        if not callable(callback):
            raise TypeError(f"event callback for {name!r} is not callable: {callback!r}")
        self._listeners[name] = self._listeners.get(name, ()) + ((callback, user_data),)

    def unregister(self, name: str, callback: Callback | None = None) -> int:
        """Remove *callback* (every registration of it) from *name*, or all of *name*'s
        listeners when *callback* is None. Returns how many were removed."""
        current = self._listeners.get(name, ())
        if callback is None:
            kept: tuple[tuple[Callback, Any], ...] = ()
        else:
            kept = tuple(entry for entry in current if entry[0] != callback)
        if kept:
            self._listeners[name] = kept
        else:
            self._listeners.pop(name, None)
        return len(current) - len(kept)

    def generate(self, name: str, event_data: Any = None) -> None:
        """Deliver *event_data* to *name*'s listeners. One that raises is logged and skipped
        so that a broken module can never break a session."""
        listeners = self._listeners.get(name)
        if not listeners:
            return
        for callback, user_data in listeners:
            try:
                callback(event_data, user_data)
            except Exception:
                log.exception("event listener %r for %r failed", callback, name)

    def listeners(self, name: str) -> tuple[tuple[Callback, Any], ...]:
        """The (callback, user_data) pairs registered for *name*, in calling order."""
        return self._listeners.get(name, ())

    def names(self) -> list[str]:
        """Event names that currently have at least one listener."""
        return list(self._listeners)

    def __contains__(self, name: object) -> bool:
        """``name in bus``: whether anyone listens (lets a caller skip building event data)."""
        return name in self._listeners


class Listener:
    """Base for objects that listen to a fixed set of events (*events*) on one bus at a time;
    each call gets the event's name as its user data."""

    events: tuple[str, ...] = ()
    _bus: EventBus | None = None

    def attach(self, bus: EventBus) -> None:
        """Listen to every name in *events* on *bus*."""
        self.detach()
        for name in self.events:
            bus.register(name, self.on_event, name)
        self._bus = bus

    def detach(self) -> None:
        """Stop listening (safe to call twice)."""
        bus, self._bus = self._bus, None
        if bus is not None:
            for name in self.events:
                bus.unregister(name, self.on_event)

    def on_event(self, event_data: Any, name: str) -> None:
        raise NotImplementedError

"""An event nobody listens to is not built: the session asks ``config.listens(name)``
(the server's bus) before it makes the event's data, so a server without listeners
(``-q``, no sinks) pays nothing for its events."""

from __future__ import annotations

from core_driver import Driver


def _names_with(listened: set[str] | None) -> list[str]:
    listens = (lambda name: True) if listened is None else listened.__contains__
    d = Driver(writable=True, listens=listens)
    d.login()
    d.send("MKD new")
    d.send("QUIT")
    return d.event_names()


def test_every_event_by_default():
    assert _names_with(None) == ["session.connect", "session.login", "fs.mkdir",
                                 "session.disconnect", "session.logout"]


def test_nobody_listens_no_event():
    assert _names_with(set()) == []


def test_only_what_is_listened_to():
    assert _names_with({"session.login", "session.logout"}) == ["session.login",
                                                                 "session.logout"]
    assert _names_with({"session.disconnect"}) == ["session.disconnect"]

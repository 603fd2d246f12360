"""The events bus: order, user data, failing listeners, unregistering, any name."""

from __future__ import annotations

import logging

from ftpd.events.bus import EventBus


def test_listeners_run_in_registration_order_with_their_user_data():
    bus = EventBus()
    calls = []
    bus.register("fs.upload", lambda data, ud: calls.append(("a", data, ud)), "one")
    bus.register("fs.upload", lambda data, ud: calls.append(("b", data, ud)))
    bus.register("fs.upload", lambda data, ud: calls.append(("c", data, ud)), {"k": 3})
    bus.generate("fs.upload", 42)
    assert calls == [("a", 42, "one"), ("b", 42, None), ("c", 42, {"k": 3})]


def test_event_data_defaults_to_none():
    bus = EventBus()
    seen = []
    bus.register("core.startup", lambda data, ud: seen.append(data))
    bus.generate("core.startup")
    assert seen == [None]


def test_a_failing_listener_is_logged_and_skipped(caplog):
    bus = EventBus()
    calls = []

    def broken(data, ud):
        raise RuntimeError("boom")

    bus.register("fs.mkdir", lambda d, u: calls.append(1))
    bus.register("fs.mkdir", broken)
    bus.register("fs.mkdir", lambda d, u: calls.append(3))
    with caplog.at_level(logging.ERROR, logger="ftpd.events"):
        bus.generate("fs.mkdir", "x")
    assert calls == [1, 3]
    [record] = caplog.records
    assert record.name == "ftpd.events" and "fs.mkdir" in record.getMessage()
    assert record.exc_info and "boom" in str(record.exc_info[1])


def test_any_name_may_be_generated_with_nobody_listening():
    bus = EventBus()
    bus.generate("nobody.listens", object())
    assert "nobody.listens" not in bus
    assert bus.names() == []


def test_custom_names_work_like_core_ones():
    bus = EventBus()
    seen = []
    bus.register("mod_foo.foo", lambda d, u: seen.append((d, u)), "mine")
    bus.generate("mod_foo.foo", 1)
    bus.generate("mod_foo.bar", 2)
    assert seen == [(1, "mine")]
    assert "mod_foo.foo" in bus


def test_unregister_one_callback_or_all():
    bus = EventBus()
    calls = []

    def a(d, u):
        calls.append("a")

    def b(d, u):
        calls.append("b")

    bus.register("x", a)
    bus.register("x", b)
    bus.register("x", a)
    assert bus.unregister("x", a) == 2
    bus.generate("x")
    assert calls == ["b"]
    bus.register("x", a)
    assert bus.unregister("x") == 2
    bus.generate("x")
    assert calls == ["b"]
    assert "x" not in bus
    assert bus.unregister("never") == 0


def test_bound_methods_unregister_by_equality():
    class Listener:
        def __init__(self):
            self.n = 0

        def on(self, data, ud):
            self.n += 1

    bus = EventBus()
    listener = Listener()
    bus.register("x", listener.on)
    bus.generate("x")
    assert bus.unregister("x", listener.on) == 1
    bus.generate("x")
    assert listener.n == 1


def test_changes_during_delivery_apply_to_the_next_event():
    bus = EventBus()
    calls = []

    def late(d, u):
        calls.append("late")

    def first(d, u):
        calls.append("first")
        bus.unregister("x", first)
        bus.register("x", late)

    bus.register("x", first)
    bus.generate("x")
    assert calls == ["first"]
    bus.generate("x")
    assert calls == ["first", "late"]


def test_listeners_lists_pairs_in_order():
    bus = EventBus()

    def cb(d, u):
        pass

    bus.register("x", cb, 1)
    bus.register("x", cb, 2)
    assert bus.listeners("x") == ((cb, 1), (cb, 2))
    assert bus.listeners("y") == ()


def test_register_refuses_what_cannot_be_called():
    bus = EventBus()
    try:
        bus.register("x", "not callable")  # type: ignore[arg-type]
    except TypeError as exc:
        assert "x" in str(exc)
    else:
        raise AssertionError("expected TypeError")


def test_listener_attaches_to_its_events_and_detaches():
    from ftpd.events.bus import Listener

    class Recorder(Listener):
        events = ("fs.upload", "fs.download")

        def __init__(self):
            self.seen = []

        def on_event(self, event_data, name):
            self.seen.append((name, event_data))

    bus = EventBus()
    recorder = Recorder()
    recorder.attach(bus)
    recorder.attach(bus)  # attaching again does not double the calls
    bus.generate("fs.upload", 1)
    bus.generate("fs.mkdir", 2)
    bus.generate("fs.download", 3)
    assert recorder.seen == [("fs.upload", 1), ("fs.download", 3)]
    recorder.detach()
    recorder.detach()
    bus.generate("fs.upload", 4)
    assert len(recorder.seen) == 2 and bus.names() == []

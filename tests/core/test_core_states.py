"""The session's states and its one transition table: a walk through every transition,
driven by real commands, and what a command line does in each state."""

from __future__ import annotations

import pytest
from core_driver import Driver, codes

import ftpd.core.session as session_module
from ftpd.core.session import Session, SessionConfig
from ftpd.core.states import ON_LINE, TRANSITIONS, Event, State, TransitionError, transition

S, E = State, Event


@pytest.fixture
def seen(monkeypatch):
    """Every transition a session takes, as (from, event, to)."""
    taken: list[tuple[State, Event, State]] = []

    def recording(state: State, event: Event) -> State:
        new = transition(state, event)
        taken.append((state, event, new))
        return new

    monkeypatch.setattr(session_module, "transition", recording)
    return taken


def _logged_in(make, **kw) -> Driver:
    d = make(**kw)
    d.login()
    d.send("TYPE I")
    return d


def _walks(make):
    """Each walk drives one session through some transitions."""
    def greeting_refused():
        Session(SessionConfig(), ("127.0.0.1", 1), ("127.0.0.1", 2)).refuse("Full.")

    def ask_and_answer():
        assert codes(_logged_in(make).send("SIZE hello.txt")) == [213]

    def transfer_and_quit():
        d = _logged_in(make)
        assert d.retr("hello.txt") == b"hello world\n"
        assert codes(d.send("QUIT")) == [221]

    def tls_and_answer():
        d = make(tls_available=True)
        assert codes(d.send("AUTH TLS")) == [234]
        d.process(d.session.answer())
        assert d.session.tls_active

    def tls_lost():
        d = make(tls_available=True)
        d.send("AUTH TLS")
        d.process(d.session.connection_lost())

    def waiting_lost():
        d = _logged_in(make)
        d.hold_calls = True
        d.send("SIZE hello.txt")
        d.process(d.session.connection_lost())
        d.release()  # the answer comes after the close: dropped

    def transfer_lost():  # the transfer's end still runs: its file is closed
        d = _logged_in(make)
        d.hold = True
        d.dialogue(["PASV", "RETR hello.txt"])
        d.process(d.session.connection_lost())
        assert [e.data.status for e in d.events if e.name == "fs.download"] == ["INCOMPLETE"]

    return [greeting_refused, ask_and_answer, transfer_and_quit, tls_and_answer, tls_lost,
            waiting_lost, transfer_lost]


def test_every_transition_is_walked(make, seen):
    for walk in _walks(make):
        walk()
    table = {(old, event, new) for (old, event), new in TRANSITIONS.items()}
    assert set(seen) <= table  # nothing outside the table (else TransitionError)
    assert table - set(seen) == set(), "transitions no walk takes"


def test_a_move_outside_the_table_is_refused():
    with pytest.raises(TransitionError, match="CLOSED on START"):
        transition(S.CLOSED, E.START)
    assert (S.TRANSFER, E.TRANSFER) not in TRANSITIONS  # one transfer at a time


def test_what_a_line_does_in_each_state(make):
    d = _logged_in(make)
    assert ON_LINE[d.session.state] == "run" and codes(d.send("NOOP")) == [200]
    d.hold_calls = True
    d.send("SIZE hello.txt")
    assert d.session.state is S.WAITING and ON_LINE[S.WAITING] == "queue"
    assert d.send("NOOP") == []  # queued behind the waiting SIZE ...
    d.release()
    assert codes(d.replies[-2:]) == [213, 200]  # ... and answered after it, in order
    d.hold_calls, d.hold = False, True
    d.dialogue(["PASV", "RETR hello.txt"])
    assert d.session.state is S.TRANSFER and ON_LINE[S.TRANSFER] == "urgent"
    assert codes(d.send("NOOP")) == [200]  # acts at once during a transfer
    assert d.send("PWD") == []  # waits for the transfer
    d.finish()
    assert codes(d.replies[-2:]) == [226, 257]
    assert ON_LINE[S.STARTING_TLS] == ON_LINE[S.CLOSED] == "drop"
    assert d.send("QUIT") and d.session.state is S.CLOSED
    assert d.send("NOOP") == []

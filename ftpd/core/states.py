"""The session's named states and its one transition table (after h11's ``_state.py``).

A session is in exactly one state. Commands run in READY; a command that asks the
transport for something (a filesystem call, a login check, a delay, a passive port)
suspends in WAITING, one that started a transfer in TRANSFER, AUTH TLS in STARTING_TLS;
the answer brings it back to READY, where it goes on (and may suspend again). What a
command line does in each state is the second table, ``ON_LINE``."""

from __future__ import annotations

from enum import Enum


class State(Enum):
    GREETING = "greeting"  # made, the 220 not sent yet
    READY = "ready"  # a command may run now
    WAITING = "waiting"  # a command waits for the transport's answer
    TRANSFER = "transfer"  # a command waits for its data transfer to end
    STARTING_TLS = "starting-tls"  # AUTH TLS replied; the handshake is under way
    CLOSED = "closed"  # the session is over (a cleanup may still finish)

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is Python code


class Event(Enum):
    START = "start"  # the greeting
    ASK = "ask"  # a command yielded an order the transport answers
    TRANSFER = "transfer"  # a command yielded StartTransfer
    TLS = "tls"  # a command yielded StartTLS (after its reply)
    ANSWER = "answer"  # the transport answered (or failed) the order
    CLOSE = "close"  # QUIT, timeout, shutdown, too many errors, EOF; refused at connect

    __hash__ = object.__hash__


S, E = State, Event
# The members as module names, which the session uses on every command: on Python 3.11
# ``State.READY`` is an unspecialised look-up through EnumType (~70 ns), a module
# attribute a few ns.
GREETING, READY, WAITING, TRANSFER, STARTING_TLS, CLOSED = State
ON_START, ON_ASK, ON_TRANSFER, ON_TLS, ON_ANSWER, ON_CLOSE = Event
_BUSY = (S.WAITING, S.TRANSFER, S.STARTING_TLS)

TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.GREETING, E.START): S.READY,
    (S.READY, E.ASK): S.WAITING,
    (S.READY, E.TRANSFER): S.TRANSFER,
    (S.READY, E.TLS): S.STARTING_TLS,
    **{(busy, E.ANSWER): S.READY for busy in _BUSY},
    **{(state, E.CLOSE): S.CLOSED for state in (S.GREETING, S.READY, *_BUSY)},
    # after the close, a transfer's end (closing its file, the atomic rename) finishes
    (S.CLOSED, E.ASK): S.CLOSED,
    (S.CLOSED, E.ANSWER): S.CLOSED,
}

# What a command line does in each state: run it, queue it, run it at once if it is
# one that acts during a transfer (ABOR, STAT, QUIT, NOOP; see Session._acts_now),
# or drop it (nothing sent in the clear after AUTH TLS may run inside TLS).
RUN, QUEUE, URGENT, DROP = "run", "queue", "urgent", "drop"
ON_LINE: dict[State, str] = {
    S.GREETING: QUEUE,
    S.READY: RUN,
    S.WAITING: QUEUE,
    S.TRANSFER: URGENT,
    S.STARTING_TLS: DROP,
    S.CLOSED: DROP,
}


class TransitionError(RuntimeError):
    """The session was asked to do something its state does not allow (a bug)."""


def transition(state: State, event: Event) -> State:
    """The state after *event* in *state*; TransitionError if the table has none."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise TransitionError(f"no transition from {state.name} on {event.name}") from None

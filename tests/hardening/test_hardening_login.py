"""Password guessing: a growing delay before each 530, the session closed after
--max-login-attempts, and the delay never blocking other sessions (SPEC §4).

The delays run in-process on virtual time: a delayed 530 is "not there" 1/16 s short
of its delay (``loop_turns`` proves the server had its chance) and there once the clock
reaches it, and "others go on" is an ordering: their replies come while the guesser's
530 provably has not been sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from ftpsupport import loop_turns
from hhelpers import PASSWORD, USER, Control, read_all

from ftpd.core.throttle import LoginThrottle
from ftpd.embed import FTPServer
from ftpd.io.clock import VirtualClock

SHORT = 1 / 16  # how far short of a delay the clock is stopped (exact in binary)


def _serve(root: Path, base_delay: float, attempts: int) -> FTPServer:
    return FTPServer(str(root), users={USER: PASSWORD}, anonymous=False,
                     clock=VirtualClock(), throttle=LoginThrottle(base_delay=base_delay),
                     max_login_attempts=attempts)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "f.txt").write_bytes(b"hi\n")
    return tmp_path


def _send_wrong_password(server: FTPServer, c: Control) -> None:
    c.ok(f"USER {USER}", 331)
    c.send_line("PASS wrong")
    loop_turns(server)  # read, and the delay's timer armed


def _answered_after(server: FTPServer, c: Control, delay: float) -> tuple[int, str]:
    """The reply to the PASS just sent: not before *delay*, then there."""
    clock = server.clock
    clock.advance(delay - SHORT)
    loop_turns(server)
    assert c.silent(), f"answered before the {delay}s delay"
    clock.advance(SHORT)
    return c.reply()


def _fail_login(server: FTPServer, c: Control, delay: float) -> tuple[int, str]:
    _send_wrong_password(server, c)
    return _answered_after(server, c, delay)


def _listing(c: Control) -> bytes:
    with c.data() as data:
        c.ok("LIST", 150)
        body = read_all(data)
    code, text = c.reply()
    assert code == 226, text
    return body


def test_growing_delay_then_close_while_others_go_on(root):
    with _serve(root, base_delay=1.0, attempts=2) as server:
        with Control(server.port) as other, Control(server.port) as guesser:
            other.login()  # logged in before the guessing starts
            for delay in (1.0, 2.0):  # the delay doubles with each failure
                _send_wrong_password(server, guesser)
                other.ok("NOOP", 200)  # served while the 530 is held back
                assert b"f.txt" in _listing(other)
                other.ok("NOOP", 200)
                loop_turns(server)
                assert guesser.silent(), "the 530 came before the others' replies"
                code, text = _answered_after(server, guesser, delay)
                assert code == 530, text
            assert guesser.closed(), "the session stayed open after --max-login-attempts"
            other.ok("NOOP", 200)


def test_delay_is_remembered_per_address_across_sessions(root):
    with _serve(root, base_delay=0.25, attempts=2) as server:
        with Control(server.port) as c:
            assert _fail_login(server, c, 0.25)[0] == 530
            assert _fail_login(server, c, 0.5)[0] == 530
            assert c.closed()
        with Control(server.port) as c:  # the same address: the third failure waits 1 s
            assert _fail_login(server, c, 1.0)[0] == 530
            # a right password still gets in (after the delayed 530 the session goes on)
            c.login()
            c.ok("NOOP", 200)
        with Control(server.port) as c:  # and the success made the address forgotten
            assert _fail_login(server, c, 0.25)[0] == 530


def test_failures_are_forgotten_after_a_quiet_period(root):
    """The throttle reads the sessions' clock, tied to the server's virtual clock: ten
    quiet minutes later the address starts again from the base delay."""
    with _serve(root, base_delay=0.25, attempts=2) as server:
        with Control(server.port) as c:
            assert _fail_login(server, c, 0.25)[0] == 530
            assert _fail_login(server, c, 0.5)[0] == 530
            assert c.closed()
        server.clock.advance(LoginThrottle().forget_after + 1)
        with Control(server.port) as c:
            assert _fail_login(server, c, 0.25)[0] == 530


def test_default_max_login_attempts_is_three(ftpd):
    server = ftpd()  # --failed-login-delay 0 from the fixture, attempts default
    with server.control() as c:
        for _ in range(3):
            c.ok("USER user", 331)
            assert c.cmd("PASS wrong")[0] == 530
        assert c.closed()

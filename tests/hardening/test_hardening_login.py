"""Password guessing: a growing delay before each 530, the session closed after
--max-login-attempts, and the delay never blocking other sessions (SPEC §4)."""

from __future__ import annotations

import threading
import time

from ftpsupport import DEADLINE
from hhelpers import Control, read_all


def _fail_login(c: Control) -> tuple[int, str, float]:
    c.ok("USER user", 331)
    start = time.monotonic()
    code, text = c.cmd("PASS wrong", timeout=DEADLINE + 10)
    return code, text, time.monotonic() - start


def _listing(c: Control) -> bytes:
    data = c.data()
    with data:
        c.ok("LIST", 150)
        body = read_all(data)
    code, text = c.reply()
    assert code == 226, text
    return body


def test_growing_delay_then_close_while_others_go_on(ftpd):
    server = ftpd("--failed-login-delay", "1", "--max-login-attempts", "2")
    (server.root / "f.txt").write_bytes(b"hi\n")
    other = server.control(login=True)  # logged in before the guessing starts
    results: list[tuple[int, str, float]] = []
    errors: list[BaseException] = []
    closed: list[bool] = []

    def guess() -> None:
        try:
            with server.control() as c:
                for _ in range(2):
                    results.append(_fail_login(c))
                closed.append(c.closed())
        except BaseException as exc:  # reported below
            errors.append(exc)

    attacker = threading.Thread(target=guess)
    attacker.start()
    latencies: list[float] = []
    try:
        with other:
            for i in range(400):  # bounded; stops once the guessing is over
                if not attacker.is_alive():
                    break
                start = time.monotonic()
                if i % 4 == 3:
                    assert b"f.txt" in _listing(other)
                else:
                    other.ok("NOOP", 200)
                latencies.append(time.monotonic() - start)
                time.sleep(0.02)
            other.ok("NOOP", 200)
    finally:
        attacker.join(DEADLINE + 10)
    assert not errors, errors
    assert [r[0] for r in results] == [530, 530], results
    first, second = results[0][2], results[1][2]
    assert first >= 0.9, f"first 530 after {first:.2f}s (delay 1s)"
    assert second >= 1.9, f"second 530 after {second:.2f}s (delay doubles to 2s)"
    assert closed == [True], "the session stayed open after --max-login-attempts failures"
    assert len(latencies) >= 20, "the other session did not get to work during the delays"
    slowest = max(latencies)
    assert slowest < 0.5, f"a NOOP/LIST took {slowest:.2f}s while a login was delayed"


def test_delay_is_remembered_per_address_across_sessions(ftpd):
    server = ftpd("--failed-login-delay", "0.25", "--max-login-attempts", "2")
    with server.control() as c:
        assert _fail_login(c)[0] == 530
        assert _fail_login(c)[0] == 530
        assert c.closed()
    with server.control() as c:  # the same address: the third failure waits 4 x 0.25 s
        code, _, waited = _fail_login(c)
        assert code == 530
        assert waited < 1.5, "the count was not reset (it would be 2 s, not 0.25 s)"
        assert waited >= 0.9, f"third failure from the address answered after {waited:.2f}s"
        # a right password still gets in (after the delayed 530 the session goes on)
        c.login()
        c.ok("NOOP", 200)
    with server.control() as c:  # and the success made the address forgotten
        code, _, waited = _fail_login(c)
        assert code == 530
        assert waited < 1.5, "the count was not reset (it would be 2 s, not 0.25 s)"


def test_default_max_login_attempts_is_three(ftpd):
    server = ftpd()  # --failed-login-delay 0 from the fixture, attempts default
    with server.control() as c:
        for _ in range(3):
            assert _fail_login(c)[0] == 530
        assert c.closed()

"""No timing assertion comes back into the tests (issue 11, point 8): an upper bound on a
duration ("took < 2 s"), or a lower bound on a rate, fails on a loaded machine sooner or
later. Timeouts are tested on virtual time (``ftpd.io.clock.VirtualClock``), speed is
measured in ``bench/``. A lower bound on a duration ("waited at least the delay") cannot
be broken by noise and stays allowed, and so does a deadline inside a wait.

Also: no ``time.sleep`` outside ``ftpsupport.wait_until`` (poll a condition instead)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DURATION_NAME = re.compile(r"(elapsed|waited|took|duration|latenc|slowest|launch_time)",
                           re.IGNORECASE)
CLOCKS = {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns"}


def _is_clock_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCKS and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "time")


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _is_duration(node: ast.AST, known: set[str]) -> bool:
    """A measured duration: a difference with a clock reading in it, a name given such
    a value in the module (*known*), or a name that says it is one (``elapsed``...)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Sub):
            if any(_is_clock_call(part) for part in ast.walk(sub)):
                return True
        name = _name(sub)
        if name is not None and (name in known or DURATION_NAME.search(name)):
            return True
    return False


def _durations(tree: ast.AST) -> set[str]:
    """Names assigned a duration anywhere in *tree* (``best = min(best, t1 - t0)``)."""
    known: set[str] = set()
    assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign | ast.AugAssign)]
    for _ in range(5):  # a name given another duration name: a few rounds suffice
        before = len(known)
        for node in assigns:
            if _is_duration(node.value, known):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                known |= {name for t in targets if (name := _name(t)) is not None}
        if len(known) == before:
            break
    return known


def _is_rate(node: ast.AST, known: set[str]) -> bool:
    """Something divided by a duration: a lower bound on it bounds the duration above."""
    return any(isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Div)
               and _is_duration(sub.right, known) for sub in ast.walk(node))


def upper_bounds(tree: ast.AST) -> list[int]:
    """Line numbers of asserts bounding a duration from above (or a rate from below)."""
    known = _durations(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            sides = [cmp.left, *cmp.comparators]
            for i, op in enumerate(cmp.ops):
                small, big = sides[i], sides[i + 1]
                if isinstance(op, ast.Gt | ast.GtE):
                    small, big = big, small
                elif not isinstance(op, ast.Lt | ast.LtE):
                    continue
                if _is_duration(small, known) or _is_rate(big, known):
                    found.append(node.lineno)
    return found


def sleeps(tree: ast.AST) -> list[int]:
    """Line numbers of ``time.sleep(...)`` calls outside a function named wait_until."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "wait_until":
            allowed |= {id(sub) for sub in ast.walk(node)}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "sleep" and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "time" and id(node) not in allowed]


def _scan(check) -> list[str]:
    hits = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        hits += [f"{path.relative_to(TESTS)}:{line}" for line in check(tree)]
    return hits


def test_no_upper_bound_on_a_duration_in_the_tests():
    assert _scan(upper_bounds) == []


def test_no_sleep_in_the_tests_but_wait_until():
    assert _scan(sleeps) == []


BAD = '''
import time
def f(start, c):
    best = min(float("inf"), time.perf_counter() - start)
    assert time.monotonic() - start < 2.0
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 5
    assert c.reply()[0] == 426 and elapsed < 5.0, elapsed
    assert 2.0 > time.perf_counter() - start
    assert 20000 / best >= 20000
    assert max(latencies) < 0.5
    time.sleep(1.5)
'''

GOOD = '''
import time
def f(start, c, budget, toks):
    elapsed = time.monotonic() - start
    assert elapsed >= 0.9, "a lower bound no noise can break"
    assert time.monotonic() - start >= 1.0
    assert budget.spent <= 20_000
    assert start <= int(toks[1]) <= time.time() + 1
    assert clock.time() - start >= 300
def wait_until(predicate):
    while not predicate():
        time.sleep(0.02)
'''


def test_the_checks_find_what_they_are_for():
    bad = ast.parse(BAD)
    assert upper_bounds(bad) == [5, 7, 8, 9, 10, 11]
    assert sleeps(bad) == [12]
    good = ast.parse(GOOD)
    assert upper_bounds(good) == [] and sleeps(good) == []

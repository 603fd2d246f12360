"""The house rules that a reader sees first: no module of ftpd over 600 lines, no
function over 60 (a module that grows past them is split by concern)."""

from __future__ import annotations

import ast
from pathlib import Path

import ftpd

PACKAGE = Path(ftpd.__file__).parent
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_600_lines():
    long = [f"{p.relative_to(PACKAGE.parent)}: {n}" for p in _sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, "modules over 600 lines:\n" + "\n".join(long)


def test_no_function_over_60_lines():
    long = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                f"{node.name}: {length}")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)

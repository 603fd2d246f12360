"""The core is sans-IO: no module under ftpd/core may import socket, selectors,
ssl, signal or threading, at any level (top, inside a function, relative or not).
Nor what it gets injected or asks for instead: a filesystem (``ftpd.fs.local``),
owner names (``pwd``, ``grp``), randomness (``secrets``); and it never sleeps."""

from __future__ import annotations

import ast
from pathlib import Path

import ftpd.core

FORBIDDEN = {"socket", "selectors", "ssl", "signal", "threading",
             "ftpd.fs.local", "pwd", "grp", "secrets", "time.sleep"}


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
CORE = Path(ftpd.core.__file__).parent


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant)):
            found.append((node.lineno, str(node.args[0].value)))
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "time" and node.attr == "sleep"):
            found.append((node.lineno, "time.sleep"))
    return found


def test_core_modules_found():
    files = sorted(CORE.rglob("*.py"))
    names = {p.name for p in files}
    assert {"session.py", "commands.py", "buffer.py", "replies.py"} <= names
    assert any(p.parent.name == "handlers" for p in files)


def test_core_imports_no_io_modules():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for lineno, name in _imports(tree):
            if _forbidden(name):
                offenders.append(f"{path.relative_to(CORE.parent.parent)}:{lineno}: {name}")
    assert not offenders, "ftpd/core must stay sans-IO:\n" + "\n".join(offenders)


def test_the_checker_catches_every_form():
    src = """
import os, socket
from ssl import SSLContext
def f():
    import selectors.foo
    from threading import Thread
    __import__("signal")
    importlib.import_module("socket")
    import pwd, grp
    from ftpd.fs.local import LocalFS
    from ftpd.fs import local
    import secrets
    time.sleep(1)
"""
    names = [n for _, n in _imports(ast.parse(src))]
    assert {f for f in FORBIDDEN if any(n == f or n.startswith(f + ".") for n in names)} \
        == FORBIDDEN
    assert not _forbidden("ftpd.fs.base") and not _forbidden("time")

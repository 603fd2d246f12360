"""Races a local user can run against LocalFS: swapping a directory inside the root for
a symlink to the outside between the server's check and its open. Confinement holds
because every name is resolved relative to a directory handle on the root, never
through a path string checked first and opened later."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ftpd.fs.local import LocalFS

pytestmark = pytest.mark.usefixtures("resolver")

SWAPS = 20_000
READS = 5_000


class Swapper(threading.Thread):
    """Turns ``root/d`` into a symlink to *outside* and back, *count* times at most."""

    def __init__(self, root: Path, outside: Path, count: int = SWAPS) -> None:
        super().__init__(daemon=True)
        self.root, self.count = root, count
        (root / "d").mkdir()
        (root / "d" / "secret").write_bytes(b"inside")
        os.symlink(outside, root / "d.link")
        self.stop = threading.Event()

    def run(self) -> None:
        d, parked, link = self.root / "d", self.root / "d.dir", self.root / "d.link"
        for _ in range(self.count):
            if self.stop.is_set():
                return
            os.rename(d, parked)
            os.rename(link, d)
            os.rename(d, link)
            os.rename(parked, d)

    def __enter__(self) -> Swapper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=60)


@pytest.fixture
def race(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(b"SECRET")
    return root, outside


def test_swapped_directory_never_serves_the_outside(race):
    root, outside = race
    fs = LocalFS(str(root))
    served = set()
    with Swapper(root, outside):
        for _ in range(READS):
            try:
                with fs.open_read("/d/secret") as f:
                    served.add(f.read())
            except OSError:
                continue
    assert b"SECRET" not in served


def test_swapped_directory_never_changes_the_outside(race):
    root, outside = race
    (outside / "victim").write_bytes(b"victim")
    before = {p.name: p.stat() for p in outside.iterdir()}
    fs = LocalFS(str(root))
    with Swapper(root, outside):
        for i in range(READS // 5):
            for op, args in ((fs.open_write, (f"/d/new{i}",)), (fs.mkdir, (f"/d/m{i}",)),
                             (fs.chmod, ("/d/secret", 0o600)), (fs.utime, ("/d/secret", 0)),
                             (fs.remove, ("/d/victim",)), (fs.listdir, ("/d",))):
                try:
                    result = op(*args)
                except OSError:
                    continue
                if hasattr(result, "close"):
                    result.close()
    after = {p.name: p.stat() for p in outside.iterdir()}
    assert sorted(after) == ["secret", "victim"]
    for name, st in before.items():
        assert (after[name].st_mode, after[name].st_mtime) == (st.st_mode, st.st_mtime), name

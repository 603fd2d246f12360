"""A local user racing the server (SPEC §3): while a thread swaps a directory inside the
root for a symlink to a directory outside it and back, RETR through that name serves
what is inside or fails with 550, never the file outside."""

from __future__ import annotations

import os
import threading

from hhelpers import Control, read_all

SWAPS = 50_000
RETRS = 400


def _swap(root, stop: threading.Event) -> None:
    d, parked, link = root / "d", root / "d.dir", root / "d.link"
    for _ in range(SWAPS):
        if stop.is_set():
            return
        os.rename(d, parked)
        os.rename(link, d)
        os.rename(d, link)
        os.rename(parked, d)


def _retr(c: Control, path: str) -> bytes | int:
    data = c.data()
    with data:
        code, text = c.cmd(f"RETR {path}")
        if code != 150:
            return code
        body = read_all(data)
    code, text = c.reply()
    return body if code == 226 else code


def test_retr_through_a_swapped_directory_never_serves_the_outside(ftpd, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"SECRET")
    server = ftpd()
    (server.root / "d").mkdir()
    (server.root / "d" / "secret").write_bytes(b"inside")
    os.symlink(outside, server.root / "d.link")
    c = server.control(login=True)
    c.ok("TYPE I", 200)
    stop = threading.Event()
    swapper = threading.Thread(target=_swap, args=(server.root, stop), daemon=True)
    results = []
    swapper.start()
    try:
        for _ in range(RETRS):
            results.append(_retr(c, "d/secret"))
    finally:
        stop.set()
        swapper.join(timeout=60)
    assert b"SECRET" not in results
    assert set(results) <= {b"inside", 550}, set(results)
    c.ok("QUIT", 221)

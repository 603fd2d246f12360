"""Zero-copy paths only where the platform has them (issue 10, point 6): macOS has
neither ``os.splice`` nor ``os.pipe2`` (and the launchd mode is advertised), so an upload
there must take the ``recv_into`` path. Simulated here by removing them from ``os``."""

from __future__ import annotations

import ftplib
import io
import os
from pathlib import Path

import pytest
from ftpsupport import DEADLINE

from ftpd.embed import FTPServer

PAYLOAD = bytes(range(256)) * 12_288  # 3 MiB: several readiness events


def upload(port: int, name: str, data: bytes) -> str:
    """STOR *data* in binary mode with ftplib; returns the final reply."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=DEADLINE)
    try:
        ftp.login("user", "pw")
        return ftp.storbinary(f"STOR {name}", io.BytesIO(data))
    finally:
        ftp.close()


@pytest.mark.parametrize("missing", ["splice", "pipe2", "both"])
def test_upload_without_splice_uses_recv_into(tmp_path: Path, monkeypatch, missing):
    for name in (["splice", "pipe2"] if missing == "both" else [missing]):
        monkeypatch.delattr(os, name, raising=False)
    with FTPServer(str(tmp_path), users={"user": "pw"}) as server:
        assert upload(server.port, "up.bin", PAYLOAD).startswith("226")
    assert (tmp_path / "up.bin").read_bytes() == PAYLOAD


@pytest.mark.skipif(not hasattr(os, "splice"), reason="the platform has no splice(2)")
def test_upload_uses_splice_where_the_platform_has_it(tmp_path: Path, monkeypatch):
    """The control case: with splice present the same upload goes through it."""
    calls = [0]
    real = os.splice

    def counting_splice(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "splice", counting_splice)
    with FTPServer(str(tmp_path), users={"user": "pw"}) as server:
        assert upload(server.port, "up.bin", PAYLOAD).startswith("226")
    assert (tmp_path / "up.bin").read_bytes() == PAYLOAD
    assert calls[0] > 0


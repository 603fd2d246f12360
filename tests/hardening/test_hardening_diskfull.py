"""A full disk answers 452 and a quota 552, and the session goes on (SPEC §3): on a real
small tmpfs when this machine lets us mount one, and always with an in-process server
on a filesystem object whose writer fails with ENOSPC or EDQUOT after N bytes."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hhelpers import TEMP_PREFIX, Control, read_all, temp_files

TMPFS_SIZE = 512 * 1024


def _upload(c: Control, verb: str, payload: bytes) -> tuple[int, str]:
    """Send *payload* with *verb*; the server may drop the data connection early."""
    data = c.data()
    with data:
        code, text = c.cmd(verb)
        assert code == 150, text
        try:
            for i in range(0, len(payload), 64 * 1024):
                data.sendall(payload[i:i + 64 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass
    return c.reply()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 512 KiB tmpfs (skipped where mounting is not allowed)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mnt)],
                       check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


@pytest.mark.parametrize("atomic", [False, True], ids=["plain", "atomic"])
def test_full_disk_is_452_and_the_session_goes_on(small_disk, ftpd, atomic):
    server = ftpd(*(["--atomic-uploads"] if atomic else []), root=small_disk)
    old = b"old\n" * 1000
    (small_disk / "f.bin").write_bytes(old)
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        code, text = _upload(c, "STOR f.bin", os.urandom(2 * TMPFS_SIZE))
        assert code == 452, text
        c.ok("NOOP", 200)
        assert temp_files(small_disk) == []
        if atomic:
            assert (small_disk / "f.bin").read_bytes() == old
        else:  # what arrived stays (as much as fitted)
            c.ok("DELE f.bin", 250)
        # with room again, uploads work on the same session
        code, text = _upload(c, "STOR small.bin", b"fits\n")
        assert code == 226, text
        assert (small_disk / "small.bin").read_bytes() == b"fits\n"


class _FailingWriter:
    """Accepts *room* bytes, then fails every write with *err*."""

    def __init__(self, inner: Any, room: int, err: int) -> None:
        self.inner, self.room, self.err = inner, room, err

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(data)
        if n > self.room:
            raise OSError(self.err, os.strerror(self.err))
        self.room -= n
        return self.inner.write(data)

    def close(self) -> None:
        self.inner.close()


class LimitedFS:
    """A MemoryFS whose files take at most *room* bytes per upload."""

    def __init__(self, inner: Any, room: int, err: int) -> None:
        self.inner, self.room, self.err = inner, room, err

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open_write(self, vpath: str, **kwargs: Any) -> Any:
        return _FailingWriter(self.inner.open_write(vpath, **kwargs), self.room, self.err)


@pytest.mark.parametrize("atomic", [False, True], ids=["plain", "atomic"])
@pytest.mark.parametrize(("err", "code"), [(errno.ENOSPC, 452), (errno.EDQUOT, 552)],
                         ids=["ENOSPC", "EDQUOT"])
def test_write_errors_map_to_replies_in_process(err, code, atomic):
    from ftpd.embed import FTPServer
    from ftpd.fs.memory import MemoryFS

    fs = LimitedFS(MemoryFS({"/f.bin": b"old"}), 100_000, err)
    with FTPServer(fs, users={"user": "pw"}, atomic_uploads=atomic) as srv:
        with Control(srv.port) as c:
            c.login()
            c.ok("TYPE I", 200)
            got, text = _upload(c, "STOR f.bin", os.urandom(300_000))
            assert got == code, text
            c.ok("NOOP", 200)
            assert not [n for n in fs.listdir("/") if n.startswith(TEMP_PREFIX)]
            if atomic:
                assert fs.open_read("/f.bin").read() == b"old"
            got, text = _upload(c, "APPE more.bin", b"x" * 1000)
            assert got == 226, text
            data = c.data()
            with data:
                c.ok("RETR more.bin", 150)
                assert read_all(data) == b"x" * 1000
            assert c.reply()[0] == 226
            c.ok("QUIT", 221)


def test_enospc_while_the_client_keeps_sending_does_not_hang(small_disk, ftpd):
    """The server drops the data connection at once: a client still sending sees it."""
    server = ftpd(root=small_disk)
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        data = c.data()
        c.ok("STOR big.bin", 150)
        broke = False
        with data:
            data.settimeout(10)
            try:
                for _ in range(1000):  # up to 64 MB, far more than fits
                    data.sendall(b"\0" * 65536)
            except (BrokenPipeError, ConnectionResetError):  # a timeout would be a hang
                broke = True
        assert broke, "the server kept reading after the disk was full"
        code, text = c.reply()
        assert code == 452, text
        c.ok("NOOP", 200)

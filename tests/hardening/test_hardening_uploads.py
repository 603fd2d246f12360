"""Nothing lost (SPEC §3): --atomic-uploads (hidden temporary name, never listed, renamed
before 226, event after the rename, removed on failure), and without it an interrupted
STOR keeps what arrived so REST+STOR or APPE can resume it."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
from ftpsupport import sha256, wait_until
from hhelpers import TEMP_PREFIX, Control, UdpEvents, read_all, reset_close, temp_files

CHUNK = 64 * 1024


def _disk_state(root: Path, name: str) -> tuple[str | None, list[str]]:
    """(sha256 of root/name or None when absent, temporaries present) right now."""
    path = root / name
    try:
        digest = sha256(path)
    except FileNotFoundError:
        digest = None
    return digest, temp_files(root)


def _recorder(root: Path, name: str):
    """For UdpEvents: note the disk as each upload event arrives."""
    def on_frame(toks: list[str]):
        return _disk_state(root, name) if toks[0] == "S" else None
    return on_frame


def _get(c: Control, verb: str) -> bytes:
    data = c.data()
    with data:
        code, text = c.cmd(verb)
        if code != 150:
            return b"<%d>" % code
        body = read_all(data)
    code, text = c.reply()
    assert code == 226, text
    return body


def _assert_no_temp_listed(observer: Control, root: Path) -> None:
    """LIST, NLST, MLSD and STAT never show an atomic upload's temporary."""
    assert temp_files(root), "no temporary on disk: the check would prove nothing"
    for verb in ("LIST", "LIST -a", "LIST -la", "NLST", "NLST -a", "MLSD",
                 f"NLST {TEMP_PREFIX}*", "LIST .ftpd*", "NLST *"):
        body = _get(observer, verb)
        assert TEMP_PREFIX.encode() not in body, (verb, body)
    code, text = observer.cmd("STAT .")
    assert code in (211, 212, 213), text
    assert TEMP_PREFIX not in text, text


def _send_slowly(data: socket.socket, payload: bytes, during=None) -> None:
    """Send *payload* in chunks; *during()* runs once, after the first chunk (it waits
    for the server's temporary file itself). The upload cannot end before the data
    connection closes, so no pause is needed to catch it under way."""
    chunks = [payload[i:i + CHUNK] for i in range(0, len(payload), CHUNK)]
    for i, chunk in enumerate(chunks):
        data.sendall(chunk)
        if i == 0 and during is not None:
            during()


@pytest.fixture
def events():
    receivers: list[UdpEvents] = []

    def make(on_frame=None) -> UdpEvents:
        r = UdpEvents(on_frame)
        receivers.append(r)
        return r

    yield make
    for r in receivers:
        r.close()


def test_atomic_upload_replaces_only_at_226(ftpd, events, tmp_path):
    old, new = b"old content\n" * 1000, os.urandom(16 * CHUNK + 123)
    root = tmp_path / "root"
    root.mkdir()
    ev = events(_recorder(root, "f.bin"))
    server = ftpd("--atomic-uploads", "--event-sink", ev.spec, root=root)
    target = server.root / "f.bin"
    target.write_bytes(old)
    with server.control(login=True) as up, server.control(login=True) as observer:
        up.ok("TYPE I", 200)
        observer.ok("TYPE I", 200)
        data = up.data()
        up.ok("STOR f.bin", 150)

        def during() -> None:
            wait_until(lambda: temp_files(server.root), "the upload's temporary on disk")
            # the final name still holds the old content, for everyone
            assert target.read_bytes() == old
            assert observer.ok("SIZE f.bin", 213) == f"213 {len(old)}"
            assert _get(observer, "RETR f.bin") == old
            _assert_no_temp_listed(observer, server.root)
            assert b"f.bin" in _get(observer, "NLST")
            assert ev.transfers("S") == []  # no upload event yet

        with data:
            _send_slowly(data, new, during)
        code, text = up.reply()
        assert code == 226, text
        assert sha256(target) == hashlib.sha256(new).hexdigest()
        assert temp_files(server.root) == []
        ((event, seen),) = ev.wait_transfers("S", 1)
        assert (event.path, event.bytes, event.status) == ("/f.bin", len(new), "OK")
        # when the event arrived the rename had been done
        assert seen == (hashlib.sha256(new).hexdigest(), [])
        observer.ok("NOOP", 200)


def test_atomic_upload_of_a_new_name_is_absent_until_226(ftpd):
    server = ftpd("--atomic-uploads")
    new = os.urandom(8 * CHUNK)
    target = server.root / "fresh.bin"
    with server.control(login=True) as up, server.control(login=True) as observer:
        up.ok("TYPE I", 200)
        data = up.data()
        up.ok("STOR fresh.bin", 150)

        def during() -> None:
            wait_until(lambda: temp_files(server.root), "the upload's temporary on disk")
            assert not target.exists()
            assert observer.cmd("SIZE fresh.bin")[0] == 550
            assert observer.cmd("MDTM fresh.bin")[0] == 550
            assert _get(observer, "NLST") == b""
            _assert_no_temp_listed(observer, server.root)

        with data:
            _send_slowly(data, new, during)
        assert up.reply()[0] == 226
        assert target.read_bytes() == new
        assert temp_files(server.root) == []


def _kill_upload(server, how: str) -> Control | None:
    """Start STOR f.bin, send some bytes, wait until they are in the temporary, then kill
    the client: *how* is "data-reset" (RST on the data connection; the control one goes
    on and is returned), "both-reset" (RST on the control then the data connection) or
    "control-closed" (RST on the control connection; the data one stays open)."""
    up = server.control(login=True)
    up.ok("TYPE I", 200)
    data = up.data()
    up.ok("STOR f.bin", 150)
    data.sendall(os.urandom(4 * CHUNK))
    wait_until(lambda: any((server.root / t).stat().st_size >= 4 * CHUNK
                           for t in temp_files(server.root)),
               "the received bytes in the temporary")
    if how == "data-reset":
        reset_close(data)
        code, text = up.reply()
        assert code == 426, text
        up.ok("NOOP", 200)  # the session goes on
        return up
    reset_close(up.sock)
    if how == "both-reset":
        reset_close(data)
    else:
        wait_until(lambda: temp_files(server.root) == [], "the temporary to be removed")
        data.close()
    return None


@pytest.mark.parametrize("how", ["data-reset", "both-reset", "control-closed"])
def test_atomic_upload_killed_mid_way_keeps_the_old_file(ftpd, events, tmp_path, how):
    old = b"precious old content\n" * 500
    root = tmp_path / "root"
    root.mkdir()
    ev = events(_recorder(root, "f.bin"))
    server = ftpd("--atomic-uploads", "--event-sink", ev.spec, root=root)
    target = server.root / "f.bin"
    target.write_bytes(old)
    up = _kill_upload(server, how)
    wait_until(lambda: temp_files(server.root) == [], "the temporary to be removed")
    assert target.read_bytes() == old
    if up is not None:  # the client is still there: the event says INCOMPLETE
        ((event, seen),) = ev.wait_transfers("S", 1)
        assert (event.path, event.status) == ("/f.bin", "INCOMPLETE"), event
        assert 0 < event.bytes <= 4 * CHUNK
        assert seen == (hashlib.sha256(old).hexdigest(), [])
        up.close()
    with server.control(login=True) as c:  # the server goes on, the name is untouched
        c.ok("TYPE I", 200)
        assert c.ok("SIZE f.bin", 213) == f"213 {len(old)}"
        assert _get(c, "NLST") == b"f.bin\r\n"


@pytest.mark.parametrize("how", ["both-reset", "control-closed"])
def test_upload_event_of_a_vanished_client_says_incomplete(ftpd, events, how):
    ev = events()
    server = ftpd("--atomic-uploads", "--event-sink", ev.spec)
    (server.root / "f.bin").write_bytes(b"old")
    assert _kill_upload(server, how) is None
    wait_until(lambda: temp_files(server.root) == [], "the temporary to be removed")
    ((event, _),) = ev.wait_transfers("S", 1)
    assert (event.path, event.status) == ("/f.bin", "INCOMPLETE"), event
    wait_until(lambda: any(t[0] == "O" for t, _ in ev.frames), "the logout event", timeout=3.0)


def test_atomic_uploads_leave_appe_and_rest_in_place(ftpd):
    server = ftpd("--atomic-uploads")
    target = server.root / "log.txt"
    target.write_bytes(b"0123456789")
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        data = c.data()
        with data:
            c.ok("APPE log.txt", 150)
            assert temp_files(server.root) == []
            data.sendall(b"abc")
        assert c.reply()[0] == 226
        assert target.read_bytes() == b"0123456789abc"
        c.ok("REST 5", 350)
        data = c.data()
        with data:
            c.ok("STOR log.txt", 150)
            assert temp_files(server.root) == []
            data.sendall(b"XY")
        assert c.reply()[0] == 226
        assert target.read_bytes() == b"01234XY789abc"


def _interrupt(server, name: str, payload: bytes, cut: int, how: str) -> None:
    """STOR *name*, send the first *cut* bytes, wait until they are on disk, then break
    the transfer (*how*: RST on the data connection, or on both connections)."""
    up = server.control(login=True)
    up.ok("TYPE I", 200)
    data = up.data()
    up.ok(f"STOR {name}", 150)
    data.sendall(payload[:cut])
    path = server.root / name
    wait_until(lambda: path.exists() and path.stat().st_size >= cut, "the bytes on disk")
    reset_close(data)
    if how == "data":
        code, text = up.reply()
        assert code == 426, text
        up.ok("NOOP", 200)
        up.ok("QUIT", 221)
    else:
        reset_close(up.sock)
    up.close()


@pytest.mark.parametrize("how", ["data", "both"])
@pytest.mark.parametrize("resume", ["REST", "APPE"])
def test_interrupted_stor_keeps_what_arrived_and_resumes(ftpd, how, resume):
    server = ftpd()
    payload = os.urandom(12 * CHUNK + 7)
    cut = 5 * CHUNK + 3
    _interrupt(server, "part.bin", payload, cut, how)
    path = server.root / "part.bin"
    wait_until(lambda: path.read_bytes() == payload[:cut], "exactly what arrived, kept")
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        assert c.ok("SIZE part.bin", 213) == f"213 {cut}"
        if resume == "REST":
            c.ok(f"REST {cut}", 350)
        data = c.data()
        with data:
            c.ok(f"{'STOR' if resume == 'REST' else 'APPE'} part.bin", 150)
            data.sendall(payload[cut:])
        code, text = c.reply()
        assert code == 226, text
    assert sha256(path) == hashlib.sha256(payload).hexdigest()

"""Control idle timeout (slowloris included) and the stalled data connection timeout,
through the real ``ftpd`` command. Timings are asserted as lower bounds only; upper
bounds are generous deadlines that say "it did happen"."""

from __future__ import annotations

import select
import time

from hhelpers import read_all

TIMEOUT = 2.0


def test_idle_control_connection_gets_421_and_is_closed(ftpd):
    server = ftpd("--timeout", str(TIMEOUT))
    with server.control(login=True) as c:
        c.ok("NOOP", 200)
        last = time.monotonic()
        code, text = c.reply(timeout=TIMEOUT + 8)
        waited = time.monotonic() - last
        assert code == 421, text
        assert waited >= TIMEOUT - 0.1, f"cut after {waited:.2f}s of a {TIMEOUT}s timeout"
        assert c.closed()
    with server.control(login=True) as other:  # the server goes on
        other.ok("NOOP", 200)


def test_slowloris_partial_line_is_cut_at_the_timeout(ftpd):
    server = ftpd("--timeout", str(TIMEOUT))
    c = server.control()
    start = time.monotonic()
    bound = 3 * TIMEOUT  # generous: the timeout, plus a partial line's worth, plus slack
    cut = False
    with c:
        for byte in b"NOOPNOOPNOOPNOOP":  # never a whole line
            if time.monotonic() - start > bound:
                break
            readable, _, _ = select.select([c.sock], [], [], 1.0)
            if readable:
                cut = c.closed(timeout=2.0)
                break
            try:
                c.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
        elapsed = time.monotonic() - start
        assert cut, f"a byte-a-second client was still connected after {elapsed:.1f}s " \
                    f"(--timeout {TIMEOUT})"
        assert elapsed <= bound + 2.0
        replies = c.pending_replies()
        assert replies and replies[-1][0] == 421, replies


def test_stalled_download_is_cut_by_data_timeout(ftpd):
    server = ftpd("--data-timeout", str(TIMEOUT))
    big = server.root / "big.bin"
    with open(big, "wb") as f:  # sparse: far more than the socket buffers hold
        f.truncate(256 << 20)
    (server.root / "small.txt").write_bytes(b"small file\n")
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        data = c.data(rcvbuf=4096)
        with data:
            code, text = c.cmd("RETR big.bin")
            assert code == 150, text
            started = time.monotonic()
            code, text = c.reply(timeout=TIMEOUT + 20)  # the client never reads
            waited = time.monotonic() - started
            assert code == 426, text
            assert waited >= TIMEOUT - 0.1
        # the control connection keeps working, data transfers too
        c.ok("NOOP", 200)
        data = c.data()
        with data:
            c.ok("RETR small.txt", 150)
            assert read_all(data) == b"small file\n"
        code, text = c.reply()
        assert code == 226, text


def test_stalled_upload_is_cut_by_data_timeout(ftpd):
    server = ftpd("--data-timeout", str(TIMEOUT))
    with server.control(login=True) as c:
        c.ok("TYPE I", 200)
        data = c.data()
        with data:
            c.ok("STOR up.bin", 150)
            data.sendall(b"x" * 1000)
            started = time.monotonic()
            code, text = c.reply(timeout=TIMEOUT + 20)  # nothing more is ever sent
            waited = time.monotonic() - started
            assert code == 426, text
            assert waited >= TIMEOUT - 0.2
        c.ok("NOOP", 200)
        assert (server.root / "up.bin").read_bytes() == b"x" * 1000

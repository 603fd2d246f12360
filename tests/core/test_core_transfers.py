"""Data connections and transfers: PASV/EPSV/PORT/EPRT, RETR/STOR/APPE/STOU, REST,
listings, TYPE A conversion, ABOR/STAT/QUIT while data flows, atomic uploads and
transfer errors."""

from __future__ import annotations

import errno
import stat

from core_driver import Driver, codes, text

from ftpd.core import actions as A
from ftpd.core.listing import TEMP_PREFIX


# -- data connection set-up --------------------------------------------------------------
def test_pasv_reply_format(alice):
    r = alice.send("PASV")
    assert codes(r) == [227]
    assert r[0].lines == ("Entering Passive Mode (127,0,0,1,195,80).",)
    listen = [x for x in alice.log if isinstance(x, A.ListenPassive)][-1]
    assert listen.allowed_peer == "127.0.0.1"  # data theft: only the client may connect


def test_pasv_masquerade(make):
    d = make(masquerade_address="203.0.113.7", passive_ports=range(50000, 50010))
    d.login()
    r = d.send("PASV")
    assert r[0].lines == ("Entering Passive Mode (203,0,113,7,195,80).",)
    listen = [x for x in d.log if isinstance(x, A.ListenPassive)][-1]
    assert listen.ports == range(50000, 50010)


def test_passive_failed(alice):
    out = alice.session.receive(b"PASV\r\n")  # the transport fails to listen
    assert any(isinstance(x, A.ListenPassive) for x in out)
    import errno

    r = alice.session.fail(OSError(errno.EADDRINUSE, "Address already in use"))
    assert [x.code for x in r if hasattr(x, "code")] == [425]


def test_epsv_reply_format(alice):
    r = alice.send("EPSV")
    assert codes(r) == [229] and r[0].lines == ("Entering Extended Passive Mode (|||50000|)",)
    assert codes(alice.send("EPSV 1")) == [229]
    assert codes(alice.send("EPSV 2")) == [522]


def test_epsv_all_refuses_other_data_commands(alice):
    assert codes(alice.send("EPSV ALL")) == [200]
    assert codes(alice.send("PORT 127,0,0,1,200,10")) == [501]
    assert codes(alice.send("EPRT |1|127.0.0.1|51210|")) == [501]
    assert codes(alice.send("PASV")) == [501]
    assert codes(alice.send("EPSV")) == [229]


def test_port(alice):
    r = alice.send("PORT 127,0,0,1,200,10")
    assert codes(r) == [200]
    assert alice.session.data_mode == A.Active("127.0.0.1", 200 * 256 + 10)
    assert type(alice.session.data_mode) is A.Active
    alice.send("TYPE I")
    alice.send("RETR hello.txt")
    t = [x for x in alice.log if isinstance(x, A.StartTransfer)][-1].transfer
    assert t.mode == A.Active("127.0.0.1", 51210) and type(t.mode) is A.Active
    # 150 is sent before the transport is told to connect
    i150 = max(i for i, x in enumerate(alice.log) if getattr(x, "code", 0) == 150)
    istart = max(i for i, x in enumerate(alice.log) if isinstance(x, A.StartTransfer))
    assert i150 < istart


def test_port_bounce_refused(alice):
    assert codes(alice.send("PORT 10,0,0,1,200,10")) == [501]
    assert codes(alice.send("EPRT |1|10.0.0.1|51210|")) == [501]
    assert codes(alice.send("EPRT |2|::1|51210|")) == [501]
    assert alice.session.data_mode is None


def test_port_foreign_permitted(make):
    d = make(permit_foreign_addresses=True)
    d.login()
    assert codes(d.send("PORT 10,0,0,1,200,10")) == [200]
    assert codes(d.send("EPRT |1|10.0.0.1|51210|")) == [200]
    d.send("PASV")
    listen = [x for x in d.log if isinstance(x, A.ListenPassive)][-1]
    assert listen.allowed_peer is None


def test_port_privileged_refused(alice):
    assert codes(alice.send("PORT 127,0,0,1,0,21")) == [501]
    assert codes(alice.send("PORT 127,0,0,1,3,255")) == [501]  # 1023
    assert codes(alice.send("PORT 127,0,0,1,4,0")) == [200]  # 1024
    assert codes(alice.send("EPRT |1|127.0.0.1|80|")) == [501]


def test_port_malformed(alice):
    for arg in ["1,2,3", "127,0,0,1,200", "127,0,0,1,200,10,1", "127,0,0,1,256,1",
                "127,0,0,1,-1,1", "a,b,c,d,e,f", "127.0.0.1,200,10", ""]:
        assert codes(alice.send(f"PORT {arg}".strip())) == [501], arg


def test_eprt(alice):
    assert codes(alice.send("EPRT |1|127.0.0.1|51210|")) == [200]
    assert alice.session.data_mode == A.Active("127.0.0.1", 51210)
    assert codes(alice.send("EPRT !1!127.0.0.1!51210!")) == [200]  # any delimiter


def test_eprt_malformed_and_bad_protocol(alice):
    assert codes(alice.send("EPRT |3|127.0.0.1|51210|")) == [522]
    for arg in ["|1|127.0.0.1|", "|1|127.0.0.1|51210", "|1|nonsense|51210|",
                "|1|127.0.0.1|99999|", "|1|127.0.0.1|x|", "|2|127.0.0.1|51210|",
                "|1|::1|51210|", "||"]:
        assert codes(alice.send(f"EPRT {arg}")) == [501], arg


def test_eprt_ipv6_client(make):
    d = make(peer=("::1", 40000), local=("::1", 2121))
    d.login()
    assert codes(d.send("EPRT |2|::1|51210|")) == [200]
    assert codes(d.send("PORT 127,0,0,1,200,10")) == [501]
    assert codes(d.send("PASV")) == [501]
    assert codes(d.send("EPSV")) == [229]
    assert codes(d.send("EPSV 1")) == [522]


def test_transfer_needs_data_connection(alice):
    for line in ["RETR hello.txt", "STOR x", "LIST", "NLST", "MLSD"]:
        assert codes(alice.send(line)) == [425], line


def test_data_connection_used_once(alice):
    alice.retr("hello.txt")
    assert codes(alice.send("RETR hello.txt")) == [425]


# -- RETR / STOR / APPE / STOU -------------------------------------------------------------
def test_retr_binary(alice, memfs):
    data = bytes(range(256)) * 4
    assert alice.retr("bin.dat") == data
    ev = [e for e in alice.events if e.name == "fs.download"][-1].data
    assert (ev.path, ev.bytes, ev.status, ev.type) == ("/bin.dat", 1024, "OK", "I")
    assert alice.session.stats["files_down"] == 1


def test_retr_errors(alice):
    alice.send("PASV")
    assert codes(alice.send("RETR nothere")) == [550]
    assert codes(alice.send("RETR pub")) == [550]
    assert alice.pending is None


def test_stor(alice, memfs):
    assert codes(alice.stor("up.bin", b"\x00\r\n\xff" * 100)) == [227, 150, 226]
    assert memfs.open_read("/up.bin").read() == b"\x00\r\n\xff" * 100
    ev = [e for e in alice.events if e.name == "fs.upload"][-1].data
    assert (ev.path, ev.bytes, ev.status) == ("/up.bin", 400, "OK")


def test_stor_truncates(alice, memfs):
    alice.stor("hello.txt", b"new")
    assert memfs.open_read("/hello.txt").read() == b"new"


def test_stor_into_missing_dir(alice):
    alice.send("PASV")
    assert codes(alice.send("STOR nodir/x")) == [550]


def test_appe(alice, memfs):
    assert codes(alice.stor("hello.txt", b"more\n", "APPE")) == [227, 150, 226]
    assert memfs.open_read("/hello.txt").read() == b"hello world\nmore\n"
    assert codes(alice.stor("fresh.txt", b"x", "APPE")) == [227, 150, 226]
    assert memfs.open_read("/fresh.txt").read() == b"x"


def test_stou(alice, memfs):
    r = alice.stor("", b"unique", "STOU")
    assert codes(r) == [227, 150, 226]
    assert r[1].lines[0].startswith("FILE: ")
    name = r[1].lines[0][len("FILE: "):]
    assert memfs.open_read("/" + name).read() == b"unique"
    assert name in text(r[2])
    r = alice.stor("hello.txt", b"second", "STOU")
    name2 = r[1].lines[0][len("FILE: "):]
    assert name2.startswith("hello.txt.") and name2 != name
    assert memfs.open_read("/hello.txt").read() == b"hello world\n"


def test_stou_refuses_rest(alice):
    alice.send("REST 5")
    alice.send("PASV")
    assert codes(alice.send("STOU")) == [501]


# -- REST ---------------------------------------------------------------------------------------
def test_rest_retr(alice):
    assert codes(alice.send("REST 1000")) == [350]
    assert alice.retr("bin.dat") == (bytes(range(256)) * 4)[1000:]
    # the offset applied to that transfer only
    assert alice.retr("bin.dat") == bytes(range(256)) * 4


def test_rest_beyond_end(alice):
    alice.send("REST 5000")
    alice.send("PASV")
    assert codes(alice.send("RETR bin.dat")) == [554]
    assert alice.retr("bin.dat") == bytes(range(256)) * 4


def test_rest_stor_writes_from_offset_without_truncating(alice, memfs):
    alice.send("REST 6")
    assert codes(alice.stor("hello.txt", b"WORLD")) == [227, 150, 226]
    assert memfs.open_read("/hello.txt").read() == b"hello WORLD\n"
    # next STOR truncates again
    alice.stor("hello.txt", b"x")
    assert memfs.open_read("/hello.txt").read() == b"x"


def test_rest_resumes_an_interrupted_upload(alice, memfs):
    alice.upload = b"first half"
    alice.transfer_end = A.TransferEnd(A.Outcome.RESET)
    assert codes(alice.dialogue(["PASV", "STOR big"])) == [227, 150, 426]
    assert memfs.open_read("/big").read() == b"first half"  # kept for resuming
    alice.transfer_end = A.DONE
    size = int(alice.send("SIZE big")[0].lines[0])
    alice.send(f"REST {size}")
    alice.stor("big", b", second half")
    assert memfs.open_read("/big").read() == b"first half, second half"


def test_rest_refused_in_type_a(alice):
    alice.send("TYPE A")
    assert codes(alice.send("REST 10")) == [501]
    assert codes(alice.send("REST 0")) == [350]


def test_rest_malformed(alice):
    for arg in ["-1", "abc", "1.5", "+3"]:
        assert codes(alice.send(f"REST {arg}")) == [501], arg
    assert codes(alice.send("REST")) == [501]


# -- TYPE A ------------------------------------------------------------------------------------
def test_type_a_download_converts_lf_to_crlf(alice, memfs):
    memfs.open_write("/t.txt").write(b"a\nbb\r\nccc\n\nd")
    alice.send("TYPE A")
    for chunk in (1, 2, 3, 4, 100):
        alice.chunk = chunk
        assert alice.retr("t.txt") == b"a\r\nbb\r\nccc\r\n\r\nd", chunk


def test_type_a_upload_converts_crlf_to_lf(alice, memfs):
    alice.send("TYPE A")
    data = b"one\r\ntwo\r\n\r\nlone\rcr\r\nend\r"
    for chunk in (1, 2, 3, 4, 5, 100):
        alice.chunk = chunk
        alice.stor("u.txt", data)
        assert memfs.open_read("/u.txt").read() == b"one\ntwo\n\nlone\rcr\nend\r", chunk


def test_type_i_no_conversion(alice, memfs):
    alice.stor("u.bin", b"a\r\nb")
    assert memfs.open_read("/u.bin").read() == b"a\r\nb"
    assert alice.retr("u.bin") == b"a\r\nb"


# -- listings --------------------------------------------------------------------------------
def test_list(alice):
    out = alice.listing("LIST", "/pub")
    lines = out.split("\r\n")
    assert lines[-1] == "" and all(lines[:-1])
    names = [ln.split()[-1] for ln in lines[:-1]]
    assert names == ["a.txt", "b.txt", "c.log", "readme"]
    first = lines[0].split()
    assert first[0] == "-rw-r--r--" and first[4] == "1"
    assert "fs.listing" in alice.event_names()


def test_list_cwd_and_directory_entry(alice):
    out = alice.listing("LIST")
    assert any(ln.startswith("d") and ln.endswith(" pub") for ln in out.split("\r\n"))


def test_list_ignores_ls_options(alice):
    assert alice.listing("LIST", "-la /pub") == alice.listing("LIST", "/pub")
    assert alice.listing("LIST", "-a -l") == alice.listing("LIST")
    assert alice.listing("NLST", "-la /pub") == "a.txt\r\nb.txt\r\nc.log\r\nreadme\r\n"


def test_list_single_file(alice):
    out = alice.listing("LIST", "hello.txt")
    assert out.endswith(" hello.txt\r\n") and out.count("\r\n") == 1


def test_nlst(alice):
    assert alice.listing("NLST", "/pub") == "a.txt\r\nb.txt\r\nc.log\r\nreadme\r\n"
    assert alice.listing("NLST", "/empty") == ""
    assert alice.listing("NLST", "hello.txt") == "hello.txt\r\n"


def test_list_patterns(alice):
    # NLST names carry the directory part of a pattern argument, as `ls /pub/*.txt`
    # prints them (ProFTPD, vsftpd; classic ftp's `mget dir/*` needs it)
    assert alice.listing("NLST", "/pub/*.txt") == "/pub/a.txt\r\n/pub/b.txt\r\n"
    assert alice.listing("NLST", "/pub/?.log") == "/pub/c.log\r\n"
    assert alice.listing("NLST", "-a pub/*") == ("pub/a.txt\r\npub/b.txt\r\npub/c.log\r\n"
                                               "pub/readme\r\n")
    assert alice.listing("NLST", "/pub/zz*") == ""
    out = alice.listing("LIST", "pub/*.txt")
    assert [ln.split()[-1] for ln in out.split("\r\n") if ln] == ["a.txt", "b.txt"]
    alice.send("PASV")
    assert codes(alice.send("NLST /nodir/*.txt")) == [550]


def test_nlst_in_the_working_directory_gives_bare_names(alice):
    alice.send("CWD /pub")
    assert alice.listing("NLST", "*.txt") == "a.txt\r\nb.txt\r\n"
    assert alice.listing("NLST", "") == "a.txt\r\nb.txt\r\nc.log\r\nreadme\r\n"
    assert alice.listing("NLST", "../pub/*.log") == "../pub/c.log\r\n"


def test_list_missing(alice):
    alice.send("PASV")
    assert codes(alice.send("LIST nothere")) == [550]


def test_list_symlink(alice):
    alice.send("SITE SYMLINK /pub ln")
    out = alice.listing("LIST")
    assert any(ln.startswith("l") and ln.endswith(" ln -> /pub") for ln in out.split("\r\n"))


def test_mlsd(alice, memfs):
    out = alice.listing("MLSD", "/pub")
    lines = [ln for ln in out.split("\r\n") if ln]
    names = [ln.split("; ", 1)[1] for ln in lines]
    assert names == ["a.txt", "b.txt", "c.log", "readme"]
    facts = dict(f.split("=") for f in lines[0].split("; ")[0].rstrip(";").split(";"))
    assert facts["type"] == "file" and facts["size"] == "1"
    out = alice.listing("MLSD")
    assert "type=dir;" in out and "; pub\r\n" in out
    alice.send("PASV")
    assert codes(alice.send("MLSD hello.txt")) == [501]


def test_mlsd_follows_symlinks(alice):
    alice.send("SITE SYMLINK /pub ln")
    out = alice.listing("MLSD")
    line = [ln for ln in out.split("\r\n") if ln.endswith("; ln")][0]
    assert line.startswith("type=dir;")


def test_big_listing_comes_in_slices(alice, memfs):
    for i in range(600):
        memfs.open_write(f"/empty/f{i:04d}").close()
    alice.send("PASV")
    alice.hold = True
    alice.send("NLST /empty")
    t = alice.pending
    chunks = list(t.source)
    assert len(chunks) == 3  # 256 + 256 + 88 entries
    assert b"".join(chunks).count(b"\r\n") == 600


def test_listing_entry_limit(make):
    d = make(max_listing_entries=2)
    d.login()
    d.send("PASV")
    assert codes(d.send("NLST /pub")) == [550]


# -- while data flows -------------------------------------------------------------------------
def test_abor_during_transfer(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    assert alice.pending is not None
    r = alice.send("ABOR")
    assert codes(r) == [426, 226]
    assert any(isinstance(x, A.CloseData) for x in alice.log[-8:])
    assert alice.session.transfer is None
    ev = [e for e in alice.events if e.name == "fs.download"][-1].data
    assert ev.status == "ABOR"
    assert "transfer.abort" in alice.event_names()
    # the transport reports the transfer it was told to close: nothing more happens
    assert alice.session.answer(A.TransferEnd(A.Outcome.ABORTED)) == []
    assert codes(alice.send("NOOP")) == [200]


def test_abor_with_telnet_sync(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    r = alice.raw(b"\xff\xf4\xff\xf2ABOR\r\n")
    assert codes(r) == [426, 226]


def test_abor_without_transfer(alice):
    assert codes(alice.send("ABOR")) == [225]
    alice.send("PASV")
    assert codes(alice.send("ABOR")) == [225]
    assert alice.session.data_mode is None


def test_stat_during_transfer(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    alice.pending.bytes_done = 512
    r = alice.send("STAT")
    assert codes(r) == [213]
    assert "512 bytes" in text(r[0]) and "/bin.dat" in text(r[0])
    alice.finish()
    assert codes(alice.replies[-1:]) == [226]


def test_quit_during_transfer(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    assert alice.send("QUIT") == []  # the transfer is allowed to finish
    assert alice.closed is None
    alice.finish()
    assert codes(alice.replies[-2:]) == [226, 221]
    assert alice.closed is not None
    assert alice.downloads[-1] == bytes(range(256)) * 4


def test_other_commands_wait_for_the_transfer(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    assert codes(alice.send("NOOP")) == [200]  # nothing queued: acted on at once
    assert alice.send("PWD") == []
    assert alice.send("NOOP") == []  # queued behind PWD
    alice.finish()
    assert codes(alice.replies[-3:]) == [226, 257, 200]


def test_pipelined_lines_keep_their_order_during_a_transfer(alice):
    """Once a line waits for the transfer, NOOP (acted on at once when alone) waits
    behind it: SIZE and NOOP sent together are answered 213 then 200."""
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    assert alice.raw(b"SIZE hello.txt\r\nNOOP\r\n") == []
    assert codes(alice.send("NOOP")) == []  # still behind SIZE
    alice.finish()
    assert codes(alice.replies[-4:]) == [226, 213, 200, 200]


def test_abor_overtakes_queued_lines(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    r = alice.raw(b"SIZE hello.txt\r\nNOOP\r\nABOR\r\n")
    assert codes(r) == [426, 226, 213, 200]
    assert alice.session.transfer is None


def test_quit_waits_behind_queued_lines(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    assert alice.raw(b"PWD\r\nQUIT\r\n") == []
    alice.finish()
    assert codes(alice.replies[-3:]) == [226, 257, 221]
    assert alice.closed is not None


def test_pipelined_pasv_and_transfer(alice):
    r = alice.raw(b"PASV\r\nRETR hello.txt\r\nNOOP\r\n")
    assert codes(r) == [227, 150, 226, 200]


def test_connection_lost_during_transfer(alice, memfs):
    alice.hold = True
    alice.upload = b"partial"
    alice.dialogue(["PASV", "STOR part"])
    alice.pump()
    alice.process(alice.session.connection_lost())
    assert alice.closed is not None and alice.closed.reason == "EOF"
    assert memfs.open_read("/part").read() == b"partial"
    assert [e for e in alice.events if e.name == "fs.upload"][-1].data.status == "INCOMPLETE"
    assert alice.event_names()[-1] == "session.logout"


def test_shutdown_lets_the_transfer_finish(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR hello.txt"])
    assert alice.session.shutdown() == []
    alice.finish()
    assert codes(alice.replies[-2:]) == [226, 421]
    assert alice.closed is not None and alice.closed.reason == "SHUTDOWN"


def test_shutdown_idle(alice):
    alice.process(alice.session.shutdown())
    assert codes(alice.replies[-1:]) == [421]
    assert alice.closed is not None


def test_idle_timeout(alice):
    alice.process(alice.session.timeout())
    assert codes(alice.replies[-1:]) == [421]
    assert alice.closed.reason == "TIMEOUT"


def test_no_idle_timeout_during_transfer(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR hello.txt"])
    assert alice.session.timeout() == []


# -- transfer errors ----------------------------------------------------------------------------
def _fail(d: Driver, outcome: A.Outcome, error=None, verb="RETR hello.txt"):
    d.transfer_end = A.TransferEnd(outcome, error)
    r = d.dialogue(["PASV", verb])
    d.transfer_end = A.DONE
    return r


def test_transfer_errors(alice):
    Out = A.Outcome
    assert codes(_fail(alice, Out.CONNECT_FAILED)) == [227, 150, 425]
    assert codes(_fail(alice, Out.RESET)) == [227, 150, 426]
    assert codes(_fail(alice, Out.TIMEOUT)) == [227, 150, 426]
    assert codes(_fail(alice, Out.OS_ERROR, OSError(errno.ENOSPC, "No space left"), "STOR x")) == [
        227, 150, 452]
    assert codes(_fail(alice, Out.OS_ERROR, OSError(errno.EDQUOT, "Quota"), "STOR x")) == [
        227, 150, 552]
    assert codes(_fail(alice, Out.OS_ERROR, OSError(errno.EIO, "I/O error"), "STOR x")) == [
        227, 150, 550]
    # the session goes on
    assert alice.retr("hello.txt") == b"hello world\n"
    statuses = [e.data.status for e in alice.events if e.name in ("fs.download", "fs.upload")]
    assert statuses == ["ERROR", "INCOMPLETE", "INCOMPLETE", "ERROR", "ERROR", "ERROR", "OK"]


def test_every_outcome_has_its_reply_and_status(alice):
    """Each Outcome the transport may report becomes its own reply and event status."""
    from ftpd.core.errors import FTPError

    Out = A.Outcome
    expected = {
        Out.CONNECT_FAILED: (425, "Can't open data connection.", "ERROR"),
        Out.TLS_REFUSED: (425, "TLS on the data connection failed", "ERROR"),
        Out.TIMEOUT: (426, "Data connection timed out", "INCOMPLETE"),
        Out.RESET: (426, "Data connection closed", "INCOMPLETE"),
        Out.ABORTED: (426, "Transfer aborted.", "ABOR"),
        Out.FAILED: (426, "Transfer failed: server-side error", "ERROR"),
        Out.OS_ERROR: (550, "I/O error", "ERROR"),
        Out.REFUSED: (550, "Too many matches", "ERROR"),
    }
    errors = {Out.OS_ERROR: OSError(errno.EIO, "I/O error"),
              Out.REFUSED: FTPError(550, "Too many matches.")}
    assert set(expected) == set(Out) - {Out.OK}  # a new Outcome needs its line here
    for outcome, (code, start, status) in expected.items():
        r = _fail(alice, outcome, errors.get(outcome))
        assert codes(r) == [227, 150, code], outcome
        assert text(r[-1]).startswith(start), (outcome, text(r[-1]))
        download = [e for e in alice.events if e.name == "fs.download"][-1]
        assert download.data.status == status, outcome
    assert alice.retr("hello.txt") == b"hello world\n"


def test_a_transfer_answered_with_anything_but_a_transfer_end_fails_loudly(alice, caplog):
    """The old untyped answers ("reset", None) are a transport's bug now: logged, 426."""
    for untyped in ("reset", None):
        alice.hold = True
        alice.dialogue(["PASV", "RETR hello.txt"])
        alice.pending = None
        alice.process(alice.session.answer(untyped))
        assert codes(alice.replies[-1:]) == [426]
        assert "Transfer failed: server-side error" in text(alice.replies[-1])
        assert f"a transfer ended with {untyped!r}, not a TransferEnd" in caplog.text
    alice.hold = False
    assert alice.retr("hello.txt") == b"hello world\n"


def test_close_error_is_reported(alice):
    class FailingSink:
        def write(self, b):
            return len(b)

        def close(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    alice.hold = True
    alice.dialogue(["PASV", "STOR x"])
    alice.pending.sink = FailingSink()
    alice.finish()
    assert codes(alice.replies[-1:]) == [452]


# -- atomic uploads -------------------------------------------------------------------------------
def test_atomic_upload(make, memfs):
    d = make(atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.upload = b"complete contents"
    d.dialogue(["PASV", "STOR pub/new.bin"])
    d.pump()
    assert "new.bin" not in memfs.listdir("/pub")
    temps = [n for n in memfs.listdir("/pub") if n.startswith(TEMP_PREFIX)]
    assert len(temps) == 1  # in the same directory
    other = make()  # another session looks while the upload runs
    other.login()
    assert TEMP_PREFIX not in other.listing("NLST", "/pub")
    assert TEMP_PREFIX not in other.listing("LIST", "/pub")
    assert TEMP_PREFIX not in other.listing("MLSD", "/pub")
    assert TEMP_PREFIX not in text(other.send("STAT /pub")[0])
    assert codes(other.send("SIZE /pub/new.bin")) == [550]
    d.finish(pump=False)
    assert codes(d.replies[-1:]) == [226]
    assert memfs.open_read("/pub/new.bin").read() == b"complete contents"
    assert not [n for n in memfs.listdir("/pub") if n.startswith(TEMP_PREFIX)]
    ev = [e for e in d.events if e.name == "fs.upload"][-1].data
    assert ev.path == "/pub/new.bin" and ev.status == "OK"


def test_atomic_upload_replaces_existing_only_at_the_end(make, memfs):
    d = make(atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.upload = b"new"
    d.dialogue(["PASV", "STOR hello.txt"])
    d.pump()
    assert memfs.open_read("/hello.txt").read() == b"hello world\n"
    d.finish(pump=False)
    assert memfs.open_read("/hello.txt").read() == b"new"


def test_atomic_upload_failure_removes_temp(make, memfs):
    d = make(atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    d.upload = b"half"
    d.transfer_end = A.TransferEnd(A.Outcome.RESET)
    assert codes(d.dialogue(["PASV", "STOR pub/new.bin"])) == [227, 150, 426]
    assert sorted(memfs.listdir("/pub")) == ["a.txt", "b.txt", "c.log", "readme"]


def test_atomic_stou(make, memfs):
    d = make(atomic_uploads=True)
    d.login()
    r = d.stor("", b"u", "STOU")
    name = r[1].lines[0][len("FILE: "):]
    assert memfs.open_read("/" + name).read() == b"u"
    assert not [n for n in memfs.listdir("/") if n.startswith(TEMP_PREFIX)]


def test_atomic_appe_and_rest_stor_extend_in_place(make, memfs):
    d = make(atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.upload = b"++"
    d.dialogue(["PASV", "APPE hello.txt"])
    d.pump()
    assert memfs.open_read("/hello.txt").read() == b"hello world\n++"
    d.finish(pump=False)
    d.send("REST 0")
    d.send("REST 5")
    d.upload = b"!"
    d.dialogue(["PASV", "STOR hello.txt"])
    d.pump()
    assert memfs.open_read("/hello.txt").read() == b"hello!world\n++"
    d.finish(pump=False)
    assert not [n for n in memfs.listdir("/") if n.startswith(TEMP_PREFIX)]


def test_upload_makes_a_regular_file(alice, memfs):
    alice.stor("f", b"")
    assert stat.S_ISREG(memfs.stat("/f").st_mode) and memfs.stat("/f").st_size == 0


def test_quit_then_abor_during_transfer(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    assert alice.send("QUIT") == []
    r = alice.send("ABOR")
    assert codes(r) == [426, 226, 221]  # ABOR's replies, then QUIT's
    assert isinstance(alice.log[-1], A.Close)


def test_atomic_upload_onto_a_directory(make, memfs):
    d = make(atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    assert codes(d.stor("pub", b"data")) == [227, 150, 550]
    assert stat.S_ISDIR(memfs.stat("/pub").st_mode)
    assert sorted(memfs.listdir("/pub")) == ["a.txt", "b.txt", "c.log", "readme"]
    assert not [n for n in memfs.listdir("/") if n.startswith(TEMP_PREFIX)]


def test_upload_onto_a_directory(alice, memfs):
    alice.send("PASV")
    assert codes(alice.send("STOR pub")) == [550]
    assert stat.S_ISDIR(memfs.stat("/pub").st_mode)


def test_abor_during_shutdown(alice):
    alice.hold = True
    alice.dialogue(["PASV", "RETR bin.dat"])
    assert alice.session.shutdown() == []
    r = alice.send("ABOR")
    assert codes(r) == [426, 226, 421]
    assert isinstance(alice.log[-1], A.Close)


def test_rest_given_in_type_i_is_refused_after_switching_to_type_a(alice):
    from core_driver import codes

    alice.send("TYPE I")
    alice.send("REST 5")
    alice.send("TYPE A")
    alice.send("PASV")
    assert codes(alice.send("RETR hello.txt"))[-1] == 501


def test_abor_pipelined_behind_a_retr_that_still_waits_for_its_open_acts_once_it_runs(alice):
    """RETR asks the worker pool for its stat and open before the transfer starts; an
    ABOR (or NOOP) sent meanwhile waits in the queue, then acts as soon as the transfer
    runs, as if it had come just then: it does not wait for the whole transfer."""
    alice.hold, alice.hold_calls = True, True
    alice.send("PASV")
    alice.raw(b"RETR bin.dat\r\nNOOP\r\nABOR\r\n")
    assert alice.replies[-1].code == 227  # RETR waits for its stat: all queued
    alice.hold_calls = False
    alice.release()  # the stat, then the open (answered at once now): the transfer runs
    assert codes(alice.replies[-4:]) == [150, 200, 426, 226]
    start = next(i for i, x in enumerate(alice.log) if isinstance(x, A.StartTransfer))
    assert any(isinstance(x, A.CloseData) for x in alice.log[start:])  # the data is cut
    assert alice.session.transfer is None and codes(alice.send("NOOP")) == [200]

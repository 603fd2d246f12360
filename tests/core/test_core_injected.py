"""What the sans-IO core gets from outside instead of reaching for it: owner names for
LIST (``owner_names``), randomness for STOU and atomic-upload names (``token``), the
clock, and the filesystem of each login (``fs_factory``, asked of the worker pool).
And what happens to the filesystem calls a command had in flight when the session ends."""

from __future__ import annotations

from core_driver import codes

from ftpd.core import actions as A


def test_list_uses_the_injected_owner_names(make):
    asked = []

    def names(uid, gid):
        asked.append((uid, gid))
        return "owner", "team"

    d = make(owner_names=names)
    d.login()
    line = d.listing("LIST", "/pub").split("\r\n")[0].split()
    assert line[2:4] == ["owner", "team"] and asked


def test_without_owner_names_a_listing_shows_numbers(make):
    d = make()
    d.login()
    line = d.listing("LIST", "/hello.txt").split()
    assert line[2].isdigit() and line[3].isdigit()


def test_stou_and_atomic_uploads_take_their_names_from_the_injected_token(make, memfs):
    tokens = iter(["aaaa0000", "bbbb1111", "cccccccc0000"])
    d = make(token=lambda n: next(tokens), atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    memfs.open_write("/f.aaaa0000").write(b"taken")  # the first name is taken: next one
    r = d.stor("f", b"new", "STOU")
    assert r[1].lines[0] == "FILE: f.bbbb1111"
    temps = {c.args[1] for c in d.log if isinstance(c, A.Call) and c.args[1:2]
             and str(c.args[1]).startswith("/.ftpd-upload-")}
    assert temps == {"/.ftpd-upload-cccccccc0000"}
    assert memfs.open_read("/f.bbbb1111").read() == b"new"


def test_the_login_filesystem_is_asked_of_the_worker_pool(make):
    d = make()
    d.dialogue(["USER alice", "PASS pw"])
    calls = [x for x in d.log if isinstance(x, A.Call)]
    assert calls and calls[0].fn is d.config.fs_factory


def test_a_transfer_cut_short_still_closes_its_file_and_removes_the_temporary(make, memfs):
    d = make(atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    d.hold = True
    d.upload = b"partial"
    d.dialogue(["PASV", "STOR pub/new.bin"])
    sink = d.pending.sink
    d.pump()
    d.hold_calls = True  # the cleanups wait in the "pool" until released
    d.process(d.session.connection_lost())
    assert d.session.closed and d.session.expecting  # the cleanup still runs
    assert "session.disconnect" not in d.event_names()  # ... before the closing events
    while d.calls:
        assert all(c.cleanup for c in d.calls)
        d.release()
    assert sink.closed
    assert sorted(memfs.listdir("/pub")) == ["a.txt", "b.txt", "c.log", "readme"]
    assert d.event_names()[-3:] == ["fs.upload", "session.disconnect", "session.logout"]
    assert not any(r.code == 426 for r in d.replies)  # nobody to tell: no reply after close


def test_a_file_opened_for_a_session_that_closed_meanwhile_is_closed(make):
    d = make()
    d.login()
    d.send("TYPE I")
    d.hold_calls = True
    d.dialogue(["PASV", "RETR hello.txt"])
    d.release()  # the stat
    assert d.calls and d.calls[0].fn.__name__ == "open_read_at"
    d.process(d.session.timeout())  # the client idled out while the open was under way
    assert codes(d.replies[-1:]) == [421]
    assert d.session.closed and not d.session.expecting
    order = d.calls.pop(0)
    f = order.fn(*order.args)  # the pool opens it after all ...
    assert not d.session.expecting  # ... and the transport closes what nobody wants
    d.calls.append(A.Call(lambda: f))
    d.release()
    assert f.closed


class _Writer:
    """A writer with ``abort()`` (fs/base.py), as an object store's upload has."""

    def __init__(self) -> None:
        self.data, self.closed, self.aborted = b"", False, False

    def write(self, data) -> int:
        self.data += bytes(data)
        return len(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def _object_store(memfs):
    writers: list[tuple[str, _Writer]] = []

    class Store(type(memfs)):
        uploads_are_atomic = True

        def open_write(self, vpath, **kw):
            writers.append((vpath, _Writer()))
            return writers[-1][1]

    store = Store()
    return store, writers


def test_a_failed_upload_is_aborted_when_the_writer_can(make, memfs):
    store, writers = _object_store(memfs)
    d = make(fs=store)
    d.login()
    d.send("TYPE I")
    d.upload = b"half"
    d.transfer_end = A.TransferEnd(A.Outcome.RESET)
    assert codes(d.dialogue(["PASV", "STOR new.bin"]))[-1] == 426
    assert writers[-1][1].aborted and not writers[-1][1].closed
    d.transfer_end = A.DONE
    assert codes(d.stor("whole.bin", b"all of it"))[-1] == 226
    assert writers[-1][1].closed and not writers[-1][1].aborted


def test_atomic_uploads_need_no_temporary_on_a_store_whose_uploads_are_atomic(make, memfs):
    store, writers = _object_store(memfs)
    d = make(fs=store, atomic_uploads=True)
    d.login()
    d.send("TYPE I")
    assert codes(d.stor("obj.bin", b"x"))[-1] == 226
    assert [path for path, _ in writers] == ["/obj.bin"]

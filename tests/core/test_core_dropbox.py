"""--anonymous-upload DIR on the sans-IO core: anonymous may CWD into DIR and store new
files there (STOR with an exclusive create, STOU) and nothing else there; outside it
anonymous keeps its own rights (read-only, or --write); other users are unaffected."""

from __future__ import annotations

import pytest
from core_driver import Driver, codes

from ftpd.core.dropbox import allows
from ftpd.core.listing import TEMP_PREFIX
from ftpd.core.session import SessionConfig
from ftpd.fs.base import isdir
from ftpd.fs.memory import MemoryFS

FILES = {
    "/incoming/old.txt": b"original",
    "/incoming/sub/deep.txt": b"deep",
    "/pub/file.txt": b"public",
}


def driver(box="/incoming", *, user="anonymous", writable=False, **kw) -> Driver:
    d = Driver(MemoryFS(dict(FILES)), anonymous_upload=box, writable=writable, **kw)
    if user == "anonymous":
        d.login("anonymous", "guest@example.org")
    else:
        d.login()
    d.send("TYPE I")
    return d


def content(d: Driver, path: str) -> bytes:
    return d.fs.open_read(path).read()


def tree(d: Driver) -> dict[str, bytes]:
    out = {}
    stack = ["/"]
    while stack:
        top = stack.pop()
        for name in d.fs.listdir(top):
            path = top.rstrip("/") + "/" + name
            if isdir(d.fs, path):
                stack.append(path)
            else:
                out[path] = content(d, path)
    return out


def test_anonymous_uploads_a_new_file_into_the_drop_box():
    d = driver()
    assert codes(d.send("CWD incoming")) == [250]
    assert codes(d.stor("new.txt", b"dropped")) == [227, 150, 226]
    assert content(d, "/incoming/new.txt") == b"dropped"
    assert codes(d.stor("/incoming/abs.txt", b"abs")) == [227, 150, 226]
    assert content(d, "/incoming/abs.txt") == b"abs"
    assert codes(d.send("PWD")) == [257]
    assert codes(d.send("CDUP")) == [250]


def test_stou_is_allowed_in_the_drop_box():
    d = driver()
    d.send("CWD /incoming")
    replies = d.stor("", b"unique", verb="STOU")
    assert codes(replies) == [227, 150, 226]
    new = [n for n in d.fs.listdir("/incoming") if n.startswith("ftpd.")]
    assert len(new) == 1 and content(d, "/incoming/" + new[0]) == b"unique"


def test_an_existing_name_is_never_overwritten():
    d = driver()
    replies = d.stor("/incoming/old.txt", b"replaced!")
    assert codes(replies) == [227, 550]
    assert content(d, "/incoming/old.txt") == b"original"


def test_the_exclusive_create_wins_a_race():
    """The name is free when STOR starts, taken before the file is opened: the open is
    exclusive, so the other file is kept (a check followed by a plain open would lose)."""
    d = driver()
    d.hold_calls = True
    d.send("PASV")
    d.upload = b"late"
    d.send("STOR /incoming/race.txt")
    assert len(d.calls) == 1  # the open_write, held
    with d.fs.open_write("/incoming/race.txt") as f:
        f.write(b"first")
    d.hold_calls = False
    d.release()
    assert d.replies[-1].code == 550
    assert content(d, "/incoming/race.txt") == b"first"


def test_atomic_uploads_do_not_apply_in_the_drop_box():
    d = driver(atomic_uploads=True)
    assert codes(d.stor("/incoming/old.txt", b"replaced!")) == [227, 550]
    assert content(d, "/incoming/old.txt") == b"original"
    assert codes(d.stor("/incoming/new.txt", b"n")) == [227, 150, 226]
    assert not [n for n in d.fs.listdir("/incoming") if n.startswith(TEMP_PREFIX)]


DATA = {"RETR", "STOR", "APPE", "LIST", "NLST", "MLSD"}
REFUSED = [
    "RETR old.txt", "RETR /incoming/old.txt", "RETR sub/deep.txt", "LIST", "LIST .",
    "LIST /incoming", "LIST -la", "LIST *.txt", "NLST", "NLST /incoming", "MLSD",
    "MLSD /incoming", "MLST", "MLST old.txt", "MLST /incoming", "STAT .", "STAT old.txt",
    "STAT -la /incoming", "SIZE old.txt", "MDTM old.txt", "DELE old.txt", "RNFR old.txt",
    "RNFR /incoming", "APPE old.txt", "APPE brand-new.txt", "MKD newdir", "XMKD newdir",
    "RMD sub", "RMD /incoming", "SITE CHMOD 666 old.txt", "MFMT 20200101000000 old.txt",
    "CWD sub", "STOR sub/x.txt", "STOR /incoming", "LIST sub", "DELE /incoming/sub/deep.txt",
    "HASH old.txt", "XMD5 old.txt", "XSHA256 /incoming/old.txt", "XCRC sub/deep.txt",
]


@pytest.mark.parametrize("writable", [False, True], ids=["read-only", "write"])
@pytest.mark.parametrize("line", REFUSED)
def test_everything_else_in_the_drop_box_is_refused(line, writable):
    d = driver(writable=writable)
    d.send("CWD /incoming")
    before = tree(d)
    if line.split()[0] in DATA:
        d.send("PASV")
    assert codes(d.send(line)) == [550], line
    assert tree(d) == before


@pytest.mark.parametrize("offset", ["3", "0"])
def test_rest_stor_is_refused_in_the_drop_box(offset):
    d = driver()
    d.send("CWD /incoming")
    replies = d.dialogue([f"REST {offset}", "PASV", "STOR old.txt"])
    assert codes(replies) == [350, 227, 550]
    assert content(d, "/incoming/old.txt") == b"original"


def test_rest_then_stor_of_a_new_name_is_refused():
    d = driver()
    assert codes(d.dialogue(["REST 3", "PASV", "STOR /incoming/fresh.txt"])) == [350, 227, 550]
    assert "fresh.txt" not in d.fs.listdir("/incoming")


def test_rnto_into_the_drop_box_is_refused_with_write():
    d = driver(writable=True)
    assert codes(d.dialogue(["RNFR /pub/file.txt", "RNTO /incoming/file.txt"])) == [350, 550]
    assert content(d, "/pub/file.txt") == b"public"


def test_anonymous_stays_read_only_elsewhere():
    d = driver()
    assert d.retr("/pub/file.txt") == b"public"
    assert "incoming" in d.listing("LIST", "/")
    assert codes(d.stor("/pub/x.txt", b"x")) == [227, 550]
    assert codes(d.stor("/new.txt", b"x")) == [227, 550]
    assert codes(d.dialogue(["CWD /pub", "PASV", "STOU"])) == [250, 227, 550]
    assert codes(d.send("MKD /pub/d")) == [550]
    assert codes(d.send("DELE /pub/file.txt")) == [550]
    assert d.fs.listdir("/pub") == ["file.txt"]


def test_with_write_anonymous_writes_elsewhere_but_not_the_box_itself():
    d = driver(box="/pub/incoming", writable=True)
    d.fs.makedirs("/pub/incoming")
    assert codes(d.stor("/pub/x.txt", b"x")) == [227, 150, 226]
    assert codes(d.send("MKD /pub/d")) == [257]
    assert codes(d.dialogue(["RNFR /pub", "RMD /pub"])) == [550, 550]  # the box stays
    assert codes(d.dialogue(["RNFR /pub/incoming"])) == [550]
    assert codes(d.stor("/pub/incoming/new.txt", b"n")) == [227, 150, 226]
    assert codes(d.stor("/pub/incoming/new.txt", b"again")) == [227, 550]
    assert content(d, "/pub/incoming/new.txt") == b"n"


def test_other_users_are_unaffected():
    d = driver(user="alice")
    assert d.retr("/incoming/old.txt") == b"original"
    assert "old.txt" in d.listing("NLST", "/incoming")
    assert codes(d.stor("/incoming/old.txt", b"replaced")) == [227, 150, 226]
    assert content(d, "/incoming/old.txt") == b"replaced"
    assert codes(d.send("DELE /incoming/old.txt")) == [250]


def test_a_refused_upload_reports_perm():
    d = driver()
    d.stor("/pub/x.txt", b"x")
    uploads = [e.data for e in d.events if e.name == "fs.upload"]
    assert uploads and uploads[-1].status == "PERM" and uploads[-1].path == "/pub/x.txt"


def test_without_a_drop_box_anonymous_may_not_store():
    d = driver(box=None)
    assert codes(d.dialogue(["PASV", "STOR /incoming/new.txt"])) == [227, 550]


def test_a_relative_drop_box_is_taken_from_the_root():
    assert SessionConfig(anonymous_upload="incoming/").anonymous_upload == "/incoming"
    assert SessionConfig().anonymous_upload is None


@pytest.mark.parametrize("vpath, letter, may_write, ok", [
    ("/incoming", "e", False, True),
    ("/incoming/sub", "e", False, False),
    ("/incoming/a", "w", False, True),
    ("/incoming", "w", False, False),
    ("/incoming/sub/a", "w", False, False),
    ("/incoming/a", "r", True, False),
    ("/incoming/a", None, True, False),
    ("/incomingx/a", "w", False, False),  # a sibling with the same prefix is not the box
    ("/incomingx/a", "w", True, True),
    ("/", "f", True, False),
    ("/pub", "f", True, True),
    ("/pub", "r", False, True),
])
def test_the_rule(vpath, letter, may_write, ok):
    assert allows("/incoming", vpath, letter, may_write) is ok

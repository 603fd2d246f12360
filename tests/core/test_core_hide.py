"""--hide and dot files, on the sans-IO core: hidden names are absent from every listing
and refused for every command that takes a path, with the reply a missing file gets;
names beginning with "." are listed by LIST/NLST/STAT only with -a, always by MLSD."""

from __future__ import annotations

import pytest
from core_driver import Driver, codes, text

from ftpd.core.listing import MAX_MATCH_STEPS, TEMP_PREFIX, Hidden, _match
from ftpd.core.paths import resolve
from ftpd.fs.memory import MemoryFS

HIDE = (".git", "*.part", "up.*")
FILES = {
    "/a.txt": b"a",
    "/.profile": b"dot",
    "/.git/config": b"secret",
    "/big.part": b"partial",
    "/sub/ok.txt": b"ok",
    "/sub/x.part": b"partial too",
    "/sub/.hidden-dot": b"d",
    f"/{TEMP_PREFIX}abc": b"temporary",
}
MISSING = "No such file or directory"


def driver(hide=HIDE, **kw) -> Driver:
    d = Driver(MemoryFS(dict(FILES)), hide=hide, **kw)
    d.login()
    return d


def names(listing: str) -> set[str]:
    """The names of a LIST (last word), NLST (the line) or MLSD (after "; ") listing."""
    out = set()
    for line in listing.splitlines():
        out.add(line.split("; ", 1)[1] if "; " in line else line.split(" ")[-1])
    return out


# -- listings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("verb, arg, expected", [
    ("LIST", "", {"a.txt", "sub"}),
    ("NLST", "", {"a.txt", "sub"}),
    ("LIST", "-a", {"a.txt", "sub", ".profile"}),
    ("LIST", "-la", {"a.txt", "sub", ".profile"}),
    ("LIST", "-l -a /", {"a.txt", "sub", ".profile"}),
    ("NLST", "-a", {"a.txt", "sub", ".profile"}),
    ("LIST", "-l", {"a.txt", "sub"}),
    ("MLSD", "", {"a.txt", "sub", ".profile"}),
    ("LIST", "sub", {"ok.txt"}),
    ("LIST", "-a sub", {"ok.txt", ".hidden-dot"}),
    ("MLSD", "sub", {"ok.txt", ".hidden-dot"}),
    ("NLST", "*", {"a.txt", "sub"}),
    ("NLST", ".*", {".profile"}),
    ("NLST", "-a *", {"a.txt", "sub", ".profile"}),
])
def test_listings_never_show_hidden_names(verb, arg, expected):
    d = driver()
    assert names(d.listing(verb, arg)) == expected


def test_without_hide_dot_files_need_dash_a_too():
    d = driver(hide=())
    assert ".git" not in names(d.listing("LIST"))
    assert {".git", ".profile", "big.part"} <= names(d.listing("LIST", "-a"))
    assert {".git", ".profile"} <= names(d.listing("MLSD"))
    assert f"{TEMP_PREFIX}abc" not in names(d.listing("LIST", "-a"))  # never listed


def stat_names(d: Driver, arg: str) -> set[str]:
    reply = d.send(f"STAT {arg}")[-1]
    assert reply.code == 213, reply
    return {line.split(" ")[-1] for line in reply.lines[1:-1]}


def test_stat_listing_hides_and_shows_dots_with_dash_a():
    d = driver()
    assert stat_names(d, "/") == {"a.txt", "sub"}
    assert stat_names(d, "-a /") == {"a.txt", "sub", ".profile"}
    assert stat_names(d, "-la sub") == {"ok.txt", ".hidden-dot"}


# -- every command that takes a path ----------------------------------------------------------
DATA = {"RETR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD"}
REFUSED = [
    "CWD .git", "CWD /sub/../.git", "XCWD .git", "RETR big.part", "RETR .git/config",
    "RETR sub/x.part", "STOR new.part", "STOR .git/new", "APPE big.part", "DELE big.part",
    "RNFR big.part", "RNFR .git", "MKD d.part", "MKD .git/d", "XMKD .git", "RMD .git",
    "SIZE big.part", "MDTM .git/config", "MLST .git", "MLST sub/x.part", "STAT big.part",
    "STAT .git", "SITE CHMOD 600 big.part", "MFMT 20200101000000 big.part",
    "SITE SYMLINK big.part link", "SITE SYMLINK a.txt link.part", "LIST .git",
    "LIST big.part", "NLST .git", "NLST .git/*", "MLSD .git", "LIST -la .git", "STOU up",
    "HASH big.part", "XMD5 .git/config", "XSHA1 sub/x.part", "XSHA256 big.part",
    "XCRC big.part",
]


@pytest.mark.parametrize("line", REFUSED)
def test_hidden_names_are_refused_for_every_command(line):
    d = driver()
    before = {p: d.fs.open_read(p).read() for p in FILES}
    d.send("TYPE I")
    if line.split()[0] in DATA:
        d.send("PASV")
    reply = d.send(line)[-1]
    assert (reply.code, text(reply)) == (550, MISSING), reply
    assert {p: d.fs.open_read(p).read() for p in FILES} == before
    assert sorted(d.fs.listdir("/")) == sorted(["a.txt", ".profile", ".git", "big.part", "sub",
                                                 f"{TEMP_PREFIX}abc"])


def test_the_refusal_is_the_reply_a_missing_file_gets():
    d = driver()
    d.send("TYPE I")
    for verb in ("RETR", "SIZE", "MDTM", "CWD", "DELE", "RNFR", "MLST", "RMD", "HASH", "XMD5"):
        hidden = d.dialogue(["PASV", f"{verb} big.part"])[-1]
        missing = d.dialogue(["PASV", f"{verb} no-such-file"])[-1]
        assert (hidden.code, hidden.lines) == (missing.code, missing.lines), verb


def test_rnto_onto_a_hidden_name_is_refused():
    d = driver()
    assert codes(d.dialogue(["RNFR a.txt", "RNTO a.part"])) == [350, 550]
    assert d.fs.open_read("/a.txt").read() == b"a"
    assert "a.part" not in d.fs.listdir("/")


def test_visible_names_still_work():
    d = driver()
    assert d.retr("a.txt") == b"a"
    assert d.retr(".profile") == b"dot"  # a dot file is not hidden, only not listed
    assert codes(d.stor("sub/new.txt", b"n")) == [227, 150, 226]
    assert codes(d.dialogue(["TYPE I", "CWD sub", "SIZE ok.txt"])) == [200, 250, 213]


def test_stou_with_a_visible_name():
    d = driver()
    assert codes(d.stor("", b"u", verb="STOU")) == [227, 150, 226]


def test_anonymous_gets_the_same_refusals():
    d = Driver(MemoryFS(dict(FILES)), hide=HIDE)
    d.login("anonymous", "a@b")
    assert codes(d.dialogue(["TYPE I", "PASV", "RETR big.part"])) == [200, 227, 550]
    assert names(d.listing("MLSD")) == {"a.txt", "sub", ".profile"}


# -- the matcher and the one path function ---------------------------------------------------
def test_resolve_refuses_any_hidden_component():
    hidden = Hidden(HIDE)
    assert resolve("/", "sub/ok.txt", hidden) == "/sub/ok.txt"
    assert resolve("/", ".git/..", hidden) == "/"  # normalised first: .git is never touched
    for arg in (".git", "/.git/x/y", "sub/x.part", "a/b/c.part/d"):
        with pytest.raises(FileNotFoundError):
            resolve("/", arg, hidden)


def test_a_name_too_costly_to_match_counts_as_hidden():
    pattern = "*" + "a" * 30 + "b"  # every restart of the star re-reads 30 characters
    name = "a" * 1500  # a path component a client may send (lines hold 2048 bytes)
    assert _match(pattern, name, MAX_MATCH_STEPS)[0] is None  # undecided in the budget
    assert Hidden([pattern])(name)  # fail closed: treated as hidden
    assert not Hidden([pattern])("a" * 40)
    assert Hidden([pattern])("a" * 40 + "b")


def test_empty_hide_hides_nothing():
    assert not Hidden()
    assert not Hidden()(".git")

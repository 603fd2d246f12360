"""Whole dialogues for the commands that need no data connection: navigation,
information, and the file operations answered on the control connection."""

from __future__ import annotations

import calendar
import stat

from core_driver import codes, text


# -- simple commands -----------------------------------------------------------------
def test_noop_and_syst(ftp):
    assert codes(ftp.send("NOOP")) == [200]
    r = ftp.send("SYST")
    assert codes(r) == [215] and r[0].lines == ("UNIX Type: L8",)


def test_type(alice):
    s = alice.session
    assert codes(alice.send("TYPE A")) == [200] and s.type == "A"
    assert codes(alice.send("TYPE I")) == [200] and s.type == "I"
    assert codes(alice.send("TYPE A N")) == [200] and s.type == "A"
    assert codes(alice.send("TYPE L 8")) == [200] and s.type == "I"
    assert codes(alice.send("type a")) == [200] and s.type == "A"
    assert codes(alice.send("TYPE E")) == [504] and s.type == "A"
    assert codes(alice.send("TYPE L 7")) == [504]
    assert codes(alice.send("TYPE")) == [501]


def test_mode_and_stru(alice):
    assert codes(alice.send("MODE S")) == [200]
    assert codes(alice.send("MODE B")) == [504]
    assert codes(alice.send("MODE X")) == [501]
    assert codes(alice.send("STRU F")) == [200]
    assert codes(alice.send("STRU R")) == [504]
    assert codes(alice.send("STRU Q")) == [501]


def test_allo(alice):
    assert codes(alice.send("ALLO 100")) == [202]


def test_smnt_not_implemented(alice):
    assert codes(alice.send("SMNT /pub")) == [502]


# -- navigation ------------------------------------------------------------------------
def test_pwd_cwd_cdup(alice):
    r = alice.send("PWD")
    assert codes(r) == [257] and r[0].lines[0].startswith('"/" ')
    assert codes(alice.send("CWD pub")) == [250]
    assert alice.send("PWD")[0].lines[0].startswith('"/pub" ')
    assert codes(alice.send("XPWD")) == [257]
    assert codes(alice.send("CDUP")) == [250]
    assert alice.session.cwd == "/"
    assert codes(alice.send("XCWD /pub")) == [250]
    assert codes(alice.send("XCUP")) == [250]
    assert alice.session.cwd == "/"


def test_cwd_cannot_climb_above_root(alice):
    assert codes(alice.send("CWD /../..")) == [250]
    assert alice.session.cwd == "/"
    assert codes(alice.send("CWD pub/../../../pub")) == [250]
    assert alice.session.cwd == "/pub"
    assert codes(alice.send("CDUP")) == [250]
    assert codes(alice.send("CDUP")) == [250]
    assert alice.session.cwd == "/"


def test_cwd_errors(alice):
    assert codes(alice.send("CWD nothere")) == [550]
    assert codes(alice.send("CWD hello.txt")) == [550]
    assert codes(alice.send("CWD")) == [501]
    assert alice.session.cwd == "/"


# -- files and directories ---------------------------------------------------------------
def test_mkd_rmd(alice, memfs):
    r = alice.send("MKD newdir")
    assert codes(r) == [257] and r[0].lines[0].startswith('"/newdir" ')
    assert stat.S_ISDIR(memfs.stat("/newdir").st_mode)
    assert codes(alice.send("XMKD /newdir/sub")) == [257]
    assert codes(alice.send("MKD newdir")) == [550]  # exists
    assert codes(alice.send("RMD newdir")) == [550]  # not empty
    assert codes(alice.send("XRMD newdir/sub")) == [250]
    assert codes(alice.send("RMD newdir")) == [250]
    assert codes(alice.send("RMD newdir")) == [550]
    assert codes(alice.send("RMD /")) == [550]
    assert codes(alice.send("RMD hello.txt")) == [550]
    assert "fs.mkdir" in alice.event_names() and "fs.rmdir" in alice.event_names()


def test_mkd_quotes_double_quotes(alice):
    r = alice.send('MKD say "hi"')
    assert codes(r) == [257]
    assert r[0].lines[0].startswith('"/say ""hi""" ')
    alice.send('CWD say "hi"')
    assert alice.send("PWD")[0].lines[0].startswith('"/say ""hi""" ')


def test_mkd_root_is_550_not_internal_error(alice):
    for line in ["MKD /", "DELE /", "RNFR hello.txt", "RNTO /", "RMD /"]:
        r = alice.send(line)
        assert r[0].code in (350, 550), (line, r)
    assert "hello.txt" in alice.fs.listdir("/")


def test_dele(alice, memfs):
    assert codes(alice.send("DELE hello.txt")) == [250]
    assert "hello.txt" not in memfs.listdir("/")
    assert codes(alice.send("DELE hello.txt")) == [550]
    assert codes(alice.send("DELE pub")) == [550]  # a directory
    assert "fs.delete" in alice.event_names()


def test_rename(alice, memfs):
    assert codes(alice.dialogue(["RNFR hello.txt", "RNTO pub/moved.txt"])) == [350, 250]
    assert memfs.open_read("/pub/moved.txt").read() == b"hello world\n"
    assert "hello.txt" not in memfs.listdir("/")
    ev = [e for e in alice.events if e.name == "fs.rename"][0].data
    assert (ev.old_path, ev.new_path) == ("/hello.txt", "/pub/moved.txt")


def test_rnto_without_rnfr(alice):
    assert codes(alice.send("RNTO x")) == [503]


def test_rnfr_missing_file(alice):
    assert codes(alice.send("RNFR nothere")) == [550]
    assert codes(alice.send("RNTO x")) == [503]


def test_intervening_command_clears_rnfr(alice, memfs):
    assert codes(alice.dialogue(["RNFR hello.txt", "NOOP", "RNTO x"])) == [350, 200, 503]
    assert "hello.txt" in memfs.listdir("/")


def test_rnfr_used_once(alice):
    assert codes(alice.dialogue(["RNFR hello.txt", "RNTO a", "RNTO b"])) == [350, 250, 503]


def test_size(alice):
    r = alice.send("SIZE bin.dat")
    assert codes(r) == [213] and r[0].lines == ("1024",)
    assert codes(alice.send("SIZE pub")) == [550]
    assert codes(alice.send("SIZE nothere")) == [550]


def test_size_refused_in_type_a(alice):
    alice.send("TYPE A")
    assert codes(alice.send("SIZE bin.dat")) == [550]


def test_mdtm_and_mfmt(alice, memfs):
    memfs.utime("/hello.txt", calendar.timegm((2021, 3, 4, 5, 6, 7, 0, 0, 0)))
    r = alice.send("MDTM hello.txt")
    assert codes(r) == [213] and r[0].lines == ("20210304050607",)
    assert codes(alice.send("MDTM pub")) == [550]
    assert codes(alice.send("MDTM nothere")) == [550]
    r = alice.send("MFMT 19991231235958 hello.txt")
    assert codes(r) == [213]
    assert r[0].lines[0] == "Modify=19991231235958; /hello.txt"
    assert alice.send("MDTM hello.txt")[0].lines == ("19991231235958",)
    assert memfs.stat("/hello.txt").st_mtime == calendar.timegm((1999, 12, 31, 23, 59, 58,
                                                                 0, 0, 0))
    assert codes(alice.send("MFMT 2021 hello.txt")) == [501]
    assert codes(alice.send("MFMT 20211304050607 hello.txt")) == [501]  # month 13
    assert codes(alice.send("MFMT 20210304050607")) == [501]
    assert codes(alice.send("MFMT 20210304050607 nothere")) == [550]


def test_site_chmod(alice, memfs):
    assert codes(alice.send("SITE CHMOD 600 hello.txt")) == [200]
    assert stat.S_IMODE(memfs.stat("/hello.txt").st_mode) == 0o600
    assert codes(alice.send("site chmod 0755 pub")) == [200]
    assert stat.S_IMODE(memfs.stat("/pub").st_mode) == 0o755
    assert codes(alice.send("SITE CHMOD 999 hello.txt")) == [501]
    assert codes(alice.send("SITE CHMOD 644")) == [501]
    assert codes(alice.send("SITE CHMOD")) == [501]
    assert codes(alice.send("SITE CHMOD 644 nothere")) == [550]
    assert "fs.chmod" in alice.event_names()


def test_site_symlink(alice, memfs):
    assert codes(alice.send("SITE SYMLINK /pub link")) == [200]
    assert stat.S_ISLNK(memfs.lstat("/link").st_mode)
    assert sorted(memfs.listdir("/link")) == sorted(memfs.listdir("/pub"))
    assert codes(alice.send("SITE SYMLINK nothere link2")) == [550]  # target must exist
    assert codes(alice.send("SITE SYMLINK /pub link")) == [550]  # link exists
    assert codes(alice.send("SITE SYMLINK onlyone")) == [501]
    assert "fs.symlink" in alice.event_names()


def test_site_symlink_refused_for_anonymous_even_if_writable(make):
    d = make(writable=True)
    d.login("anonymous", "x")
    assert codes(d.send("SITE SYMLINK /pub link")) == [550]


def test_site_symlink_needs_perm_L(make):
    from ftpd.auth.base import SingleUserAuthorizer

    d = make(authorizer=SingleUserAuthorizer("bob", "pw", "/", perm="elradfmwMT"))
    d.login("bob", "pw")
    assert codes(d.send("SITE SYMLINK /pub link")) == [550]
    assert codes(d.send("SITE CHMOD 644 hello.txt")) == [200]


def test_site_help_and_unknown(ftp):
    r = ftp.send("SITE HELP")
    assert codes(r) == [214]
    body = text(r[0])
    assert "CHMOD" in body and "SYMLINK" in body
    r = ftp.send("SITE HELP CHMOD")
    assert codes(r) == [214] and "CHMOD" in text(r[0])
    assert codes(ftp.send("SITE HELP NOPE")) == [501]
    assert codes(ftp.send("SITE FROB")) == [500]
    assert codes(ftp.send("SITE")) == [501]


# -- information -------------------------------------------------------------------------
def test_help(ftp):
    r = ftp.send("HELP")
    assert codes(r) == [214] and len(r[0].lines) > 3
    body = text(r[0])
    for verb in ["USER", "RETR", "STOR", "MLSD", "EPSV", "XMKD", "FEAT"]:
        assert verb in body
    r = ftp.send("HELP retr")
    assert codes(r) == [214] and "RETR" in text(r[0])
    assert codes(ftp.send("HELP FROB")) == [501]


def test_help_site_subcommand_is_site_help_subcommand(make):
    from ftpd.core.sessionconfig import _default_table

    table = _default_table().copy()
    table.command("UPTIME", login=False, help="SITE UPTIME (how long)", site=True)(
        lambda s, cmd: cmd.add(200, "up"))
    ftp = make(table=table)
    for name in ("CHMOD", "symlink", "HELP", "UPTIME"):
        r = ftp.send(f"HELP SITE {name}")
        assert codes(r) == [214], name
        assert r[0].lines == ftp.send(f"SITE HELP {name}")[0].lines
    assert ftp.send("HELP SITE UPTIME")[0].lines == ("Syntax: SITE UPTIME (how long)",)
    assert codes(ftp.send("HELP SITE  CHMOD")) == [214]
    r = ftp.send("HELP SITE NOPE")
    assert codes(r) == [501] and "SITE command NOPE" in text(r[0])
    assert "SITE <sp> subcommand" in text(ftp.send("HELP SITE")[0])


def test_feat(ftp):
    r = ftp.send("FEAT")
    assert codes(r) == [211]
    lines = r[0].lines
    assert lines[0] == "Features:" and lines[-1] == "End"
    feats = set(lines[1:-1])
    for f in ["UTF8", "SIZE", "MDTM", "MFMT", "EPRT", "EPSV", "REST STREAM", "TVFS"]:
        assert f in feats, f
    mlst = [f for f in feats if f.startswith("MLST ")]
    assert mlst == ["MLST type*;size*;modify*;perm*;unique*;unix.mode*;"]
    wire = r[0].encode().decode().split("\r\n")
    assert wire[0] == "211-Features:" and wire[-2] == "211 End"
    assert all(line.startswith(" ") for line in wire[1:-2])  # RFC 2389: one space


def test_opts_mlst_changes_facts_and_feat(alice):
    r = alice.send("OPTS MLST type;size;")
    assert codes(r) == [200] and r[0].lines[0] == "MLST OPTS type;size;"
    feat = alice.send("FEAT")[0].lines
    assert "MLST type*;size*;modify;perm;unique;unix.mode;" in feat
    r = alice.send("MLST hello.txt")
    assert r[0].lines[1] == "type=file;size=12; /hello.txt"


def test_opts_mlst_ignores_unknown_facts(alice):
    # lftp sends facts the server may not know; RFC 3659 7.9: unsupported facts are ignored
    r = alice.send("OPTS MLST type;size;modify;perm;UNIX.mode;UNIX.owner;UNIX.group;")
    assert codes(r) == [200]
    assert r[0].lines[0] == "MLST OPTS type;size;modify;perm;unix.mode;"


def test_opts_mlst_no_facts(alice):
    r = alice.send("OPTS MLST")
    assert codes(r) == [200]
    assert alice.send("MLST hello.txt")[0].lines[1] == " /hello.txt"


def test_opts_utf8(ftp):
    assert codes(ftp.send("OPTS UTF8 ON")) == [200]
    assert codes(ftp.send("OPTS UTF8 OFF")) == [200]
    assert codes(ftp.send("OPTS UTF8 MAYBE")) == [501]
    assert codes(ftp.send("OPTS FROB")) == [501]
    assert codes(ftp.send("OPTS")) == [501]


def test_mlst(alice, memfs):
    memfs.utime("/hello.txt", calendar.timegm((2021, 3, 4, 5, 6, 7, 0, 0, 0)))
    r = alice.send("MLST hello.txt")
    assert codes(r) == [250]
    first, facts, last = r[0].lines
    assert first == "Listing /hello.txt" and last == "End."
    fields, name = facts.split(" ", 1)
    assert name == "/hello.txt"
    parsed = dict(f.split("=", 1) for f in fields.rstrip(";").split(";"))
    assert parsed["type"] == "file" and parsed["size"] == "12"
    assert parsed["modify"] == "20210304050607"
    assert parsed["perm"] == "rwadf"
    assert parsed["unix.mode"] == "0644"
    assert "unique" in parsed
    # on the wire the fact line is an inner line starting with exactly one space
    wire = r[0].encode().split(b"\r\n")
    assert wire[1].startswith(b" type=") and not wire[1].startswith(b"  ")
    r = alice.send("MLST")
    assert "type=dir" in r[0].lines[1] and r[0].lines[1].endswith(" /")
    assert codes(alice.send("MLST nothere")) == [550]


def test_mlst_perm_fact_for_anonymous(anon):
    facts = anon.send("MLST hello.txt")[0].lines[1]
    assert "perm=r;" in facts
    facts = anon.send("MLST pub")[0].lines[1]
    assert "perm=el;" in facts


def test_stat_without_argument(alice):
    r = alice.send("STAT")
    assert codes(r) == [211] and len(r[0].lines) > 2
    assert "Logged in as alice" in text(r[0])
    wire = r[0].encode().decode()
    assert wire.startswith("211-") and wire.endswith("\r\n211 End of status.\r\n")


def test_stat_with_path(alice):
    r = alice.send("STAT /pub")
    assert codes(r) == [213]
    body = text(r[0])
    assert "a.txt" in body and "readme" in body
    r = alice.send("STAT -la /pub/*.txt")
    assert codes(r) == [213]
    body = text(r[0])
    assert "a.txt" in body and "c.log" not in body
    r = alice.send("STAT hello.txt")
    assert codes(r) == [213] and "hello.txt" in text(r[0])
    assert codes(alice.send("STAT nothere")) == [550]


def test_stat_with_path_needs_login(ftp):
    assert codes(ftp.send("STAT /")) == [530]


def test_stat_of_a_directory_too_big_for_one_reply_is_refused(memfs, alice):
    """Issue 10 point 8: the reply would outgrow what the transport lets a client leave
    unread (it then closed the session); refused with 550 instead, the session goes on."""
    memfs.mkdir("/huge")
    for i in range(20_000):  # about 100 bytes a line: 2 MB
        memfs.open_write(f"/huge/{'n' * 50}{i:06d}").close()
    r = alice.send("STAT /huge")
    assert codes(r) == [550] and "too large" in text(r[0])
    assert len(r[0].encode()) < 1000
    assert codes(alice.send("NOOP")) == [200]
    assert codes(alice.send("STAT /pub")) == [213]  # a normal directory still works

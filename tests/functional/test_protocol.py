"""The rest of the protocol against the real ``ftpd`` command: restarts, appends, unique
names, ABOR and STAT while data flows, the RFC 3659 and SITE extensions, EPSV ALL,
REIN, the X-variants, TYPE A conversion and listing patterns."""

from __future__ import annotations

import calendar
import ftplib
import io
import os
import socket
import stat

import pytest
from ftpsupport import DEADLINE, RawControl, sha256

BIG = 48 << 20  # a sparse file: too big to vanish into socket buffers before ABOR


@pytest.fixture
def server(ftpd_server):
    return ftpd_server()


@pytest.fixture
def big_file(server):
    path = server.root / "big.bin"
    with open(path, "wb") as f:
        f.truncate(BIG)
    return path


def read_all(conn: socket.socket) -> bytes:
    out = bytearray()
    while chunk := conn.recv(1 << 20):
        out += chunk
    return bytes(out)


# -- restarts, appends, unique names ----------------------------------------------------
def test_rest_retr_downloads_from_offset(server, payload):
    (server.root / "r.bin").write_bytes(payload)
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    for offset in (0, 1, 777_777, len(payload) - 1, len(payload)):
        got = bytearray()
        ftp.retrbinary("RETR r.bin", got.extend, rest=offset)
        assert sha256(bytes(got)) == sha256(payload[offset:]), offset
    # REST applies to the next transfer only
    got = bytearray()
    assert ftp.sendcmd("REST 100").startswith("350")
    ftp.retrbinary("RETR r.bin", got.extend)
    assert len(got) == len(payload) - 100
    got.clear()
    ftp.retrbinary("RETR r.bin", got.extend)
    assert len(got) == len(payload)
    with pytest.raises(ftplib.error_perm, match="^554"):
        ftp.retrbinary("RETR r.bin", got.extend, rest=len(payload) + 1)
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("REST -5")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("REST abc")
    ftp.voidcmd("TYPE A")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("REST 10")  # REST > 0 in TYPE A is refused
    ftp.quit()


def test_rest_stor_resumes_without_truncation(server, payload):
    ftp = server.ftp()
    half = len(payload) // 2
    ftp.storbinary("STOR up.bin", io.BytesIO(payload[:half]))
    assert (server.root / "up.bin").stat().st_size == half
    ftp.storbinary("STOR up.bin", io.BytesIO(payload[half:]), rest=half)
    assert sha256(server.root / "up.bin") == sha256(payload)
    # writing in the middle keeps what lies beyond
    ftp.storbinary("STOR up.bin", io.BytesIO(b"X" * 10), rest=1000)
    expected = payload[:1000] + b"X" * 10 + payload[1010:]
    assert sha256(server.root / "up.bin") == sha256(expected)
    # and a plain STOR truncates again
    ftp.storbinary("STOR up.bin", io.BytesIO(b"short"))
    assert (server.root / "up.bin").read_bytes() == b"short"
    ftp.quit()


def test_rest_beyond_a_file_offset_creates_nothing(server):
    """REST 2^63 and up is refused at REST; an offset a file could hold but this one
    does not is refused at STOR/APPE/RETR, before any file is opened or created."""
    (server.root / "small.bin").write_bytes(b"0123456789")
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    for arg in (str(2**63), str(2**64), "-1"):
        with pytest.raises(ftplib.error_perm, match="^501"):
            ftp.sendcmd(f"REST {arg}")
    ftp.storbinary("STOR fresh.bin", io.BytesIO(b"data"))  # a refused REST left no marker
    assert (server.root / "fresh.bin").read_bytes() == b"data"
    for verb, name, code in (("STOR", "absent.bin", "550"), ("APPE", "absent.bin", "550"),
                             ("STOR", "small.bin", "554"), ("APPE", "small.bin", "554"),
                             ("RETR", "small.bin", "554")):
        assert ftp.sendcmd(f"REST {2**63 - 1}").startswith("350")
        with pytest.raises(ftplib.error_perm, match=f"^{code}"):
            ftp.transfercmd(f"{verb} {name}")
    assert not (server.root / "absent.bin").exists()
    assert (server.root / "small.bin").read_bytes() == b"0123456789"
    # REST then APPE acts as REST then STOR (RFC 3659 5.4)
    ftp.storbinary("APPE small.bin", io.BytesIO(b"AB"), rest=4)
    assert (server.root / "small.bin").read_bytes() == b"0123AB6789"
    ftp.quit()


def test_appe(server, payload):
    ftp = server.ftp()
    ftp.storbinary("APPE new.bin", io.BytesIO(payload[:1000]))  # creates
    ftp.storbinary("APPE new.bin", io.BytesIO(payload[1000:]))
    assert sha256(server.root / "new.bin") == sha256(payload)
    ftp.quit()


def test_stou(server):
    ftp = server.ftp()
    names = set()
    for data in (b"one", b"two"):
        conn = ftp.transfercmd("STOU")
        prelim = ftp.lastresp
        conn.sendall(data)
        conn.close()
        final = ftp.voidresp()
        assert prelim == "150" and final.startswith("226")
        name = final.split("unique file name: ")[1].rstrip(").")
        assert (server.root / name).read_bytes() == data
        names.add(name)
    assert len(names) == 2
    # STOU with a suggested stem keeps the stem
    ftp.storbinary("STOU report", io.BytesIO(b"x"))
    assert any(p.name.startswith("report.") for p in server.root.iterdir())
    ftp.quit()


# -- ABOR, STAT and QUIT while data flows ------------------------------------------------
def test_abor_during_download_with_ftplib(server, big_file):
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    assert len(conn.recv(65536)) > 0
    resp = ftp.abort()  # ABOR sent as urgent data
    assert resp.startswith("426"), resp
    assert ftp.getresp().startswith("226")
    conn.close()
    assert ftp.voidcmd("NOOP").startswith("200")
    got = bytearray()  # and the session still transfers
    ftp.retrbinary("RETR big.bin", got.extend, rest=BIG - 4096)
    assert len(got) == 4096
    ftp.quit()


def test_abor_with_telnet_ip_and_synch(server, big_file):
    """What BSD ftp and lftp send: IAC IP, IAC DM as urgent data, then ABOR."""
    with RawControl(server.host, server.port) as c:
        c.login()
        assert c.cmd("TYPE I")[0] == 200
        host, port = c.pasv()
        data = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        data.settimeout(DEADLINE)
        data.connect((host, port))
        code, _ = c.cmd("RETR big.bin")
        assert code == 150
        assert data.recv(4096)
        c.send(b"\xff\xf4\xff")  # IAC IP IAC
        c.send(b"\xf2", socket.MSG_OOB)  # DM, urgent
        c.send(b"ABOR\r\n")
        assert c.reply()[0] == 426
        assert c.reply()[0] == 226
        data.close()
        assert c.cmd("NOOP")[0] == 200
        assert c.cmd("QUIT")[0] == 221


def test_abor_without_transfer(server):
    ftp = server.ftp()
    assert ftp.sendcmd("ABOR").startswith("225")
    ftp.makepasv()  # a prepared but unused data connection is dropped too
    assert ftp.sendcmd("ABOR").startswith("225")
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()


def test_stat_during_slow_download(server, big_file):
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    first = conn.recv(65536)  # a slow reader: the server is stuck on a full socket
    status = ftp.sendcmd("STAT")
    assert status.startswith("213"), status
    assert "big.bin" in status
    assert ftp.sendcmd("NOOP").startswith("200")  # NOOP too is answered at once
    rest = read_all(conn)
    conn.close()
    assert len(first) + len(rest) == BIG
    assert ftp.voidresp().startswith("226")
    ftp.quit()


def test_quit_during_download_waits_for_the_transfer(server, big_file):
    with RawControl(server.host, server.port) as c:
        c.login()
        c.cmd("TYPE I")
        host, port = c.pasv()
        data = socket.create_connection((host, port), timeout=DEADLINE)
        assert c.cmd("RETR big.bin")[0] == 150
        c.send(b"QUIT\r\n")
        assert len(read_all(data)) == BIG
        data.close()
        assert c.reply()[0] == 226
        assert c.reply()[0] == 221
        assert c.wait_closed()


def test_pipelined_commands_during_a_download_keep_their_order(server, big_file):
    """SIZE and NOOP in one packet while RETR data waits on a slow reader: NOOP waits
    behind SIZE (it is not answered first), so replies come 226, 213, 200."""
    with RawControl(server.host, server.port) as c:
        c.login()
        assert c.cmd("TYPE I")[0] == 200
        host, port = c.pasv()
        data = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        data.settimeout(DEADLINE)
        data.connect((host, port))
        assert c.cmd("RETR big.bin")[0] == 150
        assert data.recv(4096)  # data flows; the rest waits for this slow reader
        c.send(b"SIZE big.bin\r\nNOOP\r\n")
        received = len(read_all(data))
        data.close()
        assert received > 0
        assert [c.reply()[0] for _ in range(3)] == [226, 213, 200]
        assert c.cmd("QUIT")[0] == 221


def test_stat_without_transfer(server):
    (server.root / "a.txt").write_bytes(b"a")
    ftp = server.ftp()
    text = ftp.sendcmd("STAT")
    assert text.startswith("211-") and "Logged in as user" in text
    text = ftp.sendcmd("STAT /")
    assert text.startswith("213-") and text.splitlines()[1].endswith(" a.txt")
    ftp.quit()


# -- RFC 3659, MFMT, SITE -------------------------------------------------------------
def test_mlst_mdtm_mfmt(server):
    path = server.root / "m.txt"
    path.write_bytes(b"12345")
    stamp = calendar.timegm((2020, 1, 2, 3, 4, 5))
    os.utime(path, (stamp, stamp))
    (server.root / "sub").mkdir()
    ftp = server.ftp()
    text = ftp.sendcmd("MLST m.txt")
    lines = text.splitlines()
    assert lines[0].startswith("250-") and lines[-1].startswith("250 ")
    assert lines[1].startswith(" ") and lines[1].endswith("; /m.txt")
    facts = dict(f.split("=", 1) for f in lines[1].strip().split("; ")[0].split(";"))
    assert facts["type"] == "file" and facts["size"] == "5"
    assert facts["modify"] == "20200102030405" and facts["unix.mode"] == "0644"
    assert "type=dir" in ftp.sendcmd("MLST sub")
    assert ftp.sendcmd("MDTM m.txt") == "213 20200102030405"
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd("MDTM missing")
    assert ftp.sendcmd("MFMT 20210304050607 m.txt").startswith("213")
    assert path.stat().st_mtime == calendar.timegm((2021, 3, 4, 5, 6, 7))
    assert ftp.sendcmd("MDTM m.txt") == "213 20210304050607"
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("MFMT yesterday m.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd("MLST missing")
    ftp.quit()


def test_site_chmod_symlink_help(server):
    (server.root / "t.txt").write_bytes(b"target\n")
    ftp = server.ftp()
    assert ftp.sendcmd("SITE CHMOD 600 t.txt").startswith("200")
    assert stat.S_IMODE((server.root / "t.txt").stat().st_mode) == 0o600
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("SITE CHMOD 999 t.txt")
    assert ftp.sendcmd("SITE SYMLINK t.txt l.txt").startswith("200")
    link = server.root / "l.txt"
    assert link.is_symlink() and link.resolve() == (server.root / "t.txt").resolve()
    got = bytearray()
    ftp.retrbinary("RETR l.txt", got.extend)
    assert bytes(got) == b"target\n"
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd("SITE SYMLINK /etc/passwd p")  # resolves inside the root: absent
    assert not (server.root / "p").exists()
    text = ftp.sendcmd("SITE HELP")
    assert text.startswith("214-") and "CHMOD" in text and "SYMLINK" in text
    with pytest.raises(ftplib.error_perm, match="^500"):
        ftp.sendcmd("SITE NOSUCH")
    ftp.quit()


def test_site_symlink_never_for_anonymous(ftpd_server):
    server = ftpd_server("-w")
    (server.root / "t.txt").write_bytes(b"x")
    ftp = server.ftp("anonymous", "guest@")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd("SITE SYMLINK t.txt l.txt")
    assert not (server.root / "l.txt").exists()
    ftp.quit()


# -- OPTS, EPSV ALL, ACCT, REIN, ALLO, SMNT, X-variants ---------------------------------
def test_opts_utf8(server):
    ftp = server.ftp()
    assert ftp.sendcmd("OPTS UTF8 ON").startswith("200")
    ftp.mkd("café")
    assert (server.root / "café").is_dir()
    assert "café" in ftp.nlst()
    ftp.quit()


def test_epsv_all(server, payload):
    (server.root / "f.bin").write_bytes(payload[:5000])
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("EPSV ALL").startswith("200")
    for cmd in ("PASV", "PORT 127,0,0,1,200,1", "EPRT |1|127.0.0.1|51201|"):
        with pytest.raises(ftplib.error_perm, match="^501"):
            ftp.sendcmd(cmd)
    host, port = ftplib.parse229(ftp.sendcmd("EPSV"), ftp.sock.getpeername())
    with socket.create_connection((host, port), timeout=DEADLINE) as conn:
        assert ftp.sendcmd("RETR f.bin").startswith("150")
        assert read_all(conn) == payload[:5000]
    assert ftp.voidresp().startswith("226")
    ftp.quit()


def test_acct_allo_smnt(server):
    ftp = server.ftp()
    assert ftp.sendcmd("ACCT billing").startswith("202")
    assert ftp.sendcmd("ALLO 1000").startswith("202")
    with pytest.raises(ftplib.error_perm, match="^502"):
        ftp.sendcmd("SMNT /mnt")
    ftp.quit()


def test_rein(server):
    ftp = server.ftp()
    ftp.cwd("/")
    assert ftp.sendcmd("REIN").startswith("220")
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp.pwd()
    ftp.login("user", "pw")
    assert ftp.pwd() == "/"
    assert ftp.nlst() == []
    ftp.quit()


def test_x_variants(server):
    ftp = server.ftp()
    assert ftp.sendcmd("XMKD xd").startswith("257")
    assert (server.root / "xd").is_dir()
    assert ftp.sendcmd("XCWD xd").startswith("250")
    assert ftp.sendcmd("XPWD").startswith('257 "/xd"')
    assert ftp.sendcmd("XCUP").startswith("250")
    assert ftp.sendcmd("XPWD").startswith('257 "/"')
    assert ftp.sendcmd("XRMD xd").startswith("250")
    assert not (server.root / "xd").exists()
    ftp.quit()


def test_mkd_with_quote_in_name(server):
    ftp = server.ftp()
    assert ftp.sendcmd('MKD a"b') == '257 "/a""b" directory created.'
    assert (server.root / 'a"b').is_dir()
    assert ftp.mkd('c"d') == '/c"d'  # ftplib undoes the quote doubling
    ftp.quit()


# -- TYPE A ------------------------------------------------------------------------------
def test_type_a_upload_and_download(server):
    ftp = server.ftp()
    ftp.voidcmd("TYPE A")
    # an ASCII upload: CRLF on the wire is stored as LF
    conn = ftp.transfercmd("STOR crlf.txt")
    conn.sendall(b"one\r\ntwo\r\n" * 5000 + b"end\r\n")
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert (server.root / "crlf.txt").read_bytes() == b"one\ntwo\n" * 5000 + b"end\n"
    # a client that sends bare LF in ASCII mode: stored with LF
    conn = ftp.transfercmd("STOR lf.txt")
    conn.sendall(b"a\nb\n")
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert (server.root / "lf.txt").read_bytes() == b"a\nb\n"
    # ftplib's storlines sends CRLF
    ftp.storlines("STOR lines.txt", io.BytesIO(b"x\ny\n"))
    assert (server.root / "lines.txt").read_bytes() == b"x\ny\n"
    # an ASCII download: LF on disk is CRLF on the wire, CRLF is not doubled
    (server.root / "unix.txt").write_bytes(b"l1\nl2\n" * 40000 + b"\r\nlast")
    ftp.voidcmd("TYPE A")
    conn = ftp.transfercmd("RETR unix.txt")
    wire = read_all(conn)
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert wire == b"l1\r\nl2\r\n" * 40000 + b"\r\nlast"
    # and the same file in binary is unchanged
    got = bytearray()
    ftp.retrbinary("RETR unix.txt", got.extend)
    assert bytes(got) == (server.root / "unix.txt").read_bytes()
    ftp.quit()


# -- LIST/NLST patterns and options -----------------------------------------------------
def test_list_nlst_patterns_and_options(server):
    for name in ("a.txt", "b.txt", "c.bin", ".hidden.txt"):
        (server.root / name).write_bytes(name.encode())
    (server.root / "d").mkdir()
    (server.root / "d" / "x.txt").write_bytes(b"x")
    ftp = server.ftp()

    def lines(cmd: str) -> list[str]:
        out: list[str] = []
        ftp.retrlines(cmd, out.append)
        return out

    # names beginning with "." only with -a (or a pattern that begins with one), as ls
    assert sorted(lines("NLST *.txt")) == ["a.txt", "b.txt"]
    assert sorted(lines("NLST -a *.txt")) == [".hidden.txt", "a.txt", "b.txt"]
    assert lines("NLST .*") == [".hidden.txt"]
    assert sorted(lines("NLST ?.bin")) == ["c.bin"]
    listed = lines("LIST -a *.txt")
    assert sorted(line.rsplit(" ", 1)[1] for line in listed) == [".hidden.txt", "a.txt", "b.txt"]
    assert all(line.startswith("-rw") for line in listed)
    la = lines("LIST -la")
    assert sorted(line.rsplit(" ", 1)[1] for line in la) == sorted(
        [".hidden.txt", "a.txt", "b.txt", "c.bin", "d"])
    assert lines("LIST -la d") == lines("LIST d")
    assert lines("LIST -la d")[0].endswith(" x.txt")
    assert sorted(lines("NLST -a")) == sorted([*lines("NLST"), ".hidden.txt"])
    assert sorted(lines("LIST -l")) == sorted(lines("LIST"))  # other options: ignored
    assert lines("NLST d/*.txt") == ["d/x.txt"]  # the directory part kept, as ls does
    assert lines("NLST *.none") == []
    assert lines("LIST a.txt")[0].endswith(" a.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        lines("LIST missing")
    ftp.quit()

"""Session-level behaviour across commands: pipelining, event ordering, the
transport entry points, refusals, and the FTPS commands (AUTH, PBSZ, PROT, CCC)."""

from __future__ import annotations

from core_driver import codes, text

from ftpd.core import actions as A
from ftpd.core.replies import Reply


def test_pipelined_login(ftp):
    r = ftp.raw(b"USER alice\r\nPASS pw\r\nPWD\r\nSYST\r\n")
    assert codes(r) == [331, 230, 257, 215]


def test_pipelined_failed_login_waits(ftp):
    ftp.auto_resume = False
    r = ftp.raw(b"USER alice\r\nPASS nope\r\nUSER alice\r\nPASS pw\r\n")
    assert codes(r) == [331]
    assert ftp.waits == [1.0]
    ftp.resume()
    assert codes(ftp.replies[-3:]) == [530, 331, 230]


def test_pipelined_after_quit_ignored(ftp):
    r = ftp.raw(b"QUIT\r\nNOOP\r\n")
    assert codes(r) == [221]


def test_events_after_replies(alice):
    start = len(alice.log)
    alice.dialogue(["PASV", "RETR hello.txt"])
    out = alice.log[start:]
    i226 = next(i for i, x in enumerate(out) if isinstance(x, Reply) and x.code == 226)
    idl = next(i for i, x in enumerate(out) if isinstance(x, A.Emit) and x.name == "fs.download")
    assert i226 < idl


def test_login_event_after_230(ftp):
    ftp.dialogue(["USER alice", "PASS pw"])
    i230 = next(i for i, x in enumerate(ftp.log) if getattr(x, "code", 0) == 230)
    ilogin = next(i for i, x in enumerate(ftp.log)
                  if isinstance(x, A.Emit) and x.name == "session.login")
    assert i230 < ilogin
    ev = ftp.log[ilogin].data
    assert ev.session.user == "alice" and ev.session.host == "127.0.0.1"


def test_logout_event_counts(alice):
    alice.retr("hello.txt")
    alice.stor("new", b"12345")
    alice.send("QUIT")
    ev = [e for e in alice.events if e.name == "session.logout"][-1].data
    assert (ev.files_down, ev.bytes_down, ev.files_up, ev.bytes_up) == (1, 12, 1, 5)
    assert ev.reason == "QUIT"


def test_refuse(make):
    d = make()
    out = d.session.refuse("Too many connections.")
    assert [type(x) for x in out] == [Reply, A.Close]
    assert out[0].code == 421
    assert d.session.receive(b"NOOP\r\n") == []


def test_answers_ignored_when_not_waiting(alice):
    assert not alice.session.expecting
    assert alice.session.answer(1) == []
    assert alice.session.answer(None) == []
    assert alice.session.fail(OSError(5, "Input/output error")) == []
    assert codes(alice.send("NOOP")) == [200]


def test_pasv_replaces_previous_data_setup(alice):
    alice.send("PORT 127,0,0,1,200,10")
    start = len(alice.log)
    alice.send("PASV")
    assert any(isinstance(x, A.CloseData) for x in alice.log[start:])
    assert type(alice.session.data_mode) is A.Passive
    assert alice.session.data_mode  # a mode is set, though Passive has no fields


# -- FTPS commands ------------------------------------------------------------------------------
def test_auth_without_tls_configured(ftp):
    assert codes(ftp.send("AUTH TLS")) == [502]
    feats = ftp.send("FEAT")[0].lines
    assert not any(f.startswith(("AUTH", "PBSZ", "PROT")) for f in feats)


def test_auth_tls(make):
    d = make(tls_available=True, tls_mode="explicit")
    feats = d.send("FEAT")[0].lines
    assert "AUTH TLS" in feats and "PBSZ" in feats and "PROT" in feats
    assert codes(d.send("PBSZ 0")) == [503]
    assert codes(d.send("PROT P")) == [503]
    assert codes(d.send("AUTH KERBEROS")) == [504]
    start = len(d.log)
    r = d.send("AUTH TLS")
    assert codes(r) == [234]
    out = d.log[start:]
    assert isinstance(out[0], Reply) and isinstance(out[1], A.StartTLS)
    d.process(d.session.answer())
    assert codes(d.send("AUTH TLS")) == [503]
    assert codes(d.send("PBSZ x")) == [501]
    assert codes(d.send("PBSZ 0")) == [200]
    assert codes(d.send("PROT S")) == [536]
    assert codes(d.send("PROT Q")) == [504]
    assert codes(d.send("PROT P")) == [200]
    assert codes(d.send("CCC")) == [534]
    d.login()
    assert codes(d.send("AUTH TLS")) == [503]
    d.send("TYPE I")
    d.send("PASV")
    d.send("RETR hello.txt")
    t = [x for x in d.log if isinstance(x, A.StartTransfer)][-1].transfer
    assert t.tls is True and t.kind is A.Kind.DOWNLOAD and t.path == "/hello.txt"


def test_ccc_without_tls(make):
    d = make(tls_available=True)
    assert codes(d.send("CCC")) == [533]


def test_tls_required(make):
    d = make(tls_available=True, tls_mode="required")
    r = d.send("USER alice")
    assert codes(r) == [530] and "TLS" in text(r[0])
    assert codes(d.dialogue(["USER anonymous", "PASS x"])) == [331, 230]  # anonymous may
    d2 = make(tls_available=True, tls_mode="required")
    d2.send("AUTH TLS")
    d2.process(d2.session.answer())
    assert codes(d2.dialogue(["USER alice", "PASS pw"])) == [331, 230]
    d2.send("PASV")
    assert codes(d2.send("RETR hello.txt")) == [521]  # data must be protected
    for line in ["STOR x", "APPE x", "LIST", "NLST", "MLSD"]:
        assert codes(d2.send(line)) == [521], line
    d2.send("PBSZ 0")
    assert codes(d2.send("PROT C")) == [534]
    assert codes(d2.send("PROT P")) == [200]
    d2.send("PASV")
    assert codes(d2.send("RETR hello.txt")) == [150, 226]


def test_tls_required_for_anonymous_too(make):
    d = make(tls_available=True, tls_mode="required", tls_anonymous=True)
    assert codes(d.send("USER anonymous")) == [530]


def test_implicit_tls_session(make):
    d = make(tls_available=True, implicit_tls=True)
    assert d.session.tls_active and d.session.prot == "P"
    assert codes(d.send("AUTH TLS")) == [503]
    assert codes(d.send("PROT P")) == [200]


def test_cleartext_pipelined_after_auth_tls_is_dropped():
    """STARTTLS command injection (CVE-2011-0411 class): what follows AUTH TLS in the
    clear, in the same read or queued behind a busy command, never runs."""
    from ftpd.core import actions as A
    from ftpd.core.session import Session, SessionConfig

    session = Session(SessionConfig(tls_available=True), ("127.0.0.1", 1), ("127.0.0.1", 2))
    session.start()
    out = session.receive(b"AUTH TLS\r\nUSER alice\r\nPASS pw\r\n")
    replies = [o for o in out if not isinstance(o, A.Emit)]
    assert [getattr(r, "code", None) for r in replies] == [234, None]
    assert isinstance(replies[1], A.StartTLS)
    assert [o for o in session.answer() if not isinstance(o, A.Emit)] == []
    assert session.username is None

"""USER, PASS, ACCT, REIN, QUIT: logging in and out, the failed-login delay and the
attempt limit, and what an unauthenticated or read-only session may do."""

from __future__ import annotations

from core_driver import Driver, codes, shared_config, text

from ftpd.core import actions as A
from ftpd.core.session import SessionConfig
from ftpd.core.throttle import LoginThrottle


def test_greeting(ftp):
    assert codes(ftp.replies) == [220]
    assert ftp.event_names() == ["session.connect"]


def test_anonymous_login(ftp):
    r = ftp.dialogue(["USER anonymous", "PASS guest@example.com"])
    assert codes(r) == [331, 230]
    assert ftp.session.anonymous
    assert ftp.session.account.email == "guest@example.com"
    assert "session.login" in ftp.event_names()


def test_ftp_is_anonymous_too(ftp):
    assert codes(ftp.dialogue(["USER ftp", "PASS x"])) == [331, 230]
    assert ftp.session.anonymous


def test_named_login(ftp):
    r = ftp.dialogue(["USER alice", "PASS pw"])
    assert codes(r) == [331, 230]
    assert not ftp.session.anonymous
    assert ftp.session.account.username == "alice"


def test_user_always_gets_331_even_for_unknown_user(ftp):
    assert codes(ftp.send("USER nobody")) == [331]


def test_pass_without_user(ftp):
    assert codes(ftp.send("PASS pw")) == [503]


def test_user_after_login_refused(alice):
    """RFC 959 5.4 lists no 503 for USER: 530; PASS may answer 503."""
    assert codes(alice.send("USER bob")) == [530]
    assert "REIN" in text(alice.replies[-1])
    assert codes(alice.send("PASS x")) == [503]
    assert alice.session.account.username == "alice"
    assert alice.session.bad_commands == 1  # the 530 is no bad command; the 503 is


def test_wrong_password_waits_then_530(ftp):
    r = ftp.dialogue(["USER alice", "PASS wrong"])
    assert codes(r) == [331, 530]
    assert ftp.waits == [1.0]
    # the reply comes only after the Wait
    wait_at = next(i for i, x in enumerate(ftp.log) if isinstance(x, A.Wait))
    reply_at = next(i for i, x in enumerate(ftp.log) if getattr(x, "code", 0) == 530)
    assert wait_at < reply_at
    assert "session.login-failed" in ftp.event_names()
    assert ftp.session.account is None
    assert ftp.closed is None


def test_commands_wait_behind_the_login_delay(ftp):
    ftp.auto_resume = False
    ftp.send("USER alice")
    r = ftp.raw(b"PASS wrong\r\nNOOP\r\n")
    assert r == []  # nothing until the delay has elapsed
    ftp.clock.advance(ftp.waits[-1])
    ftp.resume()
    assert codes(ftp.replies[-2:]) == [530, 200]


def test_failed_login_delay_doubles_and_is_capped(clock, memfs):
    cfg = shared_config(memfs, clock, max_login_attempts=10)
    d = Driver(config=cfg)
    for _ in range(6):
        assert codes(d.dialogue(["USER alice", "PASS wrong"])) == [331, 530]
    assert d.waits == [1, 2, 4, 8, 8, 8]


def test_delay_is_per_address_and_shared_between_sessions(clock, memfs):
    cfg = shared_config(memfs, clock, throttle=LoginThrottle())
    d1 = Driver(config=cfg)
    d1.dialogue(["USER alice", "PASS bad", "USER alice", "PASS bad"])
    d2 = Driver(config=cfg)
    d2.dialogue(["USER alice", "PASS bad"])
    assert d1.waits + d2.waits == [1, 2, 4]
    d3 = Driver(config=cfg, peer=("10.0.0.9", 1234))
    d3.dialogue(["USER alice", "PASS bad"])
    assert d3.waits == [1]


def test_delay_forgotten_after_quiet_period_and_after_success(clock, memfs):
    cfg = shared_config(memfs, clock, max_login_attempts=10)
    d = Driver(config=cfg)
    d.dialogue(["USER alice", "PASS bad", "USER alice", "PASS bad"])
    clock.advance(601)
    d.dialogue(["USER alice", "PASS bad"])
    assert d.waits == [1, 2, 1]
    d.dialogue(["USER alice", "PASS pw"])
    d2 = Driver(config=cfg)
    d2.dialogue(["USER alice", "PASS bad"])
    assert d2.waits == [1]


def test_only_the_same_name_logging_in_forgets_the_delay(clock, memfs):
    """Failures for alice, then an anonymous login from the same address: the delay
    goes on growing; alice's own success forgets it."""
    cfg = shared_config(memfs, clock, max_login_attempts=10)
    d = Driver(config=cfg)
    d.dialogue(["USER alice", "PASS bad", "USER alice", "PASS bad"])
    Driver(config=cfg).login("anonymous", "guest@example.com")
    d.dialogue(["USER alice", "PASS bad"])
    assert d.waits == [1, 2, 4]
    Driver(config=cfg).login("alice", "pw")
    d.dialogue(["USER alice", "PASS bad"])
    assert d.waits == [1, 2, 4, 1]


def test_max_login_attempts_closes_session(ftp):
    r = ftp.dialogue(["USER alice", "PASS a", "USER alice", "PASS b", "USER alice", "PASS c"])
    assert codes(r) == [331, 530, 331, 530, 331, 530]
    assert ftp.closed is not None
    assert isinstance(ftp.log[-1], A.Close)
    # the Close comes after the last 530
    last_530 = max(i for i, x in enumerate(ftp.log) if getattr(x, "code", 0) == 530)
    assert last_530 < ftp.log.index(ftp.closed)
    # and nothing more is processed
    assert ftp.send("NOOP") == []


def test_max_login_attempts_configurable(make):
    d = make(max_login_attempts=1)
    d.dialogue(["USER alice", "PASS wrong"])
    assert d.closed is not None


def test_no_delay_when_base_delay_zero(make):
    d = make(throttle=LoginThrottle(base_delay=0))
    assert codes(d.dialogue(["USER alice", "PASS bad"])) == [331, 530]
    assert d.waits == []


def test_home_not_available_is_a_failed_login(clock):
    def broken(acc):
        raise FileNotFoundError(2, "No such file or directory")

    d = Driver(config=SessionConfig(clock=clock, fs_factory=broken))
    r = d.dialogue(["USER alice", "PASS pw"])
    assert codes(r) == [331, 530]
    assert "Home directory" in text(r[-1])
    assert d.session.account is None


def test_acct(ftp):
    assert codes(ftp.send("ACCT foo")) == [202]
    assert codes(ftp.send("ACCT")) == [501]


def test_rein_logs_out_and_keeps_connection(alice):
    alice.send("CWD /pub")
    r = alice.send("REIN")
    assert codes(r) == [220]
    assert alice.session.account is None
    assert alice.session.cwd == "/"
    assert alice.session.type == "A"
    assert "session.logout" in alice.event_names()
    assert alice.closed is None
    assert codes(alice.send("PWD")) == [530]
    alice.login("anonymous", "x")
    assert alice.session.anonymous


def test_rein_before_login(ftp):
    assert codes(ftp.send("REIN")) == [220]


def test_quit(alice):
    r = alice.send("QUIT")
    assert codes(r) == [221]
    assert alice.closed is not None and alice.closed.reason == "QUIT"
    names = alice.event_names()
    assert names[-1] == "session.logout"
    assert isinstance(alice.log[-1], A.Close)
    assert alice.send("NOOP") == []


def test_quit_before_login(ftp):
    assert codes(ftp.send("QUIT")) == [221]
    assert ftp.closed is not None
    assert "session.logout" not in ftp.event_names()


def test_quit_takes_no_argument(ftp):
    assert codes(ftp.send("QUIT now")) == [501]
    assert ftp.closed is None


def test_login_required(ftp):
    for line in ["PWD", "CWD /pub", "LIST", "RETR hello.txt", "STOR x", "MKD d", "DELE x",
                 "PASV", "EPSV", "PORT 127,0,0,1,200,1", "TYPE I", "SIZE hello.txt",
                 "MLST", "CDUP", "REST 0", "MODE S", "STRU F", "RNFR x", "SITE CHMOD 644 x"]:
        assert codes(ftp.send(line)) == [530], line


def test_commands_available_before_login(ftp):
    for line, code in [("SYST", 215), ("NOOP", 200), ("FEAT", 211), ("HELP", 214),
                       ("STAT", 211), ("OPTS UTF8 ON", 200), ("SITE HELP", 214),
                       ("ABOR", 225)]:
        assert codes(ftp.send(line)) == [code], line


def test_anonymous_is_read_only(anon, memfs):
    anon.upload = b"x"
    for line in ["STOR new.txt", "APPE hello.txt", "STOU", "DELE hello.txt", "MKD d",
                 "RMD empty", "RNFR hello.txt", "SITE CHMOD 600 hello.txt",
                 "MFMT 20200101000000 hello.txt"]:
        assert codes(anon.send(line)) == [550], line
    assert sorted(memfs.listdir("/")) == ["bin.dat", "empty", "hello.txt", "pub"]
    # but reading works
    assert anon.retr("hello.txt") == b"hello world\r\n"  # TYPE A by default
    assert "hello.txt" in anon.listing("NLST")


def test_writable_anonymous_can_write(make, memfs):
    d = make(writable=True)
    d.login("anonymous", "x")
    d.send("TYPE I")
    assert codes(d.stor("new.txt", b"data")) == [227, 150, 226]
    assert codes(d.send("MKD d")) == [257]
    assert codes(d.send("DELE new.txt")) == [250]
    assert codes(d.dialogue(["RNFR d", "RNTO e"])) == [350, 250]
    assert sorted(memfs.listdir("/")) == ["bin.dat", "e", "empty", "hello.txt", "pub"]

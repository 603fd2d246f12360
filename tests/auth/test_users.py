"""The users file: hashing, validation, the authorizer and atomic saving."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from ftpd.auth.base import Account, Authorizer
from ftpd.auth.users import (
    UserEntry,
    UsersFileAuthorizer,
    UsersFileError,
    hash_password,
    load_users,
    parse_users,
    save_users,
    verify_password,
)

# One real-cost hash shared by the module: scrypt at n=2**14 is ~50 ms a call.
ALICE_PW = "correct horse"
ALICE_HASH = hash_password(ALICE_PW)


def write(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def alice_toml(perm: str = "elr", extra: str = "") -> str:
    return (f'[users.alice]\npassword = "{ALICE_HASH}"\nhome = "/srv/ftp/alice"\n'
            f'perm = "{perm}"\n{extra}')


# ---------------------------------------------------------------- hashing


def test_hash_format_is_self_describing():
    scheme, n, r, p, salt, digest = ALICE_HASH.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert salt and digest
    assert ALICE_PW not in ALICE_HASH


def test_round_trip_and_wrong_password():
    assert verify_password(ALICE_PW, ALICE_HASH)
    assert not verify_password("correct horsE", ALICE_HASH)
    assert not verify_password("", ALICE_HASH)


def test_salt_is_random():
    a, b = hash_password("x", n=2**4), hash_password("x", n=2**4)
    assert a != b
    assert verify_password("x", a) and verify_password("x", b)


def test_other_parameters_still_verify():
    cheap = hash_password("pw", n=2**10, r=4, p=2)
    assert cheap.startswith("scrypt$1024$4$2$")
    assert verify_password("pw", cheap)
    assert not verify_password("pW", cheap)


def test_non_utf8_password_bytes_survive():
    # The control connection decodes with surrogateescape; b"\xff" arrives as "\udcff".
    pw = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert verify_password(pw, hash_password(pw, n=2**4))


@pytest.mark.parametrize("bad", [
    "", "plain", "scrypt$", "scrypt$16384$8$1$c2FsdA==", "md5$1$2$3$4$5",
    "scrypt$16384$8$1$!!notb64!!$AAAA", "scrypt$abc$8$1$c2FsdHNhbHQ=$" + "A" * 44,
    "scrypt$16383$8$1$c2FsdHNhbHQ=$" + "A" * 44,       # n not a power of two
    "scrypt$1099511627776$8$1$c2FsdHNhbHQ=$" + "A" * 44,  # absurd memory
    "scrypt$16384$8$1$c2FsdHNhbHQ=$QUFB",              # digest too short
    "scrypt$16384$8$1$$" + "A" * 44,                   # no salt
    "scrypt$-16$8$1$c2FsdHNhbHQ=$" + "A" * 44,
    None, 42,
])
def test_malformed_hash_is_false_never_raises(bad):
    assert verify_password("pw", bad) is False


def test_unencodable_password_is_false():
    assert verify_password("\ud800", ALICE_HASH) is False


# ---------------------------------------------------------------- loading


def test_load_users(tmp_path):
    path = write(tmp_path / "users.toml", alice_toml("elradfmwMTL"))
    users = load_users(path)
    assert users == {"alice": UserEntry(ALICE_HASH, "/srv/ftp/alice", "elradfmwMTL")}


def test_empty_file_has_no_users(tmp_path):
    assert load_users(write(tmp_path / "u.toml", "")) == {}
    assert load_users(write(tmp_path / "u.toml", "[users]\n")) == {}


@pytest.mark.parametrize("text, expected", [
    (alice_toml("elx"), "users.toml: users.alice.perm: unknown permission letter 'x'"),
    (alice_toml(extra='shell = "/bin/sh"\n'), "users.toml: users.alice.shell: unknown key"),
    ('[users.alice]\nhome = "/a"\nperm = "elr"\n', "users.toml: users.alice.password: missing"),
    (f'[users.alice]\npassword = "{ALICE_HASH}"\nperm = "elr"\n',
     "users.toml: users.alice.home: missing"),
    (f'[users.alice]\npassword = "{ALICE_HASH}"\nhome = "/a"\n',
     "users.toml: users.alice.perm: missing"),
    ('[users.alice]\npassword = "hunter2"\nhome = "/a"\nperm = "elr"\n',
     "users.toml: users.alice.password: must be an scrypt hash"),
    ('[users.alice]\npassword = "scrypt$zzz"\nhome = "/a"\nperm = "elr"\n',
     "users.toml: users.alice.password: malformed scrypt hash"),
    (f'[users.alice]\npassword = "{ALICE_HASH}"\nhome = 7\nperm = "elr"\n',
     "users.toml: users.alice.home: must be a string, not integer"),
    (f'[users.alice]\npassword = "{ALICE_HASH}"\nhome = "srv/a"\nperm = "elr"\n',
     "users.toml: users.alice.home: must be an absolute path"),
    (f'[users.alice]\npassword = "{ALICE_HASH}"\nhome = "/a"\nperm = ["e"]\n',
     "users.toml: users.alice.perm: must be a string, not array"),
    ("users = 3\n", "users.toml: users: must be a table"),
    ("[users]\nalice = 3\n", "users.toml: users.alice: must be a table"),
    ("[groups.x]\n", "users.toml: groups: unknown key"),
    ("[users.alice\n", "users.toml: "),
])
def test_validation_errors_name_file_user_and_key(tmp_path, text, expected):
    path = write(tmp_path / "users.toml", text)
    with pytest.raises(UsersFileError) as info:
        load_users(path)
    message = str(info.value)
    assert message.startswith(str(tmp_path / expected.split(": ", 1)[0]))
    assert expected.split(": ", 1)[1] in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_parse_users_names_where():
    with pytest.raises(UsersFileError, match=r"^users\.toml: users\.alice\.perm: unknown"):
        parse_users(alice_toml("elrq"), "users.toml")


def test_missing_file(tmp_path):
    with pytest.raises(UsersFileError, match="no such file"):
        load_users(tmp_path / "nope.toml")
    assert load_users(tmp_path / "nope.toml", missing_ok=True) == {}


def test_not_utf8(tmp_path):
    path = tmp_path / "u.toml"
    path.write_bytes(b'# \xff\n')
    with pytest.raises(UsersFileError, match="not UTF-8"):
        load_users(path)


# ---------------------------------------------------------------- the authorizer


def test_authorizer_success_and_failure(tmp_path):
    auth = UsersFileAuthorizer(write(tmp_path / "u.toml", alice_toml("elrw")))
    assert isinstance(auth, Authorizer)
    account = auth.authenticate("alice", ALICE_PW)
    assert account == Account("alice", "/srv/ftp/alice", "elrw")
    assert not account.anonymous
    assert auth.authenticate("alice", "wrong") is None
    assert auth.authenticate("Alice", ALICE_PW) is None  # names are exact
    assert auth.authenticate("bob", ALICE_PW) is None


def test_nonexistent_user_still_pays_for_a_hash(tmp_path, monkeypatch):
    import ftpd.auth.users as users_mod

    auth = UsersFileAuthorizer(write(tmp_path / "u.toml", alice_toml()))
    calls = []
    real = users_mod.verify_password
    monkeypatch.setattr(users_mod, "verify_password",
                        lambda pw, enc: calls.append(enc) or real(pw, enc))
    assert auth.authenticate("mallory", "x") is None
    assert calls == [users_mod._DUMMY_HASH]
    assert users_mod._parse_hash(users_mod._DUMMY_HASH) is not None


def test_construction_fails_on_bad_file(tmp_path):
    with pytest.raises(UsersFileError):
        UsersFileAuthorizer(write(tmp_path / "u.toml", alice_toml("elz")))


def test_reload_picks_up_changes(tmp_path):
    path = tmp_path / "u.toml"
    auth = UsersFileAuthorizer(write(path, alice_toml("elr")))
    bob_hash = hash_password("bobpw", n=2**4)
    write(path, alice_toml("elrw") +
          f'[users.bob]\npassword = "{bob_hash}"\nhome = "/b"\nperm = "e"\n')
    auth.reload()
    assert auth.authenticate("alice", ALICE_PW).perm == "elrw"
    assert auth.authenticate("bob", "bobpw") == Account("bob", "/b", "e")
    assert sorted(auth.users) == ["alice", "bob"]


@pytest.mark.parametrize("bad", ["[users.alice\n", alice_toml("elQ"), None])
def test_reload_with_bad_file_keeps_old_users(tmp_path, bad):
    path = tmp_path / "u.toml"
    auth = UsersFileAuthorizer(write(path, alice_toml()))
    if bad is None:
        path.unlink()
    else:
        write(path, bad)
    with pytest.raises(UsersFileError):
        auth.reload()
    assert auth.authenticate("alice", ALICE_PW) == Account("alice", "/srv/ftp/alice", "elr")


def test_concurrent_authenticate_during_reloads(tmp_path):
    path = tmp_path / "u.toml"
    auth = UsersFileAuthorizer(write(path, alice_toml()))
    results, stop = [], threading.Event()

    def login():
        while not stop.is_set():
            results.append(auth.authenticate("alice", ALICE_PW) is not None)

    threads = [threading.Thread(target=login) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(20):
        save_users(path, {"alice": UserEntry(ALICE_HASH, "/srv/ftp/alice", "elr" if i % 2 else "e")})
        auth.reload()
    stop.set()
    for t in threads:
        t.join()
    assert results and all(results)


# ---------------------------------------------------------------- saving


def test_save_round_trip_mode_and_no_leftovers(tmp_path):
    path = tmp_path / "u.toml"
    users = {"bob": UserEntry(hash_password("b", n=2**4), "/b", "elradfmwMT"),
             "alice": UserEntry(ALICE_HASH, "/srv/ftp/alice", "elr"),
             "with space": UserEntry(ALICE_HASH, "/w", "")}
    save_users(path, users)
    assert load_users(path) == users
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["u.toml"]


def test_save_replaces_keeping_owner_and_group_bits_only(tmp_path):
    """The hashes never become world-readable; what the owner and group may do stays."""
    path = tmp_path / "u.toml"
    path.write_text("")
    os.chmod(path, 0o644)
    save_users(path, {"alice": UserEntry(ALICE_HASH, "/a", "elr")})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert list(load_users(path)) == ["alice"]
    os.chmod(path, 0o600)
    save_users(path, {"bob": UserEntry(ALICE_HASH, "/b", "elr")})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_save_refuses_plain_password(tmp_path):
    path = tmp_path / "u.toml"
    with pytest.raises(ValueError, match="not an scrypt hash"):
        save_users(path, {"alice": UserEntry("hunter2", "/a", "elr")})
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_save_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "u.toml"
    save_users(path, {"alice": UserEntry(ALICE_HASH, "/a", "elr")})
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_users(path, {"bob": UserEntry(ALICE_HASH, "/b", "elr")})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["u.toml"]


# ---------------------------------------------------------------- limits


def test_limits_are_read_as_sizes_and_reach_the_account(tmp_path):
    path = write(tmp_path / "u.toml", alice_toml(
        extra='max-rate = "1M"\nmax-sessions = 2\nquota = "10G"\n'))
    entry = load_users(path)["alice"]
    assert (entry.max_rate, entry.max_sessions, entry.quota) == (1 << 20, 2, 10 << 30)
    account = UsersFileAuthorizer(path).authenticate("alice", ALICE_PW)
    assert (account.max_rate, account.max_sessions, account.quota) == (1 << 20, 2, 10 << 30)
    assert load_users(write(tmp_path / "v.toml", alice_toml(
        extra="max-rate = 4096\nquota = 512\n")))["alice"].limits() == {"max-rate": 4096,
                                                                         "quota": 512}


def test_no_limits_means_the_servers_rate_and_none_else(tmp_path):
    account = UsersFileAuthorizer(write(tmp_path / "u.toml", alice_toml())).authenticate(
        "alice", ALICE_PW)
    assert (account.max_rate, account.max_sessions, account.quota) == (None, 0, 0)


def test_limits_survive_a_save(tmp_path):
    path = write(tmp_path / "u.toml", alice_toml(
        extra='max-rate = "512K"\nmax-sessions = 3\nquota = 1000\n'))
    users = load_users(path)
    save_users(path, users)
    text = (tmp_path / "u.toml").read_text()
    assert 'max-rate = "512K"' in text and "max-sessions = 3" in text and "quota = 1000" in text
    assert load_users(path) == users


@pytest.mark.parametrize("extra, expected", [
    ('max-rate = "fast"\n', "users.alice.max-rate: expected a size like 1M"),
    ("max-rate = -1\n", "users.alice.max-rate: must not be negative"),
    ('quota = "1.5G"\n', "users.alice.quota: expected a size like 1M"),
    ("quota = 0\n", "users.alice.quota: must be at least 1"),
    ("quota = true\n", "users.alice.quota: expected a size"),
    ('max-sessions = "2"\n', "users.alice.max-sessions: must be an integer, not string"),
    ("max-sessions = 0\n", "users.alice.max-sessions: must be at least 1"),
])
def test_a_bad_limit_names_the_user_and_the_key(tmp_path, extra, expected):
    path = write(tmp_path / "u.toml", alice_toml(extra=extra))
    with pytest.raises(UsersFileError) as info:
        load_users(path)
    assert expected in str(info.value) and str(info.value).startswith(path)


def test_a_bad_limit_on_reload_keeps_the_old_users(tmp_path):
    path = tmp_path / "u.toml"
    auth = UsersFileAuthorizer(write(path, alice_toml(extra="max-sessions = 2\n")))
    write(path, alice_toml(extra="max-sessions = -2\n"))
    with pytest.raises(UsersFileError, match="max-sessions"):
        auth.reload()
    assert auth.authenticate("alice", ALICE_PW).max_sessions == 2

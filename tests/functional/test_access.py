"""--allow / --deny: the most specific network wins (--deny at equal length); with any
--allow, an address no rule names is refused. A refused client gets 421 and is closed
before anything else (no 220, before the connection caps), with one log line."""

from __future__ import annotations

import os
import re
import signal
import socket

import pytest
from ftpsupport import (
    DEADLINE,
    FtpdProcess,
    RawControl,
    can_bind,
    has_ipv6_loopback,
    listens,
    netloc,
    read_text,
    start_ftpd,
    wait_until,
)

from ftpd import config
from ftpd.access import AccessRules, parse_network

N = parse_network


@pytest.mark.parametrize(("allow", "deny", "host", "permitted"), [
    ([], [], "192.0.2.1", True),  # no rule: everyone
    ([], ["192.0.2.0/24"], "192.0.2.1", False),
    ([], ["192.0.2.0/24"], "198.51.100.1", True),  # only denies: the rest may connect
    (["192.0.2.0/24"], [], "192.0.2.1", True),
    (["192.0.2.0/24"], [], "198.51.100.1", False),  # any allow: the rest is refused
    (["10.0.0.0/8"], ["10.1.2.3"], "10.1.2.3", False),  # the deny is more specific
    (["10.0.0.0/8"], ["10.1.2.3"], "10.1.2.4", True),
    (["10.1.0.0/16"], ["10.0.0.0/8"], "10.1.2.3", True),  # the allow is more specific
    (["10.1.0.0/16"], ["10.0.0.0/8"], "10.2.0.1", False),
    (["10.0.0.0/8"], ["10.0.0.0/8"], "10.0.0.1", False),  # equal length: deny wins
    (["0.0.0.0/0"], ["0.0.0.0/0"], "10.0.0.1", False),
    ([], ["2001:db8::/32"], "2001:db8::1", False),
    ([], ["2001:db8::/32"], "2001:db9::1", True),
    (["::1"], [], "::1", True),
    (["::1"], [], "127.0.0.1", False),
    ([], ["192.0.2.0/24"], "::ffff:192.0.2.9", False),  # a mapped client is IPv4
    ([], ["::ffff:192.0.2.0/120"], "192.0.2.9", False),  # a mapped rule is IPv4
    ([], ["0.0.0.0/0"], "2001:db8::1", True),  # an IPv4 rule never names IPv6
    (["fe80::/10"], [], "fe80::1%eth0", True),  # a scope id is not part of the address
])
def test_the_rule(allow, deny, host, permitted):
    rules = AccessRules([N(a) for a in allow], [N(d) for d in deny])
    assert rules.permits(host) is permitted


def test_host_bits_are_ignored_and_mapped_rules_become_ipv4():
    assert str(N("10.1.2.3/8")) == "10.0.0.0/8"
    assert str(N("::ffff:10.0.0.0/104")) == "10.0.0.0/8"
    assert str(N("192.0.2.7")) == "192.0.2.7/32"


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "example.com", "", "1.2.3"])
def test_a_bad_network_is_a_config_error_naming_the_option(bad):
    with pytest.raises(config.ConfigError, match="^--deny: expected an address"):
        config.resolve({"deny": (bad,)})


def test_toml_takes_a_list(tmp_path):
    conf = tmp_path / "ftpd.toml"
    conf.write_text('allow = ["127.0.0.1", "::1"]\ndeny = "0.0.0.0/0"\n')
    settings = config.resolve({"config": str(conf)})
    assert [str(n) for n in settings.allow] == ["127.0.0.1/32", "::1/128"]
    assert [str(n) for n in settings.deny] == ["0.0.0.0/0"]


@pytest.fixture
def access_server(tmp_path):
    """Factory: ftpd on a free port of *host* with *args*, waited for without connecting
    (a probe from a denied address would be refused, and reset by its own QUIT)."""
    servers: list[FtpdProcess] = []

    def start(*args: str, host: str = "127.0.0.1") -> FtpdProcess:
        def spawn(ports: list[int], attempt: int) -> FtpdProcess:
            argv = ["-l", netloc(host, ports[0]), "-r", str(tmp_path), *args]
            return FtpdProcess(argv, host=host, port=ports[0],
                               log_path=tmp_path / f"stderr-{ports[0]}-{attempt}.log")

        server = start_ftpd(spawn, host=host, probe=listens)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.stop() == 0, server.log()
        assert "Traceback" not in server.log()


def connect_from(source: str, server) -> RawControl:
    """A raw control connection from the loopback address *source* (unread)."""
    sock = socket.create_connection((server.host, server.port), timeout=DEADLINE,
                                    source_address=(source, 0))
    ctl = RawControl.__new__(RawControl)
    ctl.host = server.host
    ctl.attach(sock)
    return ctl


def first_reply(source: str, server) -> int:
    """The first reply to a client from *source*; a 421 must be followed by the close."""
    with connect_from(source, server) as ctl:
        code, text = ctl.reply()
        if code == 421:
            assert ctl.wait_closed(), "421 but the connection stayed open"
        return code


def refusals(log) -> list[str]:
    return re.findall(r"INFO \[\S+\] (REFUSED .*)", read_text(log))


@pytest.fixture
def two_sources():
    if not can_bind("127.0.0.2"):
        pytest.skip("no 127.0.0.2 loopback address here")


def test_a_denied_client_gets_421_and_one_log_line(access_server, tmp_path):
    log = tmp_path / "ftpd.log"
    server = access_server("--log", str(log), "--deny", "127.0.0.1")
    assert first_reply("127.0.0.1", server) == 421
    wait_until(lambda: refusals(log), "the REFUSED line")
    assert refusals(log) == ["REFUSED from=127.0.0.1 reason=deny"]
    assert " CONNECT " not in read_text(log) and " DISCONNECT " not in read_text(log)


def test_deny_comes_before_the_caps(access_server, tmp_path, two_sources):
    log = tmp_path / "ftpd.log"
    server = access_server("--log", str(log), "--deny", "127.0.0.2", "--max-connections", "1")
    with connect_from("127.0.0.1", server) as held:
        assert held.reply()[0] == 220  # the one connection allowed
        assert first_reply("127.0.0.2", server) == 421
        assert first_reply("127.0.0.1", server) == 421
        reasons = wait_until(lambda: len(refusals(log)) == 2 and refusals(log),
                             "two REFUSED lines")
    assert reasons == ["REFUSED from=127.0.0.2 reason=deny",
                       "REFUSED from=127.0.0.1 reason=max-connections"]


def test_with_an_allow_everyone_else_is_refused(access_server, two_sources):
    server = access_server("--allow", "127.0.0.2")
    assert first_reply("127.0.0.2", server) == 220
    assert first_reply("127.0.0.1", server) == 421


def test_the_more_specific_allow_wins(access_server, two_sources):
    server = access_server("--deny", "127.0.0.0/8", "--allow", "127.0.0.2")
    assert first_reply("127.0.0.2", server) == 220
    assert first_reply("127.0.0.1", server) == 421


def test_the_more_specific_deny_wins(access_server, two_sources):
    server = access_server("--allow", "127.0.0.0/8", "--deny", "127.0.0.2/32")
    assert first_reply("127.0.0.1", server) == 220
    assert first_reply("127.0.0.2", server) == 421


def test_ipv6_deny(access_server):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = access_server("--deny", "::1", host="::1")
    assert first_reply("::1", server) == 421


def test_reload_applies_new_rules(access_server, tmp_path):
    conf = tmp_path / "ftpd.toml"
    conf.write_text('deny = ["127.0.0.1"]\n')
    server = access_server("-c", str(conf))
    assert first_reply("127.0.0.1", server) == 421
    conf.write_text("deny = []\n")
    os.kill(server.pid, signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in server.log(), "the reload")
    assert first_reply("127.0.0.1", server) == 220

"""Under inetd no-wait (-I) the one connection gets the same --allow/--deny check and
the same banner options; a missing --banner-file is a config error there too (421 to
the client, exit 2)."""

from __future__ import annotations

from lhelpers import Control, connected_pair, wait_exit


def test_a_denied_inetd_client_gets_421_and_the_process_exits(ftpd, served, inetd_spawn,
                                                              tmp_path):
    log = tmp_path / "ftpd.log"
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-r", str(served), "--log", str(log),
                        "--deny", "127.0.0.0/8"], server_side)
    ctl = Control(client)
    assert ctl.read_to_eof() == b"421 Service not available for your address.\r\n"
    assert wait_exit(proc) == 0
    refused = [line for line in log.read_text().splitlines() if " INFO " in line]
    assert len(refused) == 1 and refused[0].endswith("REFUSED from=127.0.0.1 reason=deny")


def test_an_allowed_inetd_client_gets_the_banner(ftpd, served, inetd_spawn, tmp_path):
    banner = tmp_path / "banner"
    banner.write_text("Hello.\nInetd here.\n")
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-r", str(served), "--allow", "127.0.0.1",
                        "--banner-file", str(banner)], server_side)
    ctl = Control(client)
    assert ctl.reply() == (220, "Hello.\nInetd here.")
    ctl.expect("QUIT", 221)
    assert wait_exit(proc) == 0


def test_a_missing_banner_file_under_inetd_is_421_and_exit_2(ftpd, served, inetd_spawn,
                                                             tmp_path):
    log = tmp_path / "ftpd.log"
    client, server_side = connected_pair()
    proc = inetd_spawn([ftpd, "-I", "-r", str(served), "--log", str(log),
                        "--banner-file", str(tmp_path / "missing")], server_side)
    assert Control(client).read_to_eof() == b"421 Service not available\r\n"
    assert wait_exit(proc) == 2
    assert "--banner-file" in log.read_text() and "No such file" in log.read_text()

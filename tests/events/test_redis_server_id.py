"""``--server-id`` in session ids (SPEC §9): still the 12 characters of EVENTS.md, with the
pid field xored with 16 bits of the server id as ftpd-eventd(8) documents (re-implemented
here by ``pid_field``), so that hosts whose processes share pids (containers: pid 1) do
not share ids, while processes of one host still never do."""

from __future__ import annotations

import base64
import struct

from ftpd.config import resolve
from ftpd.core.ids import server_key, session_id
from ftpd.io.server import ServerOptions

from .test_server_events import pid_field

T = 1_764_079_260


def fields(sid: str) -> tuple[int, int, int, int]:
    raw = base64.b64decode(sid, validate=True)
    assert len(sid) == 12 and len(raw) == 9
    return struct.unpack(">IHHB", raw)


def test_the_shape_stays_ncftpds():
    sid = session_id(T, 1, 7, server_key("web-1"))
    start, pid, counter, zero = fields(sid)
    assert (start, counter, zero) == (T, 7, 0)
    assert pid == pid_field(1, "web-1")
    assert sid.endswith("A")


def test_pid_1_on_different_hosts_gives_different_ids():
    names = [f"node-{i}" for i in range(50)] + ["web-1", "web-2", "a", "b"]
    ids = {session_id(T, 1, 1, server_key(name)) for name in names}
    assert len(ids) == len(names)


def test_one_host_never_gives_two_pids_the_same_field():
    key = server_key("web-1")
    assert len({session_id(T, pid, 1, key) for pid in range(1 << 16)}) == 1 << 16


def test_without_a_server_id_key_the_pid_field_is_the_pid():
    assert fields(session_id(T, 1234, 7))[1] == 1234


def test_server_id_defaults_to_the_host_name(tmp_path):
    import os

    assert resolve({}, str(tmp_path)).server_id == os.uname().nodename
    assert resolve({"server_id": "web-7"}, str(tmp_path)).server_id == "web-7"
    assert ServerOptions().server_id == os.uname().nodename


def test_server_id_in_the_config_file(tmp_path):
    config = tmp_path / "ftpd.toml"
    config.write_text('server-id = "from-file"\n')
    assert resolve({"config": str(config)}, str(tmp_path)).server_id == "from-file"

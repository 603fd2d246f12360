"""``--workers`` in one process: the shared seat table (``ftpd.io.seats.SharedSeats``):
caps over every worker's region, the address table under collisions (every key hashed
to one home: removal must keep the others findable), a dead worker's region cleared, a
forked process's counts seen by its parent, the busier worker's bounded pass; and the
supervisor's restart back-off."""

from __future__ import annotations

import os

import pytest

from ftpd.io.seats import Seats, SharedSeats, address_key


@pytest.fixture
def seats():
    return SharedSeats(workers=3, max_connections=8)


def test_caps_count_every_region(seats):
    seats.bind(0)
    assert seats.take("10.0.0.1", 3, 2) is None
    seats.bind(1)
    assert seats.take("10.0.0.1", 3, 2) is None
    assert seats.take("10.0.0.1", 3, 2) == "max-connections-per-ip"  # counted all the same
    assert seats.total == 3 and seats.count_of("10.0.0.1") == 3
    seats.bind(2)
    assert seats.take("10.0.0.2", 3, 2) == "max-connections"
    seats.release("10.0.0.2")
    seats.bind(1)
    seats.release("10.0.0.1")
    assert seats.take("10.0.0.2", 4, 2) is None
    assert seats.count_of("10.0.0.1") == 2 and seats.count_of("10.0.0.2") == 1


def test_the_local_seats_answer_alike():
    local = Seats()
    assert local.take("10.0.0.1", 3, 2) is None
    assert local.take("10.0.0.1", 3, 2) is None
    assert local.take("10.0.0.1", 3, 2) == "max-connections-per-ip"
    assert local.take("10.0.0.2", 3, 2) == "max-connections"
    for host in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"):
        local.release(host)
    assert local.total == 0 and not local.per_ip


def test_removal_keeps_colliding_addresses_findable(seats, monkeypatch):
    monkeypatch.setattr(seats, "_home", lambda key: seats.slots - 2)  # one probe run, wrapping
    seats.bind(0)
    hosts = [f"192.0.2.{i}" for i in range(6)]
    for host in hosts:
        assert seats.take(host, 100, 0) is None
    seats.take(hosts[3], 100, 0)
    for gone in (hosts[0], hosts[4], hosts[1]):
        seats.release(gone)
        assert seats.count_of(gone) == 0
    assert [seats.count_of(h) for h in hosts] == [0, 0, 1, 2, 0, 1]
    for host in (hosts[2], hosts[3], hosts[3], hosts[5]):
        seats.release(host)
    assert seats.total == 0
    assert all(seats._entry_at(0, slot)[1] == 0 for slot in range(seats.slots))


def test_a_dead_workers_region_is_cleared(seats):
    seats.bind(1)
    seats.take("::1", 10, 0)
    seats.take("::ffff:10.0.0.9", 10, 0)
    before = seats.idle_since()
    seats.clear(1)
    assert seats.total == 0 and seats.count_of("::1") == 0
    assert seats.idle_since() >= before


def test_a_forked_worker_counts_in_the_parents_view(seats):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            seats.bind(2)
            seats.take("198.51.100.7", 10, 0)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seats.total == 1 and seats.count_of("198.51.100.7") == 1
    assert seats.snapshot()[0] == 1


def test_address_keys():
    assert address_key("127.0.0.1") == bytes(10) + b"\xff\xff\x7f\0\0\1"
    assert len(address_key("2001:db8::1")) == 16
    assert len(address_key("not an address")) == 16
    assert address_key("a") != address_key("b")


def test_the_busier_worker_leaves_connections_to_the_others(seats):
    seats.bind(0)
    seats.take("10.0.0.1", 10, 0)
    assert not seats.my_turn()
    seats.bind(1)
    assert seats.my_turn()
    seats.take("10.0.0.2", 10, 0)
    assert not seats.my_turn()  # worker 2 has none yet
    seats.bind(2)
    seats.take("10.0.0.3", 10, 0)
    assert seats.my_turn()  # as busy as the others: everyone's turn


class NeverMyTurn(Seats):
    """A worker that always sees a less busy one (which never comes for the client)."""

    asked = 0

    def my_turn(self) -> bool:
        self.asked += 1
        return False


def test_a_busier_worker_passes_a_bounded_number_of_times():
    """The others may be stuck or restarting: after PASSES wake-ups it accepts itself."""
    from lhelpers import Control

    from ftpd.embed import FTPServer
    from ftpd.fs.memory import MemoryFS
    from ftpd.io.server import PASSES

    seats = NeverMyTurn()
    with FTPServer(MemoryFS()) as server:
        server.server.seats = seats
        ctl = Control.connect("127.0.0.1", server.port)
        assert ctl.reply()[0] == 220
        ctl.expect("QUIT", 221)
        ctl.close()
    assert seats.asked == PASSES + 1


def test_restarts_back_off_and_end(monkeypatch):
    """A worker that keeps dying is restarted after 0.1 s, doubling, until it died
    MAX_DEATHS times within the window; with no worker left the supervisor stops, 1."""
    from ftpd.config import Settings
    from ftpd.launch import workers
    from ftpd.launch.context import LaunchContext

    settings = Settings(workers=2, max_connections=8, idle_timeout=0.0, shutdown_timeout=60.0)
    sup = workers.Supervisor(settings, LaunchContext("standalone"), lambda *a: 0, dict)
    try:
        sup.starting = False
        other = sup.slots[1]
        other.pid = 0  # gone already, for good
        slot = sup.slots[0]
        delays = []
        for death in range(workers.MAX_DEATHS):
            slot.pid = 10_000 + death  # (never signalled: nothing is live at the end)
            sup._died(slot, -9)
            if slot.restart is not None:
                delays.append(round(slot.restart.when - sup.loop.time(), 1))
                slot.restart.cancel()
                slot.restart = None
        assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4]
        assert sup.stopping and sup.exit_code == 1
    finally:
        sup.loop.close()

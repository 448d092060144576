"""SNMP poller against snmpsim devices whose counters change: wraps, 64-bit, reboot, renumbering."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.snmp.client import SnmpClient, SnmpTarget
from collectors.snmp.poller import DevicePoll, Schedule, SnmpScheduler, poll_device
from noc import procs
from noc.inventory import parse_inventory
from noc.state import StateStore
from tests.conftest import CITY_HEADER
from tests.snmp_fixtures import SimIface, SnmpSim, snmprec, start_snmpsim

pytestmark = pytest.mark.integration

CITY = CITY_HEADER + """
[[devices]]
id = "rtr"
kind = "router"
vendor = "mikrotik"
address = "127.0.0.1"
snmp = { version = "2c", community = "env:X" }
interfaces = [ { name = "ether2", agency = "dinkes" } ]
"""


@pytest.fixture
def sim(world_tmp: Path) -> Iterator[SnmpSim]:
    s = start_snmpsim(world_tmp, ["probe", "rtr", "good1", "good2"])
    s.write("probe", snmprec(1, [SimIface(1, "ether1", 0, 0)]))
    target = SnmpTarget("probe", "127.0.0.1", s.port, community="probe", timeout=0.5, retries=0)
    procs.wait_until(lambda: asyncio.run(poll_device(SnmpClient(), target)).ok, 30, "snmpsim", s.proc, step=0.3)
    yield s
    procs.stop(s.proc)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(tmp_path / "noc.sqlite")
    s.sync_inventory(parse_inventory(CITY))
    return s


def poll(sim: SnmpSim, community: str = "rtr") -> DevicePoll:
    t = SnmpTarget("rtr", "127.0.0.1", sim.port, community=community, timeout=1.0, retries=1)
    return asyncio.run(poll_device(SnmpClient(), t))


def step(sim: SnmpSim, store: StateStore, uptime: int, ifaces: list[SimIface], xtable: bool = True) -> DevicePoll:
    sim.write("rtr", snmprec(uptime, ifaces, xtable=xtable))
    p = poll(sim)
    assert p.ok, p.error
    store.apply_poll(p)
    return p


def iface(store: StateStore, name: str) -> dict[str, Any]:
    row = store.conn.execute("SELECT rx_bps, tx_bps, agency, if_index FROM iface_state WHERE device='rtr' AND iface=?",
                             (name,)).fetchone()
    return {"rx_bps": row[0], "tx_bps": row[1], "agency": row[2], "if_index": row[3]}


def test_32bit_counters_wrap_on_a_device_with_only_iftable(sim: SnmpSim, store: StateStore) -> None:
    p = step(sim, store, 10_000, [SimIface(1, "ether2", 2**32 - 1000, 5000)], xtable=False)
    assert p.interfaces[0].bits == 32 and p.interfaces[0].name == "ether2"  # ifDescr names it without ifXTable
    step(sim, store, 11_000, [SimIface(1, "ether2", 11_500_000, 5000 + 1_250_000)], xtable=False)
    got = iface(store, "ether2")
    assert got["rx_bps"] == pytest.approx((1000 + 11_500_000) * 8 / 10)
    assert got["tx_bps"] == pytest.approx(1_000_000)
    assert got["agency"] == "dinkes"


def test_64bit_counters_beyond_2_32(sim: SnmpSim, store: StateStore) -> None:
    base = 10**12
    p = step(sim, store, 50_000, [SimIface(3, "ether2", base, base)])
    assert p.interfaces[0].bits == 64 and p.interfaces[0].in_octets == base
    step(sim, store, 51_000, [SimIface(3, "ether2", base + 125_000_000, base + 12_500_000)])
    got = iface(store, "ether2")
    assert (got["rx_bps"], got["tx_bps"]) == (pytest.approx(100e6), pytest.approx(10e6))


def test_reboot_is_detected_and_spans_no_rate(sim: SnmpSim, store: StateStore) -> None:
    step(sim, store, 900_000, [SimIface(1, "ether2", 5 * 10**9, 10**9)])
    step(sim, store, 901_000, [SimIface(1, "ether2", 5 * 10**9 + 12_500_000, 10**9)])
    step(sim, store, 300, [SimIface(1, "ether2", 40_000, 10_000)])  # sysUpTime went back: a reboot
    assert iface(store, "ether2")["rx_bps"] is None
    (reboots, uptime) = store.conn.execute("SELECT reboots, uptime_s FROM device_state WHERE device='rtr'").fetchone()
    assert reboots == 1 and uptime == 3.0
    step(sim, store, 1_300, [SimIface(1, "ether2", 40_000 + 1_250_000, 10_000)])
    assert iface(store, "ether2")["rx_bps"] == pytest.approx(1e6)


def test_ifindex_renumbering_never_mixes_two_interfaces(sim: SnmpSim, store: StateStore,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    step(sim, store, 10_000, [SimIface(1, "ether1", 7_000_000, 0), SimIface(2, "ether2", 100, 0)])
    step(sim, store, 11_000, [SimIface(1, "ether1", 7_000_000 + 1_250_000, 0), SimIface(2, "ether2", 100, 0)])
    # After a reconfiguration ether2 is now ifIndex 1 and ether1 ifIndex 2; sysUpTime went on.
    with caplog.at_level(logging.WARNING):
        step(sim, store, 12_000, [SimIface(2, "ether1", 9_000_000, 0), SimIface(1, "ether2", 200, 0)])
    assert "interface ether2 moved from ifIndex 2 to 1" in caplog.text
    assert iface(store, "ether2")["rx_bps"] is None and iface(store, "ether1")["rx_bps"] is None
    step(sim, store, 13_000, [SimIface(2, "ether1", 9_000_000 + 2_500_000, 0), SimIface(1, "ether2", 200, 0)])
    assert iface(store, "ether1")["rx_bps"] == pytest.approx(2e6)
    assert iface(store, "ether2")["rx_bps"] == 0.0
    assert iface(store, "ether1")["if_index"] == 2


def test_agency_from_ifalias_convention(sim: SnmpSim, store: StateStore) -> None:
    step(sim, store, 10_000, [SimIface(1, "ether5", 0, 0, alias="agency:disdik uplink"),
                              SimIface(2, "ether6", 0, 0, alias="agency:unknown")])
    assert iface(store, "ether5")["agency"] == "disdik"
    assert iface(store, "ether6")["agency"] is None


def test_wrong_community_reads_as_unreachable_not_zero(sim: SnmpSim, store: StateStore) -> None:
    step(sim, store, 10_000, [SimIface(1, "ether2", 0, 0)])
    p = poll(sim, community="wrong")
    assert not p.ok and p.error_kind == "unreachable" and "community" in p.error
    store.apply_poll(p)
    row = next(r for r in store.status_rows() if r["device"] == "rtr")
    assert row["state"] == "unreachable" and row["in_bps"] is None and "no SNMP answer" in row["error"]


def test_a_dead_device_does_not_delay_the_others(sim: SnmpSim) -> None:
    """Every device keeps its own schedule while one never answers. What is asserted is *when* the
    live devices were polled; whether snmpsim (Python) answers within its timeout on a loaded
    machine is not this test's question, so one slow answer may fail a poll but never shifts one."""
    sim.write("good1", snmprec(100, [SimIface(1, "ether1", 0, 0)]))
    sim.write("good2", snmprec(100, [SimIface(1, "ether1", 0, 0)]))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    dead_port = silent.getsockname()[1]
    every = 2.0
    scheds = [
        Schedule(SnmpTarget("good1", "127.0.0.1", sim.port, community="good1", timeout=1.0, retries=0), every),
        Schedule(SnmpTarget("good2", "127.0.0.1", sim.port, community="good2", timeout=1.0, retries=0), every),
        Schedule(SnmpTarget("dead", "127.0.0.1", dead_port, community="x", timeout=2.0, retries=3), every),
    ]
    seen: dict[str, list[tuple[float, bool]]] = {"good1": [], "good2": [], "dead": []}

    async def record(p: DevicePoll) -> None:
        seen[p.device].append((time.monotonic(), p.ok))

    async def main() -> None:
        await SnmpScheduler(scheds, record, concurrency=2).run(asyncio.Event(), rounds=6)

    asyncio.run(main())
    silent.close()
    for name in ("good1", "good2"):
        stamps = [t for t, _ in seen[name]]
        assert len(stamps) == 6 and any(ok for _, ok in seen[name]), seen[name]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert max(gaps) < 1.3 * every, f"{name} kept its {every:.0f} s schedule: {gaps}"
    assert [ok for _, ok in seen["dead"]] == [False] * 6


def test_interfaces_that_appear_or_vanish_are_noticed(sim: SnmpSim, store: StateStore,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    step(sim, store, 10_000, [SimIface(1, "ether1", 0, 0), SimIface(2, "ether2", 0, 0)])
    with caplog.at_level(logging.INFO):
        step(sim, store, 11_000, [SimIface(1, "ether1", 100, 0), SimIface(3, "ether3", 0, 0)])
    assert "rtr: new interface ether3 (ifIndex 3)" in caplog.text
    assert "rtr: interface ether2 is no longer reported" in caplog.text
    names = {r[0] for r in store.conn.execute("SELECT iface FROM iface_state WHERE device='rtr'")}
    assert names == {"ether1", "ether3"}

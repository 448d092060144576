"""The rollups' byte sums equal the counters' difference, however the samples are spaced.

Samples closer together than :data:`collectors.rates.MIN_ELAPSED` make no rate; the store keeps the
previous baseline so the next interval carries their bytes. Agent reports and SNMP polls share the
same path (:mod:`noc.counters`), and both are checked here against a real SQLite store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.snmp.poller import DevicePoll, InterfaceRow
from noc.inventory import parse_inventory
from noc.state import StateStore
from tests.unit.test_inventory import GOOD
from tests.unit.test_state import batch, report

pytestmark = pytest.mark.unit
NOW = 1_700_000_000.0
SPACINGS = {"0.1 ms apart": [0.0001] * 40, "1 s apart": [1.0] * 40,
            "with gaps": [0.0001, 1.0, 120.0, 0.0002, 1800.0, 0.5, 3599.0, 0.0001, 30.0]}


def sums(store: StateStore, scope: str, key: str) -> dict[int, tuple[float, float]]:
    rows = store.conn.execute("SELECT res, sum(rx_bytes), sum(tx_bytes) FROM rollups WHERE scope=? AND key=? "
                              "GROUP BY res", (scope, key)).fetchall()
    return {res: (rx, tx) for res, rx, tx in rows}


@pytest.mark.parametrize("spacing", SPACINGS.values(), ids=SPACINGS.keys())
@pytest.mark.parametrize("per_batch", [1, 5])
def test_agent_reports_rollups_hold_every_byte(tmp_path: Path, spacing: list[float], per_batch: int) -> None:
    store = StateStore(tmp_path / "noc.sqlite", clock=lambda: NOW)
    store.sync_inventory(parse_inventory(GOOD))
    mono, rx, reports = 1000.0, 7_000, [report(1, 1000.0, 7_000)]
    for i, gap in enumerate([*spacing, 10.0], start=2):  # the last report, 10 s on, closes the interval
        mono += gap
        rx += 1_000 + 37 * i
        reports.append(report(i, mono, rx))
    for start in range(0, len(reports), per_batch):
        part = reports[start:start + per_batch]
        store.commit_batch("dinkes-srv1", batch(*part, sent_mono=part[-1]["mono"]), NOW + part[-1]["mono"])
    want_rx, want_tx = rx - 7_000, rx // 2 - 3_500
    for res, (got_rx, got_tx) in sums(store, "iface", "dinkes-srv1/eth0").items():
        assert (round(got_rx, 3), round(got_tx, 3)) == (want_rx, want_tx), f"{res}-s rollups"
    assert set(sums(store, "iface", "dinkes-srv1/eth0")) == {60, 300}
    assert sums(store, "agency", "dinkes|dinkes-srv1")[300][0] == pytest.approx(want_rx, abs=1e-3)


def _poll(ticks: int, in_octets: int, at: float) -> DevicePoll:
    row = InterfaceRow(2, "ether2", "ether2", "", True, 10**9, in_octets, in_octets * 2, 64)
    return DevicePoll("core-rtr", True, at, 0.01, sys_uptime_ticks=ticks, interfaces=(row,))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 20_000)), min_size=1, max_size=30))
def test_snmp_polls_rollups_hold_every_byte(tmp_path_factory: pytest.TempPathFactory,
                                           steps: list[tuple[int, int]]) -> None:
    """Polls in the same sysUpTime tick (0 s apart) or seconds apart, then one a minute on: exact sum."""
    store = StateStore(tmp_path_factory.mktemp("snmp") / "noc.sqlite", clock=lambda: NOW)
    store.sync_inventory(parse_inventory(GOOD))
    ticks, octets, at = 100_000, 5_000, NOW
    store.apply_poll(_poll(ticks, octets, at))
    for dticks, doctets in [*steps, (6000, 1)]:
        ticks, octets, at = ticks + dticks, octets + doctets, at + dticks / 100 + 0.001
        store.apply_poll(_poll(ticks, octets, at))
    got = sums(store, "iface", "core-rtr/ether2")
    assert {res: (round(rx, 3), round(tx, 3)) for res, (rx, tx) in got.items()} == {
        60: (octets - 5_000, 2 * (octets - 5_000)), 300: (octets - 5_000, 2 * (octets - 5_000))}
    store.close()


def test_counters_past_2_to_the_63_and_their_wrap_are_stored_and_counted(tmp_path: Path) -> None:
    """SQLite integers are signed 64-bit; a Counter64 past 2**63, or wrapping at 2**64, still counts exactly."""
    store = StateStore(tmp_path / "noc.sqlite", clock=lambda: NOW)
    store.sync_inventory(parse_inventory(GOOD))
    past_half = [2**63 - 10, 2**63 + 990, 2**63 + 1_990]
    wrapping = [2**64 - 1_500, 2**64 - 500, 500]
    for i, (a, b) in enumerate(zip(past_half, wrapping, strict=True), start=1):
        r = report(i, 1000.0 + 10 * i, 0) | {"interfaces": [{"name": "eth0", "rx_bytes": a, "tx_bytes": a},
                                                          {"name": "eth1", "rx_bytes": b, "tx_bytes": b}]}
        store.commit_batch("dinkes-srv1", batch(r, sent_mono=r["mono"]), NOW + r["mono"])
    for iface in ("eth0", "eth1"):
        got = sums(store, "iface", f"dinkes-srv1/{iface}")
        assert {res: (round(rx, 3), round(tx, 3)) for res, (rx, tx) in got.items()} == {
            60: (2_000, 2_000), 300: (2_000, 2_000)}, iface


def test_an_agency_holds_every_byte_of_its_interfaces_when_their_intervals_differ(tmp_path: Path) -> None:
    """eth1 missing from one report, then both 0.5 ms later: eth1 keeps an older baseline than eth0.
    The agency's sum is still the sum of its interfaces'."""
    store = StateStore(tmp_path / "noc.sqlite", clock=lambda: NOW)
    store.sync_inventory(parse_inventory(GOOD))
    steps = [(1000.0, {"eth0": 0, "eth1": 0}), (1010.0, {"eth0": 1_000}), (1010.0005, {"eth0": 2_000, "eth1": 3_000}),
             (1020.0, {"eth0": 3_000, "eth1": 5_000})]
    for seq, (mono, counters) in enumerate(steps, start=1):
        interfaces = [{"name": n, "rx_bytes": v, "tx_bytes": v} for n, v in counters.items()]
        r = report(seq, mono, 0) | {"interfaces": interfaces}
        store.commit_batch("dinkes-srv1", batch(r, sent_mono=mono), NOW + mono)
    ifaces = sum(sums(store, "iface", f"dinkes-srv1/{n}")[300][0] for n in ("eth0", "eth1"))
    assert round(ifaces, 3) == 8_000
    assert round(sums(store, "agency", "dinkes|dinkes-srv1")[300][0], 3) == 8_000
    rates = store.rollup_rates("agency", "dinkes|", 300, 0)
    assert rates and all(rx > 0 for _, rx, _ in rates)

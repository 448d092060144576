"""Agents → collector → VictoriaMetrics, all real processes: values arrive exactly as measured."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from tests.conftest import VM, wait_for

pytestmark = pytest.mark.integration


def _series(vm: VM, name: str, device: str) -> dict[str, list[tuple[int, float]]]:
    """iface (or '') -> [(timestamp_ms, value)] for one metric of one device."""
    out: dict[str, list[tuple[int, float]]] = {}
    for s in vm.export(f'{name}{{device="{device}"}}'):
        out[s["metric"].get("iface", s["metric"].get("mount", ""))] = sorted(
            zip(s["timestamps"], s["values"], strict=True))
    return out


def _expected_rates(journal: list[dict[str, Any]], iface: str, key: str) -> list[float]:
    rates = []
    for prev, cur in itertools.pairwise(journal):
        p = next(i for i in prev["interfaces"] if i["name"] == iface)
        c = next(i for i in cur["interfaces"] if i["name"] == iface)
        rates.append((c[key] - p[key]) * 8 / (cur["mono"] - prev["mono"]))
    return rates


def test_values_in_victoriametrics_equal_what_agents_measured(vm: VM, noc_factory: Any) -> None:
    noc = noc_factory(tsdb_url=vm.url)
    a = noc.start_agent("srv-a", interval=1.0, extra=["--count", "6"])
    b = noc.start_agent("srv-b", interval=1.0, extra=["--count", "6"])
    assert a.wait(60) == 0 and b.wait(60) == 0
    noc.wait_outbox_empty()
    # VictoriaMetrics makes freshly written samples searchable within a couple of seconds.
    # (pantau_device_* is the NOC's own up/down sample on its own clock, not one per report)
    # Interfaces another process added or removed on this host mid-run (a test's veth) have fewer
    # reports; only those in every report of the device are expected six times.
    steady = {d: set.intersection(*({i["name"] for i in r["interfaces"]} for r in noc.journal(d)))
              for d in ("srv-a", "srv-b")}
    wait_for(lambda: all(len(s["values"]) == 6 for s in vm.export(
        '{__name__=~"pantau_(iface|host|disk)_.*",device=~"srv-a|srv-b"}')
                         if not s["metric"]["__name__"].endswith("_bps")
                         and s["metric"].get("iface") in {None, *steady[s["metric"]["device"]]}), 60,
             "samples searchable")
    for device in ("srv-a", "srv-b"):
        journal = noc.journal(device)
        assert len(journal) == 6
        assert noc.ledger(device) == [r["seq"] for r in journal] == list(range(1, 7))
        for field in ("rx_bytes", "tx_bytes", "rx_packets", "tx_errors"):
            got = _series(vm, f"pantau_iface_{field}", device)
            for iface in steady[device]:
                want = [float(next(i for i in r["interfaces"] if i["name"] == iface)[field]) for r in journal]
                assert [v for _, v in got[iface]] == want, (device, iface, field)
        got_mem = _series(vm, "pantau_host_mem_used_bytes", device)[""]
        assert [v for _, v in got_mem] == [float(r["host"]["mem_used"]) for r in journal]
        # Rates: computed by the NOC from counter differences over the agent's monotonic clock.
        got_rate = [v for _, v in _series(vm, "pantau_iface_rx_bps", device)["lo"]]
        want_rate = _expected_rates(journal, "lo", "rx_bytes")
        assert got_rate == pytest.approx(want_rate, rel=1e-9)
        assert all(r > 0 for r in got_rate), "the agents' own reports cross lo, so lo carries traffic"
        # Tags are labels: agency attribution made it through.
        labels = vm.export(f'pantau_iface_rx_bps{{device="{device}",iface="lo"}}')[0]["metric"]
        assert labels["agency"] == {"srv-a": "dinkes", "srv-b": "disdik"}[device]
        # Timestamps follow the agent's monotonic clock on the NOC's time line.
        ts = [t for t, _ in _series(vm, "pantau_host_uptime_seconds", device)[""]]
        gaps = [(b - a) / 1000 for a, b in itertools.pairwise(ts)]
        mono_gaps = [b["mono"] - a["mono"] for a, b in itertools.pairwise(journal)]
        assert gaps == pytest.approx(mono_gaps, abs=0.25)  # exact up to one-way request latency


def test_status_shows_agents_with_rates_and_uptime(noc_factory: Any) -> None:
    import json
    import subprocess

    from noc.procs import PANTAU

    noc = noc_factory()
    noc.start_agent("srv-a", interval=1.0)
    wait_for(lambda: len(noc.ledger("srv-a")) >= 3, 30, "three reports")
    out = subprocess.run([*PANTAU, "status", "--db", str(noc.db), "--json"], capture_output=True, text=True,
                         check=True, timeout=30)
    rows = {r["device"]: r for r in json.loads(out.stdout)}
    assert rows["srv-a"]["state"] == "ok"
    assert rows["srv-a"]["in_bps"] > 0 and rows["srv-a"]["uptime_s"] > 0
    assert rows["srv-b"]["state"] == "never seen" and rows["srv-b"]["in_bps"] is None
    table = subprocess.run([*PANTAU, "status", "--db", str(noc.db)], capture_output=True, text=True, check=True,
                           timeout=30).stdout
    assert "AGENCY" in table and "srv-a" in table and "never seen" in table
    time.sleep(0)

"""Debian's snmpd in a namespace carrying iperf3 traffic: the NOC's measured rate matches iperf3's."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from noc import procs
from noc.procs import PANTAU
from tests.conftest import CITY_HEADER, VM, wait_for
from tests.netns import NetNs, netns
from tests.snmp_fixtures import Snmpd, live_counters, start_snmpd, wait_snmp

pytestmark = pytest.mark.integration


@pytest.fixture
def router(world_tmp: Path) -> Iterator[tuple[NetNs, Snmpd]]:
    """A 'router' namespace (jumbo MTU so iperf3's payload rate and the wire rate differ < 1%) with snmpd."""
    with netns(71, mtu=9000) as ns:
        cfg, proc = start_snmpd(world_tmp, ns.ns_ip, 161, ns.cmd())
        try:
            wait_snmp(ns.ns_ip, 161, cfg.community, proc)
            live_counters(cfg)
            yield ns, cfg
        finally:
            procs.stop(proc)


def city(ns: NetNs, interval: str = "5s") -> str:
    return CITY_HEADER + f"""
[[devices]]
id = "edge-rtr"
kind = "router"
vendor = "linux"
address = "{ns.ns_ip}"
snmp = {{ version = "3", user = "pantau", auth_key = "env:PT_SNMP_AUTH", priv_key = "env:PT_SNMP_PRIV", \
interval = "{interval}", timeout = "1s", retries = 1 }}
interfaces = [ {{ name = "{ns.ns_if}", agency = "dinkes" }} ]
"""


def test_noc_measures_what_iperf3_sends(router: tuple[NetNs, Snmpd], vm: VM, noc_factory: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ns, cfg = router
    monkeypatch.setenv("PT_SNMP_AUTH", cfg.auth)
    monkeypatch.setenv("PT_SNMP_PRIV", cfg.priv)
    noc = noc_factory(tsdb_url=vm.url, city=city(ns, "5s"))
    wait_for(lambda: any(r["device"] == "edge-rtr" and r["state"] == "ok" for r in _status(noc)), 30, "first poll")
    server = subprocess.Popen(ns.cmd("iperf3", "-s", "-1", "-B", ns.ns_ip, "-p", "5201"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    start = time.time()
    out = subprocess.run(["iperf3", "-c", ns.ns_ip, "-p", "5201", "-u", "-b", "200M", "-l", "8900", "-t", "30", "-J"],
                         capture_output=True, text=True, timeout=90, check=True)
    end = time.time()
    server.wait(30)
    iperf_bps = json.loads(out.stdout)["end"]["sum"]["bits_per_second"]
    time.sleep(6)
    noc.wait_outbox_empty()
    series = vm.export(f'pantau_iface_rx_bps{{device="edge-rtr",iface="{ns.ns_if}"}}')
    assert series, "rates for the router's agency interface reached VictoriaMetrics"
    assert series[0]["metric"]["agency"] == "dinkes" and series[0]["metric"]["source"] == "snmp"
    # rates of intervals wholly inside the transfer (each point is the rate over the 5 s before it)
    inside = [v for t, v in zip(series[0]["timestamps"], series[0]["values"], strict=True)
              if start + 6 < t / 1000 < end - 0.5]
    assert len(inside) >= 3, inside
    measured = statistics.median(inside)
    print(f"pantau measured {measured / 1e6:.2f} Mbit/s over {len(inside)} polls; iperf3 {iperf_bps / 1e6:.2f} Mbit/s")
    assert measured == pytest.approx(iperf_bps, rel=0.05), f"pantau {measured:.0f} bit/s vs iperf3 {iperf_bps:.0f}"
    row = next(r for r in _status(noc) if r["device"] == "edge-rtr")
    assert row["source"] == "snmp" and row["uptime_s"] > 0


def _status(noc: Any) -> list[dict[str, Any]]:
    out = subprocess.run([*PANTAU, "status", "--db", str(noc.db), "--json"], capture_output=True, text=True,
                         timeout=30, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_cli_discover_and_poll_with_clear_errors(router: tuple[NetNs, Snmpd], world_tmp: Path) -> None:
    ns, cfg = router
    inv = world_tmp / "city.toml"
    inv.write_text(city(ns))
    env = {**os.environ, "PT_SNMP_AUTH": cfg.auth, "PT_SNMP_PRIV": cfg.priv, "COMM": cfg.community}
    found = subprocess.run([*PANTAU, "snmp", "discover", "--device", "edge-rtr", "--inventory", str(inv)],
                           capture_output=True, text=True, timeout=60, env=env)
    assert found.returncode == 0, found.stderr
    assert ns.ns_if in found.stdout and "dinkes (inventory)" in found.stdout and "64-bit" in found.stdout
    polled = subprocess.run([*PANTAU, "snmp", "poll", ns.ns_ip, "--community-env", "COMM", "--json"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert polled.returncode == 0, polled.stderr
    assert any(i["name"] == ns.ns_if for i in json.loads(polled.stdout)["interfaces"])

    def fails(*args: str, **extra: str) -> str:
        r = subprocess.run([*PANTAU, "snmp", "poll", ns.ns_ip, "--timeout", "0.5", "--retries", "0", *args],
                           capture_output=True, text=True, timeout=60, env={**env, **extra})
        assert r.returncode != 0
        return r.stderr

    assert "refused our SNMPv3 credentials for user 'pantau'" in fails(
        "--version", "3", "--user", "pantau", "--auth-key-env", "BADA", "--priv-key-env", "PT_SNMP_PRIV",
        BADA="wrong-auth-key")
    assert "privacy key is wrong" in fails(
        "--version", "3", "--user", "pantau", "--auth-key-env", "PT_SNMP_AUTH", "--priv-key-env", "BADP",
        BADP="wrong-priv-key")
    assert "ignores our SNMP community" in fails("--community-env", "BADC", BADC="nope")
    assert "is not set" in fails("--community-env", "UNSET_VARIABLE_X")
    assert cfg.auth not in fails("--version", "3", "--user", "pantau", "--auth-key-env", "PT_SNMP_AUTH",
                                 "--priv-key-env", "BADP", BADP="wrong-priv-key")

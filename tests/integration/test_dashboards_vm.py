"""Every dashboard panel's query runs against the real VictoriaMetrics holding real pantau data
and returns series carrying the labels its legend uses: a renamed metric or label fails here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from backup.restic import Repo, Restic
from noc.bandwidth.reconcile import RouterReport, record
from noc.bandwidth.watchdog import Breach
from noc.procs import free_udp_port
from noc.state import StateStore
from tests.backups import PASSWORDS, policy_toml, write_files
from tests.conftest import CITY, VM, pantau, wait_for
from tests.dashboard_queries import run_every_panel, total_queries

pytestmark = pytest.mark.integration


def test_every_panel_returns_series_with_its_legend_labels(vm: VM, noc_factory: Any, world_tmp: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    dead_port = free_udp_port()
    city = CITY + f"""
[[allocations]]
agency = "dinkes"
uplink = "isp"
guaranteed_down = "100 Mbit"
ceiling_down = "300 Mbit"
guaranteed_up = "50 Mbit"
ceiling_up = "100 Mbit"

[[devices]]
id = "rtr"
kind = "router"
address = "127.0.0.1"
snmp = {{ version = "2c", community = "env:PT_X", port = {dead_port}, interval = "2s", timeout = "0.5s", retries = 0 }}
"""
    monkeypatch.setenv("PT_X", "x")  # the community of a router that is switched off
    home = world_tmp / "backups"
    monkeypatch.setenv("PT_BACKUP_PW", PASSWORDS["pw-dinkes"])
    restic = Restic()
    for site in ("pd", "dr"):
        restic.init(Repo(str(home / site), PASSWORDS["pw-dinkes"]))
    write_files(home / "src", 4, 10_000, 7)
    city += policy_toml("dinkes", "srv-a", [str(home / "src")], str(home / "pd"), str(home / "dr")).replace(
        'dr_password = "secret:pw-dinkes-dr"', "").replace('secret:pw-dinkes', 'env:PT_BACKUP_PW')
    noc = noc_factory(tsdb_url=vm.url, city=city, start=False)
    pantau("backup", "run", "dinkes", "--inventory", str(noc.inventory), "--db", str(noc.db), "--operator", "pytest")
    noc.extra += ["--backup-every", "2s"]  # the NOC copies to DR, checks and drills by itself
    noc.start()
    # a shaping router's report and an enforcement breach, through the code that writes them in service
    store = StateStore(noc.db)
    record(store, [RouterReport("rtr", "enforce", in_sync=True, seconds=0.4)])
    with store.tx() as c:
        store.outbox_add(c, [Breach("dinkes", "down", 350e6, 300_000_000, 3).line(time.time_ns())])
    store.close()
    agent = noc.start_agent("srv-a", interval=1.0, extra=["--count", "8"])
    assert agent.wait(60) == 0
    wait_for(lambda: "backups verified" in noc.log.read_text(), 60, "the NOC's backup pass")
    noc.wait_outbox_empty()
    wait_for(lambda: all(vm.query(q) for q in ('pantau_snmp_up{device="rtr"}', 'pantau_iface_rx_errors{device="srv-a"}',
                                                'pantau_alloc_ceiling_down_bps', 'pantau_agency_down_bps',
                                                'pantau_backup_drill_restore_seconds{site="dr"}',
                                                'pantau_backup_run_ok', 'pantau_shaping_in_sync',
                                                'pantau_breach_measured_bps', 'pantau_device_sla_up',
                                                'pantau_incidents_open')),
             30, "agent, SNMP, allocation, backup, shaping and breach data searchable")
    run = run_every_panel(vm.url)
    assert not run.no_values, f"template variables that list no values: {run.no_values}"
    assert not run.empty, "panels that return nothing:\n" + "\n".join(run.empty)
    assert not run.legend, "\n".join(run.legend)
    assert run.checked == total_queries()

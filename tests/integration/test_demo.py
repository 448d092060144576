"""The README's main job, `pantau demo`, run once: what the operator sees, and the demo city's
data in VictoriaMetrics lighting up every dashboard panel Grafana would show."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from noc import procs
from noc.procs import agent_user_args, free_port
from tests.conftest import pantau
from tests.dashboard_queries import run_every_panel, total_queries

pytestmark = pytest.mark.integration

# What a quiet demo city legitimately leaves empty: no agency runs past its ceiling. The test city
# of test_dashboards_vm.py fills it.
QUIET_IN_THE_DEMO = {"pantau-overview / Enforcement breaches (traffic above the ceiling)"}


@dataclass(frozen=True)
class Demo:
    state: Path
    out: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    where = Path(tempfile.mkdtemp(prefix="pantau-demo-"))
    os.chmod(where, 0o755)  # the demo's agents run as nobody
    port = free_port()
    # the first backup pass (~20 s); the outage from 12 s to 62 s, its consequence (bappeda-srv1 late
    # after 30 s of silence, ~45 s) and its end; 38 s (three status rounds) after the core router is back
    out = pantau("demo", "--state-dir", str(where / "demo"), "--port", str(port), "--interval", "2",
                 "--outage-at", "12", "--outage-for", "50", "--duration", "100", timeout=600)
    yield Demo(where / "demo", out)
    shutil.rmtree(where, ignore_errors=True)


def test_demo_main_job_runs_and_shows_status(demo: Demo) -> None:
    out = demo.out
    assert "started 3 agent(s)" in out.stdout
    assert "dinkes-srv1's backup timer fired (pantau agent backup): dinkes-srv1: snapshot " in out.stdout
    db = sqlite3.connect(demo.state / "noc.sqlite")
    claims = db.execute("SELECT agency, ok, snapshot_id FROM backup_runs "
                        "WHERE reported_by = 'agent:dinkes-srv1'").fetchall()
    db.close()
    assert len(claims) == 1 and claims[0][:2] == ("dinkes", 1), f"the agent's report of its run, once: {claims}"
    assert "dinkes-srv1" in out.stdout and "LAST SEEN" in out.stdout
    assert out.stdout.count(" ok") >= 3, out.stdout
    assert "the division of the uplink" in out.stdout
    assert "reallocating: 50 Mbit/s" in out.stdout
    assert "dinkes: guaranteed down 300.0 Mbit/s -> 350.0 Mbit/s" in out.stdout
    if os.geteuid() == 0:  # the edge router lives in network namespaces
        edge = next(line for line in out.stdout.rsplit("== shaping routers", 1)[-1].splitlines()
                    if line.startswith("edge-rtr"))
        assert "in sync" in edge and "verified" in edge, edge
        status = [line.rstrip() for line in out.stdout.splitlines() if line.startswith("(dinas)  edge-rtr")]
        assert status and status[-1].endswith(" ok"), f"seen over SSH by the reconciler: {status}"
    last = out.stdout.rsplit("== Kota Demo", 1)[-1]
    assert "core-rtr" in last and "disdik-sw1" in last
    assert "unreachable: no SNMP answer" in last, "the switched-off switch reads as unreachable"
    rtr = [line.rstrip() for line in out.stdout.splitlines() if line.startswith("(dinas)  core-rtr")]
    assert any(line.endswith(" ok") for line in rtr), rtr  # SNMPv3 answers before the scripted outage
    # the outage: one root incident for the core router, bappeda-srv1's silence attached to it
    assert "== outage: the core router (core-rtr) loses power" in out.stdout
    during, after = out.stdout.split("== the core router is back", 1)
    incidents = during.rsplit("== incidents for the service desk", 1)[-1].split("\n== ", 1)[0]
    root = next(line for line in incidents.splitlines() if "core-rtr is down" in line)
    root_id = root.split()[0]
    attached = [line for line in incidents.splitlines() if f"->{root_id}" in line]
    assert any("bappeda-srv1" in line and "device_down" in line for line in attached), incidents
    assert not any("found damage" in line for line in attached), "a corrupt pack is no consequence of an outage"
    # ... and its end: the router answers again on its own address, the incident resolves with its consequence
    final = after.rsplit("== incidents for the service desk", 1)[-1].split("\n== ", 1)[0]
    assert not [line for line in final.splitlines() if "device_down" in line and ("core-rtr" in line or
                                                                                 "bappeda-srv1" in line)], final
    rtr_after = [line.rstrip() for line in after.splitlines() if line.startswith("(dinas)  core-rtr")]
    assert rtr_after and rtr_after[-1].endswith(" ok"), rtr_after
    db = sqlite3.connect(demo.state / "noc.sqlite")
    outage = db.execute("SELECT id, resolved_at FROM incidents WHERE device='core-rtr' AND category='device_down' "
                        "AND parent_id IS NULL").fetchall()
    consequence = db.execute("SELECT parent_id, resolved_at FROM incidents WHERE device='bappeda-srv1' "
                             "AND category='device_down'").fetchall()
    db.close()
    assert len(outage) == 1 and f"#{outage[0][0]}" == root_id and outage[0][1] is not None, outage
    assert [(parent, resolved is not None) for parent, resolved in consequence] == [(outage[0][0], True)], consequence
    noc_log = (demo.state / "logs" / "noc.log").read_text()
    polls = [ln for ln in noc_log.splitlines() if "disdik-sw1 (127.0.0.1" in ln and "pantau.incidents" not in ln]
    assert len(polls) == 1, "a dead device is logged once, not at every poll (and once as its incident)"
    assert "VictoriaMetrics at http://127.0.0.1:" in out.stdout
    if agent_user_args()[:1] == ["--user"]:
        assert "as user nobody" in out.stdout
    # backups: real repositories, judged by the NOC itself — good, late, broken
    backups = out.stdout.rsplit("== backups, verified by the NOC", 1)[-1]
    verdicts = {(p[0], p[1], p[3]) for p in map(str.split, backups.splitlines())
                if p[:1] in (["dinkes"], ["disdik"], ["bappeda"])}
    assert {("dinkes", "Pusat", "ok"), ("disdik", "Pusat", "LATE"), ("disdik", "DR", "LATE"),
            ("bappeda", "Pusat", "CORRUPT"), ("bappeda", "DR", "ok")} <= verdicts, backups


def test_the_demo_city_fills_every_dashboard(demo: Demo, tmp_path: Path) -> None:
    """The store the demo wrote, reopened as Grafana's data source would read it."""
    assert (demo.state / "vm").is_dir(), "the demo started no VictoriaMetrics"
    port = free_port()
    vm = procs.start_victoria_metrics(demo.state / "vm", port, tmp_path / "vm.log")
    try:
        run = run_every_panel(f"http://127.0.0.1:{port}")
    finally:
        procs.stop(vm)
    assert not run.no_values, f"template variables that list no values: {run.no_values}"
    assert not run.legend, "\n".join(run.legend)
    assert run.checked == total_queries()
    empty = run.empty_panels() - QUIET_IN_THE_DEMO
    assert not empty, "panels the demo city leaves empty:\n" + "\n".join(
        e for e in run.empty if e.split(" :: ", 1)[0] in empty)

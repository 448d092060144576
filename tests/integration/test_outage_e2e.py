"""A router in a network namespace goes down: one root incident for the service desk; the heartbeat
and backup alerts of the agency server behind it are attached to it, not opened on their own, and
all of it resolves when the router returns. The NOC is the real process; the webhook receiver is
real; SNMP is Debian's snmpd on the router; the agency server's agent reports across the router.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backup.restic import Repo, Restic
from noc import procs
from noc.inventory import load_inventory
from noc.state import StateStore
from tests.backups import write_files
from tests.conftest import pantau, wait_for
from tests.integration.test_notify import Http
from tests.routers import RouterLab, router_lab
from tests.snmp_fixtures import start_snmpd, wait_snmp

pytestmark = pytest.mark.e2e

PW = "kata sandi cadangan dinkes"


@pytest.fixture
def lab(world_tmp: Path) -> Iterator[RouterLab]:
    (world_tmp / "lab").mkdir()
    with router_lab(world_tmp / "lab", 185) as lab:
        yield lab


def _incidents(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as c:
        cols = ("id", "key", "parent_id", "resolved_at")
        return [dict(zip(cols, r, strict=True)) for r in c.execute(
            "SELECT id, key, parent_id, resolved_at FROM incidents ORDER BY id")]


def _open(db: Path) -> dict[str, dict[str, Any]]:
    return {i["key"]: i for i in _incidents(db) if i["resolved_at"] is None}


def test_router_down_one_root_incident_consequences_attached_all_resolve(lab: RouterLab, world_tmp: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    snmp_home = world_tmp / "snmp"
    snmp_home.mkdir()
    cfg, snmpd = start_snmpd(snmp_home, lab.mgmt_ip, 161, ["ip", "netns", "exec", lab.rtr])
    hook = Http()
    hook.start()
    noc = agent = None
    try:
        wait_snmp(lab.mgmt_ip, 161, cfg.community, snmpd)
        monkeypatch.setenv("PT_COMM", cfg.community)
        monkeypatch.setenv("PT_BACKUP_PW", PW)
        src, pd, dr = world_tmp / "simpus", world_tmp / "pd", world_tmp / "dr"
        write_files(src, 4, 20_000, 5)
        restic = Restic()
        for r in (pd, dr):
            restic.init(Repo(str(r), PW))
        inv = world_tmp / "city.toml"
        inv.write_text(f"""
[city]
name = "Kota Uji"
[[uplinks]]
id = "isp"
down = "100 Mbit"
up = "100 Mbit"
[[agencies]]
id = "dinkes"
name = "Dinas Kesehatan"
[[devices]]
id = "rtr"
kind = "router"
address = "{lab.mgmt_ip}"
snmp = {{ version = "2c", community = "env:PT_COMM", interval = "1s", timeout = "0.5s", retries = 0 }}
[[devices]]
id = "srv-dinkes"
agency = "dinkes"
kind = "server"
address = "{lab.agency_ip('a')}"
agent = true
via = "rtr"
count_interfaces = ["eth0"]
[[backup_policies]]
agency = "dinkes"
source = "srv-dinkes"
paths = ["{src}"]
schedule = "*-*-* *:*:00"
rpo = "25s"
pusat_data_repo = "{pd}"
dr_repo = "{dr}"
password = "env:PT_BACKUP_PW"
[[notify]]
id = "service-desk"
kind = "webhook"
url = "http://127.0.0.1:{hook.port}/incidents"
""")
        db = world_tmp / "noc.sqlite"
        store = StateStore(db)
        store.sync_inventory(load_inventory(inv))
        token = store.add_agent("srv-dinkes", "pytest", "outage test", rotate=True)
        store.close()
        token_file = world_tmp / "srv-dinkes.token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, token.encode())
        os.close(fd)
        # the agency server's backup job (run from inside the agency's network namespace)
        pw_file = world_tmp / "backup.pass"
        fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, PW.encode())
        os.close(fd)
        job = world_tmp / "backup.toml"
        job.write_text(f'repo = "{pd}"\npassword_file = "{pw_file}"\npaths = ["{src}"]\n')

        def agency_backup() -> None:
            subprocess.run(["ip", "netns", "exec", lab.lan, *procs.PANTAU, "agent", "backup", "--job", str(job),
                            "--id", "srv-dinkes", "--results", str(world_tmp / "results")], check=True,
                           capture_output=True, timeout=120)

        agency_backup()
        lab.route_lan_via_router()
        port = procs.free_port()
        noc = procs.start_noc(inv, db, port, world_tmp / "noc.log", listen=lab.host_ip,
                              extra=["--uptime-every", "1s", "--notify-hold", "8s", "--backup-every", "2s"])
        (world_tmp / "agent").mkdir(mode=0o755)
        agent = procs.start_agent("srv-dinkes", f"http://{lab.host_ip}:{port}", token_file,
                                  world_tmp / "agent" / "spool", world_tmp / "agent.log", interval=1.0,
                                  netns=lab.lan)
        wait_for(lambda: "backups verified: 2 site(s), 0 not ok" in (world_tmp / "noc.log").read_text(), 60,
                 "a clean first backup pass")
        assert _open(db) == {}

        # the router goes down: its management link and the agency's path to the NOC with it
        subprocess.run(["ip", "link", "set", f"pm{lab.tag}", "down"], check=True)
        down_at = time.monotonic()
        wait_for(lambda: "down:rtr" in _open(db), 20, "the router's incident")
        wait_for(lambda: {"down:srv-dinkes", "backup:dinkes:pusat_data:late"} <= set(_open(db)), 60,
                 "the server's missed heartbeat and its late backup")
        opened = _open(db)
        root = opened["down:rtr"]
        assert root["parent_id"] is None
        for key, inc in opened.items():
            if key != "down:rtr":
                assert inc["parent_id"] == root["id"], f"{key} should be attached to the router's incident"
        roots = json.loads(pantau("incidents", "list", "--db", str(db), "--json").stdout)
        assert [r["key"] for r in roots] == ["down:rtr"] and roots[0]["attached_count"] >= 3
        wait_for(lambda: any(b["event"] == "opened" for _, b in hook.calls), 20, "the service desk's notification")
        assert time.monotonic() - down_at > 8  # held: not paged for a blip

        # it comes back; the agency's backup job catches up; everything resolves
        subprocess.run(["ip", "link", "set", f"pm{lab.tag}", "up"], check=True)
        lab.route_lan_via_router()
        agency_backup()
        wait_for(lambda: _open(db) == {}, 100, "every incident resolved (the agent's retry backoff reaches 60 s)")
        wait_for(lambda: [b["event"] for _, b in hook.calls] == ["opened", "resolved"], 20, "the resolution sent")
        events = [(b["event"], b["incident"]["key"]) for _, b in hook.calls]
        assert events == [("opened", "down:rtr"), ("resolved", "down:rtr")], events
        shown = pantau("incidents", "show", str(root["id"]), "--db", str(db)).stdout
        assert "attached consequences" in shown and "srv-dinkes" in shown and "backup" in shown
        assert "opened    via service-desk: sent after 1 attempt(s)" in shown
        today = time.strftime("%Y-%m-%d", time.gmtime())
        daily = pantau("uptime", "report", "--day", today, "--inventory", str(inv), "--db", str(db), "--csv").stdout
        assert daily.splitlines()[0].startswith("scope,id,agency,availability_percent")
        assert any(line.startswith("device,rtr,") for line in daily.splitlines())
        report = json.loads(pantau("uptime", "report", "--inventory", str(inv), "--db", str(db), "--json").stdout)
        rtr = next(r for r in report["rows"] if r["id"] == "rtr")
        assert rtr["outages"] == 1 and rtr["down_s"] > 5 and rtr["availability_percent"] < 100
    finally:
        procs.stop(agent)
        procs.stop(noc)
        hook.stop()
        snmpd.kill()
        snmpd.wait(timeout=10)

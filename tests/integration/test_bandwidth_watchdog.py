"""The usage watchdog end to end: a queue removed by hand on a router the NOC only observes lets an
agency past its ceiling; the agency's own agent measures it; the NOC opens one incident, and
resolves it when the traffic is back under the ceiling.

The agent runs inside the agency LAN's namespace and reports to the NOC across the lab router, as an
agency server does; iperf3 is the agency's traffic.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from noc import procs
from noc.inventory import load_inventory
from noc.state import StateStore
from tests.conftest import pantau, wait_for
from tests.routers import RouterLab, lab_inventory, router_lab

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(world_tmp: Path) -> Iterator[RouterLab]:
    (world_tmp / "lab").mkdir()
    with router_lab(world_tmp / "lab", 180) as lab:
        yield lab


def _incidents(db: Path) -> list[tuple[str, str, float | None]]:
    with sqlite3.connect(db) as c:
        return [(k, s, r) for k, s, r in c.execute("SELECT key, summary, resolved_at FROM incidents ORDER BY id")]


def test_traffic_past_a_removed_queue_opens_one_breach_incident_and_resolves_it(lab: RouterLab,
                                                                                world_tmp: Path) -> None:
    inv = world_tmp / "city.toml"
    inv.write_text(lab_inventory(lab, mode="observe", down="50 Mbit", up="50 Mbit") + f"""
[[devices]]
id = "srv-dinkes"
agency = "dinkes"
kind = "server"
address = "{lab.agency_ip('a')}"
agent = true
count_interfaces = ["eth0"]
""")
    db = world_tmp / "noc.sqlite"
    pantau("bw", "apply", "--inventory", str(inv), "--db", str(db))
    lab.tc("qdisc", "del", "dev", lab.lan_if, "root")  # download shaping gone, behind pantau's back

    store = StateStore(db)
    store.sync_inventory(load_inventory(inv))
    token = store.add_agent("srv-dinkes", "pytest", "test", rotate=True)
    store.close()
    token_file = world_tmp / "srv-dinkes.token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, token.encode())
    os.close(fd)

    lab.route_lan_via_router()
    port, log = procs.free_port(), world_tmp / "noc.log"
    noc = procs.start_noc(inv, db, port, log, listen=lab.host_ip,
                          extra=["--watch-every", "1s", "--reconcile-every", "1h"])
    agent = None
    try:
        (world_tmp / "agent").mkdir(mode=0o755)
        agent = procs.start_agent("srv-dinkes", f"http://{lab.host_ip}:{port}", token_file,
                                  world_tmp / "agent" / "spool", world_tmp / "agent.log", interval=1.0,
                                  netns=lab.lan)
        wait_for(lambda: "drifted from the division (observe mode" in log.read_text(), 30, "the drift report")

        # dinkes downloads unshaped, far past its 40 Mbit/s ceiling, for a bounded 10 s
        rate: list[float] = []
        burst = threading.Thread(target=lambda: rate.append(lab.iperf("a", reverse=True, seconds=10)))
        burst.start()
        try:
            wait_for(lambda: any(r is None for _, _, r in _incidents(db)), 15, "the breach incident")
        finally:
            burst.join(timeout=40)
        assert rate and rate[0] > 40 * 1.5, f"dinkes should run unshaped, measured {rate} Mbit/s"
        [(key, summary, _)] = _incidents(db)
        assert key == "bw.breach:dinkes:down"
        assert "above its ceiling of 40.0 Mbit/s for 3 checks in a row" in summary
        assert "run `pantau bw plan`" in summary

        # the traffic stops: the same incident resolves, no second one was opened meanwhile
        wait_for(lambda: all(r is not None for _, _, r in _incidents(db)), 20, "the breach to resolve")
        assert len(_incidents(db)) == 1
        text = log.read_text()
        assert text.count("incident opened: dinkes: download measured") == 1
        assert "incident resolved: bw.breach:dinkes:down" in text
    finally:
        procs.stop(agent)
        procs.stop(noc)

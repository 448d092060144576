"""The agent's memory and CPU per collection, beside prometheus-node-exporter on the same host.

The agent runs for real (`pantau agent run`, 1 s interval) against a real collector; the node
exporter (Debian's prometheus-node-exporter) is scraped once a second for the same number of
rounds. Each side's RSS is read at the end and its CPU time (user + system) divided by the rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.probes import PsutilProbe
from noc import procs
from noc.inventory import load_inventory
from noc.state import StateStore

CITY = """
[city]
name = "bench"
[[uplinks]]
id = "isp"
down = "1 Gbit"
up = "1 Gbit"
[[agencies]]
id = "a"
name = "Agency"
[[devices]]
id = "srv"
agency = "a"
kind = "server"
address = "127.0.0.1"
agent = true
"""


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    exporter = shutil.which("prometheus-node-exporter")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.chmod(home, 0o755)
        inv = home / "city.toml"
        inv.write_text(CITY)
        db = home / "noc.sqlite"
        store = StateStore(db)
        store.sync_inventory(load_inventory(inv))
        token = home / "token"
        token.write_text(store.add_agent("srv", "bench") + "\n")
        os.chmod(token, 0o600)
        store.close()
        port = procs.free_port()
        noc = procs.start_noc(inv, db, port, home / "noc.log", extra=["--log-level", "WARNING"])
        agent = None
        node = None
        try:
            agent = procs.start_agent("srv", f"http://127.0.0.1:{port}", token, home / "spool", home / "agent.log",
                                      interval=1.0, extra=["--count", str(args.rounds + 1)])
            ap_ = psutil.Process(agent.pid)
            time.sleep(1.5)  # start-up (imports) is not a collection
            c0 = cpu_seconds(ap_)
            time.sleep(args.rounds - 0.5)
            agent_cpu = (cpu_seconds(ap_) - c0) / args.rounds
            agent_rss = ap_.memory_info().rss
            agent.wait(60)

            # the probe alone, in this process: what one collection costs without the HTTP round trip
            probe = PsutilProbe()
            t0 = time.process_time()
            for _ in range(args.rounds):
                probe.collect()
            probe_cpu = (time.process_time() - t0) / args.rounds

            print(f"{'process':<34} {'RSS MiB':>8} {'CPU ms/collection':>18}")
            print(f"{'pantau agent (collect+spool+send)':<34} {agent_rss / 2**20:>8.1f} {agent_cpu * 1e3:>18.2f}")
            print(f"{'  of which psutil probe alone':<34} {'':>8} {probe_cpu * 1e3:>18.2f}")
            if exporter is None:
                print("prometheus-node-exporter is not installed (scripts/setup installs it): no reference")
                return
            nport = procs.free_port()
            node = subprocess.Popen([exporter, f"--web.listen-address=127.0.0.1:{nport}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.wait_until(lambda: procs.http_ok(f"http://127.0.0.1:{nport}/metrics"), 30, "node exporter", node)
            npp = psutil.Process(node.pid)
            c0 = cpu_seconds(npp)
            for _ in range(args.rounds):
                with urllib.request.urlopen(f"http://127.0.0.1:{nport}/metrics", timeout=10) as r:
                    r.read()
                time.sleep(1.0)
            node_cpu = (cpu_seconds(npp) - c0) / args.rounds
            node_rss = npp.memory_info().rss
            print(f"{'prometheus-node-exporter (scrape)':<34} {node_rss / 2**20:>8.1f} {node_cpu * 1e3:>18.2f}")
            print(f"ratio agent/node-exporter: RSS {agent_rss / node_rss:.2f}x, CPU per round "
                  f"{agent_cpu / node_cpu if node_cpu else float('inf'):.2f}x")
        finally:
            procs.stop(agent)
            procs.stop(node)
            procs.stop(noc)


if __name__ == "__main__":
    main()

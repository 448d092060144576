"""Reports/s and latency through the collector, beside VictoriaMetrics ingesting the same samples.

Both sides get the same samples (one agent report = its host line + one line per interface),
over keep-alive HTTP connections from the same number of client threads. The collector's
figure includes authentication, schema validation, the durable (fsync'd) SQLite commit, rate
maths and the outbox; VictoriaMetrics' figure is its own write path. The ratio is the figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.wire import make_batch
from collectors import metrics
from noc import procs
from noc.inventory import load_inventory
from noc.state import StateStore


def city(n_agents: int) -> str:
    head = textwrap.dedent("""
        [city]
        name = "bench"
        [[uplinks]]
        id = "isp"
        down = "10 Gbit"
        up = "10 Gbit"
        [[agencies]]
        id = "a"
        name = "Agency"
    """)
    devs = "".join(f'\n[[devices]]\nid = "srv{i}"\nagency = "a"\nkind = "server"\naddress = "127.0.0.1"\n'
                   f"agent = true\n" for i in range(n_agents))
    return head + devs


def report(seq: int, ifaces: int) -> dict[str, Any]:
    return {"seq": seq, "collected_at": time.time(), "mono": time.monotonic(), "boot_id": "b", "boot_time": 1.0,
            "host": {"cpu_percent": 3.0, "load1": 0.2, "mem_total": 8 * 2**30, "mem_used": 2**30,
                     "disks": [{"mount": "/", "total": 2**40, "used": 2**39}]},
            "interfaces": [{"name": f"eth{j}", "rx_bytes": seq * 10_000 + j, "tx_bytes": seq * 5_000 + j,
                            "rx_packets": seq * 10, "tx_packets": seq * 5, "rx_errors": 0, "tx_errors": 0,
                            "rx_drops": 0, "tx_drops": 0, "counter_bits": 64} for j in range(ifaces)]}


def lines_for(agent: str, r: dict[str, Any]) -> str:
    ts = int(r["collected_at"] * 1e9)
    out = [metrics.line(metrics.HOST, {"agency": "a", "device": agent}, {"cpu_percent": 3.0, "load1": 0.2,
                                                                          "mem_total_bytes": 8 * 2**30}, ts)]
    out += [metrics.line(metrics.DISK, {"agency": "a", "device": agent, "mount": "/"},
                         {"total_bytes": 2**40, "used_bytes": 2**39}, ts)]
    out += [metrics.line(metrics.IFACE, {"agency": "a", "device": agent, "iface": i["name"]},
                         {k: v for k, v in i.items() if k not in ("name", "counter_bits")}, ts)
            for i in r["interfaces"]]
    return "\n".join(out)


def drive(port: int, jobs: list[list[tuple[str, bytes, dict[str, str]]]]) -> tuple[float, list[float]]:
    """Run each job list on its own thread over one keep-alive connection; return wall time, latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def worker(job: list[tuple[str, bytes, dict[str, str]]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for path, body, headers in job:
            t0 = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status >= 300:
                failures.append(f"{path}: HTTP {resp.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(j,)) for j in jobs]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"benchmark requests failed: {failures[:3]}")
    return wall, latencies


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--reports", type=int, default=100, help="reports per agent")
    ap.add_argument("--interfaces", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        inv = home / "city.toml"
        inv.write_text(city(args.agents))
        db = home / "noc.sqlite"
        store = StateStore(db)
        store.sync_inventory(load_inventory(inv))
        tokens = {f"srv{i}": store.add_agent(f"srv{i}", "bench") for i in range(args.agents)}
        store.close()
        vm_port, noc_port = procs.free_port(), procs.free_port()
        vm = procs.start_victoria_metrics(home / "vm", vm_port, home / "vm.log")
        noc = procs.start_noc(inv, db, noc_port, home / "noc.log", tsdb_url=f"http://127.0.0.1:{vm_port}",
                              extra=["--rate-per-agent", "1000000", "--log-level", "WARNING"])
        try:
            samples = {a: [report(s, args.interfaces) for s in range(1, args.reports + 1)] for a in tokens}
            noc_jobs = [[("/api/v1/reports", json.dumps(make_batch(a, [r], sent_at=time.time(),
                                                                     sent_mono=time.monotonic(), boot_id="b")).encode(),
                          {"Authorization": f"Bearer {tokens[a]}", "Content-Type": "application/json"})
                         for r in rs] for a, rs in samples.items()]
            vm_jobs = [[("/api/v2/write?bucket=bench", lines_for(a, r).encode(), {"Content-Type": "text/plain"})
                        for r in rs] for a, rs in samples.items()]
            n = args.agents * args.reports
            print(f"{n} reports ({args.agents} agents x {args.reports}, {args.interfaces} interfaces each), "
                  f"{args.agents} client threads, keep-alive HTTP on loopback")
            vm_wall, vm_lat = drive(vm_port, vm_jobs)
            noc_wall, noc_lat = drive(noc_port, noc_jobs)
            t0 = time.perf_counter()
            procs.wait_until(lambda: procs.http_json(f"http://127.0.0.1:{noc_port}/healthz")[  # type: ignore[index]
                "tsdb_outbox_pending"] == 0, 300, "outbox drained", step=0.2)
            drain = time.perf_counter() - t0
            print(f"{'path':<40} {'reports/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
            print(f"{'VictoriaMetrics /api/v2/write (direct)':<40} {n / vm_wall:>10.0f} "
                  f"{pct(vm_lat, 50) * 1e3:>8.2f} {pct(vm_lat, 99) * 1e3:>8.2f}")
            print(f"{'pantau collector (durable commit)':<40} {n / noc_wall:>10.0f} "
                  f"{pct(noc_lat, 50) * 1e3:>8.2f} {pct(noc_lat, 99) * 1e3:>8.2f}")
            print(f"ratio collector/VictoriaMetrics: throughput {vm_wall / noc_wall:.2f}x, "
                  f"p99 latency {pct(noc_lat, 99) / pct(vm_lat, 99):.1f}x")
            print(f"outbox drained to VictoriaMetrics {drain:.1f}s after the last report was acknowledged")
        finally:
            procs.stop(noc)
            procs.stop(vm)


if __name__ == "__main__":
    main()

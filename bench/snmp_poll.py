"""Polling N simulated devices over SNMP: pantau's poller beside net-snmp's snmpbulkget and
Debian's prometheus-snmp-exporter, against the same snmpsim devices in the same run.

Each device (its own 127.0.x.y:1161 endpoint) has 10 interfaces; every poller reads sysUpTime and
the same 14 ifTable/ifXTable columns. Figures: wall time for one round over all devices, the
poller's own CPU time (snmpsim's CPU is reported separately: it is the same responder for all),
and the ratio to pantau. Each poller's answers are checked (10 interfaces per device).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.snmp import oids
from collectors.snmp.client import SnmpTarget
from collectors.snmp.poller import Schedule, SnmpScheduler
from noc import procs
from tests.snmp_fixtures import SNMPSIM_RUNNER, SimIface, snmprec

COLUMNS = [oids.COLUMNS[k] for k in oids.WALKED]
TEXT = ("descr", "name", "alias")


def endpoints(n: int) -> list[str]:
    return [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(n)]


def cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def exporter_config(path: Path) -> None:
    metrics = "".join(
        f"  - name: {name}\n    oid: {oid}\n    type: {'DisplayString' if name in TEXT else 'gauge'}\n"
        f"    indexes:\n    - labelname: ifIndex\n      type: gauge\n"
        for name, oid in ((k, oids.COLUMNS[k]) for k in oids.WALKED))
    walks = "".join(f"  - {c}\n" for c in COLUMNS)
    path.write_text(f"pantau_if:\n  version: 2\n  auth:\n    community: public\n  max_repetitions: 20\n"
                    f"  retries: 1\n  timeout: 2s\n  get:\n  - {oids.SYS_UPTIME}\n  walk:\n{walks}"
                    f"  metrics:\n  - name: sysUpTime\n    oid: 1.3.6.1.2.1.1.3\n    type: gauge\n{metrics}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    hosts = endpoints(args.devices)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.chmod(home, 0o755)
        for d in ("data", "cache", "logs"):
            (home / d).mkdir()
            os.chmod(home / d, 0o777)
        (home / "data" / "public.snmprec").write_text(
            snmprec(123456, [SimIface(i, f"ether{i}", i * 10**12, i * 10**11) for i in range(1, 11)]))
        runner = home / "runner.py"
        runner.write_text(SNMPSIM_RUNNER)
        cmd = [sys.executable, str(runner), f"--data-dir={home / 'data'}", f"--cache-dir={home / 'cache'}",
               "--log-level=error", f"--logging-method=file:{home / 'logs' / 'sim.log'}", "--max-var-binds=512",
               *[f"--agent-udpv4-endpoint={h}:1161" for h in hosts]]
        if os.geteuid() == 0:
            cmd += ["--process-user=nobody", "--process-group=nogroup"]
        sim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        exporter = None
        try:
            procs.wait_until(lambda: subprocess.run(
                ["snmpget", "-v2c", "-c", "public", "-t", "0.5", "-r", "0", f"{hosts[-1]}:1161", oids.SYS_UPTIME],
                capture_output=True, timeout=10).returncode == 0, 120, "snmpsim", sim, step=0.5)
            simp = psutil.Process(sim.pid)
            print(f"{args.devices} simulated devices x 10 interfaces (snmpsim, one endpoint each), "
                  f"concurrency {args.concurrency}")
            print(f"{'poller':<34} {'wall s':>7} {'CPU s':>7} {'CPU ms/dev':>10} {'snmpsim CPU s':>13}")
            results = {}

            # pantau
            scheds = [Schedule(SnmpTarget(h, h, 1161, community="public", timeout=2.0, retries=1), 60.0)
                      for h in hosts]
            sched = SnmpScheduler(scheds, lambda p: asyncio.sleep(0), concurrency=args.concurrency)

            async def one_round() -> list[int]:
                polls = await asyncio.gather(*(sched.poll_once(s) for s in scheds))
                return [len(p.interfaces) if p.ok else -1 for p in polls]

            s0, c0, t0 = cpu(simp), time.process_time(), time.perf_counter()
            counts = asyncio.run(one_round())
            results["pantau (pysnmp 7, asyncio)"] = (time.perf_counter() - t0, time.process_time() - c0,
                                                     cpu(simp) - s0)
            assert counts == [10] * len(hosts), f"pantau: incomplete polls {sorted(set(counts))}"

            # net-snmp snmpbulkget: the same multi-column GETBULK walk, one snmpbulkget process per request
            # (the device truncates a large response, so a walk takes several requests, as for pantau)
            def bulkget(h: str) -> int:
                cursor = {c: c for c in COLUMNS}
                rows: dict[str, int] = {c: 0 for c in COLUMNS}
                extra = ["1.3.6.1.2.1.1.3"]  # sysUpTime.0 as a non-repeater in the first request
                for _ in range(50):
                    if not cursor:
                        break
                    cols = list(cursor)
                    out = subprocess.run(["snmpbulkget", "-v2c", "-c", "public", "-t", "2", "-r", "1",
                                          f"-Cn{len(extra)}", "-Cr20", "-On", f"{h}:1161", *extra,
                                          *[cursor[c] for c in cols]], capture_output=True, text=True, timeout=30)
                    extra = []
                    lines = [ln.split(" = ", 1)[0].lstrip(".") for ln in out.stdout.splitlines() if " = " in ln]
                    lines = [ln for ln in lines if not ln.startswith("1.3.6.1.2.1.1.")]
                    done = set()
                    for i, oid in enumerate(lines):
                        col = cols[i % len(cols)]
                        if col in done:
                            continue
                        if not oid.startswith(col + "."):
                            done.add(col)
                            continue
                        cursor[col] = oid
                        rows[col] += 1
                    for col in done:
                        cursor.pop(col, None)
                return rows[oids.COLUMNS["hc_in_octets"]]

            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            s0, t0 = cpu(simp), time.perf_counter()
            with ThreadPoolExecutor(min(args.concurrency, 16)) as pool:
                counts = list(pool.map(bulkget, hosts))
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            results["net-snmp snmpbulkget (process/dev)"] = (
                time.perf_counter() - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), cpu(simp) - s0)
            assert counts == [10] * len(hosts), f"snmpbulkget: {sorted(set(counts))}"

            binary = shutil.which("prometheus-snmp-exporter")
            if binary:
                conf = home / "snmp.yml"
                exporter_config(conf)
                port = procs.free_port()
                exporter = subprocess.Popen([binary, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{port}",
                                             "--log.level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                procs.wait_until(lambda: procs.http_ok(f"http://127.0.0.1:{port}/metrics"), 30, "snmp exporter",
                                 exporter)
                ep = psutil.Process(exporter.pid)

                def scrape(h: str) -> int:
                    url = f"http://127.0.0.1:{port}/snmp?target={h}:1161&module=pantau_if"
                    with urllib.request.urlopen(url, timeout=30) as r:
                        return r.read().decode().count("hc_in_octets{")

                s0, c0, t0 = cpu(simp), cpu(ep), time.perf_counter()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    counts = list(pool.map(scrape, hosts))
                results["prometheus-snmp-exporter 0.21"] = (time.perf_counter() - t0, cpu(ep) - c0, cpu(simp) - s0)
                assert counts == [10] * len(hosts), f"exporter: {sorted(set(counts))}"
            else:
                print("prometheus-snmp-exporter is not installed (scripts/setup installs it): no reference")
            base_wall, base_cpu, _ = results["pantau (pysnmp 7, asyncio)"]
            for name, (wall, cpu_s, sim_cpu) in results.items():
                print(f"{name:<34} {wall:>7.2f} {cpu_s:>7.2f} {cpu_s / len(hosts) * 1e3:>10.2f} {sim_cpu:>13.2f}")
            for name, (wall, cpu_s, _) in results.items():
                if not name.startswith("pantau"):
                    print(f"pantau / {name}: wall {base_wall / wall:.2f}x, CPU {base_cpu / cpu_s:.2f}x")
        finally:
            procs.stop(exporter)
            procs.stop(sim)


if __name__ == "__main__":
    main()

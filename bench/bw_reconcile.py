"""Reconciling N agencies on one Linux router (sshd + tc in network namespaces) with pantau's driver.

Measured, each over a fresh SSH session as the NOC does it:
  * full build   — an empty router gets N agencies (both directions: 2N classes, 2N filters);
  * rate change  — every agency's rates change (`tc class change` only, class ids kept);
  * in sync      — nothing to do: read, parse, compare.
Each includes the read-back that verifies the push. Beside them, in the same run: the same full
build run locally as one `tc -batch` inside the router's namespace (no SSH, no read, no verify:
the kernel's own cost), and LibreQoS's published full-reload cost of ~0.73 ms per subscriber
(LibreQoS documentation; not measured here, it needs its own XDP setup).

Needs root (namespaces). Traffic: none; the prefixes are only classified, never used.
Run: .venv/bin/python bench/bw_reconcile.py [--agencies 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from noc.bandwidth.drivers import DRIVERS
from noc.bandwidth.drivers.base import netmiko_session
from noc.bandwidth.drivers.linux import LinuxTcDriver
from noc.bandwidth.shaping import EMPTY, AgencyQueue, ShapingConfig
from noc.lab import can_build_labs, router_lab
from noc.model import Device, DeviceKind, Shaping, SshAccess, Vendor

LIBREQOS_MS_PER_SUBSCRIBER = 0.73
M = 1_000_000


def config(n: int, bump: int = 0) -> ShapingConfig:
    queues = tuple(AgencyQueue(f"agency{i:03d}", (f"10.99.{100 + i}.0/24",), (5 + bump) * M, (50 + bump) * M,
                               (2 + bump) * M, (20 + bump) * M) for i in range(n))
    return ShapingConfig(10_000 * M, 10_000 * M, queues)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agencies", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.agencies > 150:
        ap.error("at most 150 agencies (prefixes 10.99.100-249.0/24)")
    why = can_build_labs()
    if why:
        sys.exit(f"bw_reconcile: {why}")
    n = args.agencies
    with tempfile.TemporaryDirectory() as tmp, router_lab(Path(tmp), 170) as lab:
        dev = Device("bench-rtr", DeviceKind.ROUTER, lab.mgmt_ip, vendor=Vendor.LINUX,
                     ssh=SshAccess("root", 22, None, str(lab.key_file)), shaping=Shaping("isp", lab.lan_if))
        _, device_type = DRIVERS[Vendor.LINUX]

        def driver() -> LinuxTcDriver:
            return LinuxTcDriver(dev, lambda: netmiko_session(dev, device_type, None))

        def timed(desired: ShapingConfig) -> tuple[float, int]:
            t0 = time.perf_counter()
            with driver() as drv:
                drv.load_candidate(desired)
                res = drv.commit()
            assert res.verified, res.remaining
            return time.perf_counter() - t0, len(res.commands)

        results: dict[str, list[float]] = {"full build": [], "rate change": [], "in sync": [], "SSH login only": []}
        cmds: dict[str, int] = {}
        raw: list[float] = []
        for r in range(args.rounds):
            with driver() as drv:  # start each round from an empty router
                drv.load_candidate(EMPTY)
                drv.commit()
            s, cmds["full build"] = timed(config(n))
            results["full build"].append(s)
            s, cmds["rate change"] = timed(config(n, bump=r + 1))
            results["rate change"].append(s)
            s, cmds["in sync"] = timed(config(n, bump=r + 1))
            results["in sync"].append(s)
            t0 = time.perf_counter()
            with driver() as drv:
                drv.open()  # the login netmiko does before any command
            results["SSH login only"].append(time.perf_counter() - t0)
            cmds["SSH login only"] = 0
            # the kernel's own cost: the same full build as one local tc batch, no SSH
            build = driver().render(config(n), EMPTY)
            batch = Path(tmp) / "batch.tc"
            batch.write_text("\n".join(c[3:] for c in build if c.startswith("tc ") and "2>/dev/null" not in c) + "\n")
            lab.in_ns(lab.rtr, "sh", "-c", "\n".join(c for c in build if not c.startswith("tc ") or "2>/dev/null" in c))
            t0 = time.perf_counter()
            subprocess.run(["ip", "netns", "exec", lab.rtr, "tc", "-batch", str(batch)], check=True,
                           capture_output=True)
            raw.append(time.perf_counter() - t0)
            lab.in_ns(lab.rtr, "sh", "-c", f"tc qdisc del dev {lab.lan_if} root; tc qdisc del dev {lab.lan_if} "
                      f"ingress; tc qdisc del dev ifb-{lab.lan_if} root", check=False)

    print(f"reconciling {n} agencies on one Linux router over SSH (median of {args.rounds} rounds, "
          "each including read-back)")
    print(f"{'case':<34}{'seconds':>9}{'ms/agency':>11}{'commands':>10}")
    for case, xs in results.items():
        med = statistics.median(xs)
        print(f"{'pantau ' + case:<34}{med:>9.2f}{med * 1000 / n:>11.2f}{cmds[case]:>10}")
    med_raw = statistics.median(raw)
    print(f"{'tc -batch, local, no verify':<34}{med_raw:>9.2f}{med_raw * 1000 / n:>11.2f}{'':>10}")
    print(f"{'LibreQoS full reload (published)':<34}{LIBREQOS_MS_PER_SUBSCRIBER * n / 1000:>9.2f}"
          f"{LIBREQOS_MS_PER_SUBSCRIBER:>11.2f}{'':>10}")


if __name__ == "__main__":
    main()

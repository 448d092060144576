"""Seconds from `pantau bw move` to the new rate measured by iperf3 through a real Linux router.

The lab: a Linux router (sshd + tc) in network namespaces between an ISP and two agencies, divided
by pantau. dinkes uploads through the router (iperf3, one line every 0.2 s, each stamped when it
arrives) at its 20 Mbit/s ceiling; a move of 10 Mbit/s of upload from disdik lifts
dinkes's guarantee to 25 Mbit/s and its ceiling with it. Measured, per round:
  * move + apply   — `pantau bw move …` then `pantau bw apply` run by the operator;
  * move + NOC     — `pantau bw move …` only; the NOC service's reconciler notices the audited
                     change and pushes it by itself;
  * reference      — the same ceiling changed by hand with `tc class change` inside the router's
                     namespace (no SSH, no pantau): how fast the kernel and TCP follow a new rate.
"Reached" = the end of the first 0.2 s interval that starts a second (5 intervals) averaging at least
90% of the new rate. Figures are medians.

Needs root (namespaces). Traffic: only inside the lab's namespaces; every iperf3 run is bounded.
Run: .venv/bin/python bench/bw_move.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from noc import procs
from noc.lab import RouterLab, can_build_labs, router_lab

PANTAU = [sys.executable, "-m", "noc"]
_LINE = re.compile(r"\]\s+\d+\.\d+-\d+\.\d+\s+sec\s+\S+\s+\S+\s+([\d.]+)\s+([KMG])bits/sec")
_SCALE = {"K": 1e-3, "M": 1.0, "G": 1e3}
OLD, NEW = 20.0, 25.0  # dinkes's upload ceiling before and after the move, Mbit/s


def city(lab: RouterLab) -> str:
    return textwrap.dedent(f"""\
        [city]
        name = "Kota Bench"
        [[uplinks]]
        id = "isp"
        down = "50 Mbit"
        up = "50 Mbit"
        [[agencies]]
        id = "dinkes"
        name = "Dinas Kesehatan"
        prefixes = ["{lab.agency_prefix('a')}"]
        [[agencies]]
        id = "disdik"
        name = "Dinas Pendidikan"
        prefixes = ["{lab.agency_prefix('b')}"]
        [[devices]]
        id = "rtr"
        kind = "router"
        vendor = "linux"
        address = "{lab.mgmt_ip}"
        ssh = {{ username = "root", key_file = "{lab.key_file}" }}
        shaping = {{ uplink = "isp", lan = "{lab.lan_if}", mode = "enforce" }}
        [[allocations]]
        agency = "dinkes"
        uplink = "isp"
        guaranteed_down = "20 Mbit"
        ceiling_down = "40 Mbit"
        guaranteed_up = "15 Mbit"
        ceiling_up = "20 Mbit"
        [[allocations]]
        agency = "disdik"
        uplink = "isp"
        guaranteed_down = "20 Mbit"
        ceiling_down = "30 Mbit"
        guaranteed_up = "15 Mbit"
        ceiling_up = "15 Mbit"
        """)


def pantau(*args: str) -> float:
    t0 = time.monotonic()
    subprocess.run([*PANTAU, *args], check=True, capture_output=True, timeout=60)
    return time.monotonic() - t0


def time_to_rate(lab: RouterLab, change: Callable[[], object], seconds: float = 12.0) -> tuple[float, float]:
    """(seconds from the change to the first interval at >= 90% of NEW, Mbit/s just before the change)."""
    cmd = ["ip", "netns", "exec", lab.lan, "iperf3", "-c", lab.isp_ip, "-p", "5201", "-B", lab.agency_ip("a"),
           "-t", str(seconds), "-i", "0.2", "--forceflush"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    stamps: list[tuple[float, float]] = []

    def read() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            m = _LINE.search(line)
            if m and "sender" not in line and "receiver" not in line:
                stamps.append((time.monotonic(), float(m.group(1)) * _SCALE[m.group(2)]))

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while len(stamps) < 10 and time.monotonic() < deadline:  # 2 s of steady state first
        time.sleep(0.05)
    before = statistics.median(r for _, r in stamps[-5:]) if stamps else 0.0
    t0 = time.monotonic()
    change()
    p.wait(timeout=seconds + 20)
    reader.join(timeout=10)
    # one 0.2 s interval can burst past the old ceiling; the new rate is reached when a whole second
    # (5 intervals) averages within 10% of it
    after = [(t, r) for t, r in stamps if t > t0]
    reached = next((t for i, (t, _) in enumerate(after)
                    if len(after[i:i + 5]) == 5 and statistics.mean(r for _, r in after[i:i + 5]) >= NEW * 0.9), None)
    if reached is None:
        raise SystemExit(f"bw_move: dinkes never reached {NEW} Mbit/s within {seconds} s: {stamps[-10:]}")
    return reached - t0, before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    why = can_build_labs()
    if why:
        sys.exit(f"bw_move: {why}")
    res: dict[str, list[float]] = {"pantau bw move + bw apply": [], "pantau bw move, NOC reconciler": [],
                                   "tc class change by hand (reference)": []}
    cli: list[float] = []
    before: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, router_lab(Path(tmp), 170) as lab:
        inv, db = Path(tmp) / "city.toml", Path(tmp) / "noc.sqlite"
        inv.write_text(city(lab))
        common = ["--inventory", str(inv), "--db", str(db), "--operator", "bench"]
        move = ["bw", "move", "10M", "--direction", "up", "--from", "disdik", "--to", "dinkes", "--reason",
                "bench", *common]

        def reset() -> None:  # back to the first division, pushed
            pantau("bw", "set", "dinkes", "--guaranteed", "20M/15M", "--ceiling", "40M/20M", "--reason", "bench",
                   *common)
            pantau("bw", "set", "disdik", "--guaranteed", "20M/15M", "--reason", "bench", *common)
            pantau("bw", "apply", *common)

        pantau("bw", "apply", *common)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)

            def by_cli() -> None:
                cli.append(pantau(*move) + pantau("bw", "apply", *common))

            s, b = time_to_rate(lab, by_cli)
            res["pantau bw move + bw apply"].append(s)
            before.append(b)
            reset()

            noc = procs.start_noc(inv, db, procs.free_port(), Path(tmp) / "noc.log",
                                  extra=["--reconcile-every", "1h", "--watch-every", "0.5s"])
            try:
                time.sleep(1.0)  # its first reconcile pass (nothing to do) is over
                s, _ = time_to_rate(lab, lambda: pantau(*move))
                res["pantau bw move, NOC reconciler"].append(s)
            finally:
                procs.stop(noc)
            reset()

            ifb = f"ifb-{lab.lan_if}"
            cls = lab.tc("class", "show", "dev", ifb)
            classid = re.search(r"class htb (1:\w+) parent 1:1 (?:prio \d+ )?rate 15Mbit ceil 20Mbit", cls)
            if classid is None:
                raise SystemExit(f"bw_move: dinkes's upload class not found on {ifb}:\n{cls}")
            by_hand = ["class", "change", "dev", ifb, "parent", "1:1", "classid", classid.group(1), "htb", "rate",
                       "25mbit", "ceil", "25mbit"]
            s, _ = time_to_rate(lab, functools.partial(lab.tc, *by_hand))
            res["tc class change by hand (reference)"].append(s)
            pantau("bw", "apply", *common)  # the reconciler's view again: 20 Mbit/s

    print(f"dinkes upload ceiling {OLD:.0f} -> {NEW:.0f} Mbit/s; measured by iperf3 through the router "
          f"(steady state before: {statistics.median(before):.1f} Mbit/s); median of {args.rounds} rounds")
    print(f"{'path':<40}{'s to new rate':>14}{'min':>7}{'max':>7}")
    for case, xs in res.items():
        print(f"{case:<40}{statistics.median(xs):>14.2f}{min(xs):>7.2f}{max(xs):>7.2f}")
    print(f"{'(pantau CLI time for move + apply)':<40}{statistics.median(cli):>14.2f}")


if __name__ == "__main__":
    main()

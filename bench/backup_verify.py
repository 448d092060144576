"""Verification cost: pantau's rotating check against a plain full `restic check --read-data`.

N agencies, each with a Pusat Data repository holding S snapshots of a source of M MiB
(incompressible data, a few percent changing between snapshots). Measured on the same repositories:
  * pantau verify (no check)   — list snapshots, read new restore sizes, judge: every pass;
  * pantau verify + check n/t  — plus `restic check --read-data-subset=n/t` (t = --cycle), the
                                 daily pass: every pack is read once per cycle of t passes;
  * pantau drill               — restore and verify 3 sample files of the newest snapshot;
  * restic check --read-data   — the reference: reads every pack, every time.
"data read" is the share of pack files the check read (restic's own count). Local repositories;
no network traffic at all.

Run: .venv/bin/python bench/backup_verify.py [--agencies 4] [--mib 128] [--snapshots 3] [--cycle 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backup.restic import Repo, Restic
from noc.backups import BackupService
from noc.inventory import Secrets, parse_inventory
from noc.state import StateStore


def build(root: Path, n: int, mib: int, snapshots: int, cycle: int) -> str:
    restic = Restic()
    toml = '[city]\nname = "Bench"\n[[uplinks]]\nid = "u"\ndown = "1 Gbit"\nup = "1 Gbit"\n'
    for i in range(n):
        a = f"agency{i:02d}"
        src = root / "src" / a
        src.mkdir(parents=True)
        for f in range(mib // 4):
            (src / f"blob{f:03d}.bin").write_bytes(os.urandom(4 * 2**20))
        for site in ("pd", "dr"):
            restic.init(Repo(str(root / site / a), "bench"))
        for s in range(snapshots):
            if s:  # a few percent of the data changes between backups
                for f in range(max(1, mib // 4 // 20)):
                    (src / f"blob{(s * 7 + f) % (mib // 4):03d}.bin").write_bytes(os.urandom(4 * 2**20))
            restic.backup(Repo(str(root / "pd" / a), "bench"), [str(src)], host=f"srv-{a}")
        restic.copy(Repo(str(root / "pd" / a), "bench"), Repo(str(root / "dr" / a), "bench"))
        toml += (f'[[agencies]]\nid = "{a}"\nname = "{a}"\n[[devices]]\nid = "srv-{a}"\nagency = "{a}"\n'
                 f'kind = "server"\naddress = "127.0.0.1"\n[[backup_policies]]\nagency = "{a}"\n'
                 f'source = "srv-{a}"\npaths = ["{src}"]\nschedule = "daily"\nrpo = "1d"\n'
                 f'pusat_data_repo = "{root / "pd" / a}"\ndr_repo = "{root / "dr" / a}"\n'
                 f'password = "env:BENCH_RESTIC_PW"\ncheck_cycle = {cycle}\n')
        print(f"  built {a}: {mib} MiB x {snapshots} snapshots", file=sys.stderr)
    return toml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agencies", type=int, default=4)
    ap.add_argument("--mib", type=int, default=128, help="source size per agency")
    ap.add_argument("--snapshots", type=int, default=3)
    ap.add_argument("--cycle", type=int, default=7)
    args = ap.parse_args()
    if not shutil.which("restic"):
        sys.exit("backup_verify: restic is not installed (scripts/setup installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"building {args.agencies} agencies ...", file=sys.stderr)
        inv = parse_inventory(build(root, args.agencies, args.mib, args.snapshots, args.cycle))
        store = StateStore(root / "noc.sqlite")
        store.sync_inventory(inv)
        svc = BackupService(store, inv, Secrets(environ={"BENCH_RESTIC_PW": "bench"}), workdir=root / "drills",
                            workers=1)
        pols = svc.policies()
        repo_bytes = sum(f.stat().st_size for f in (root / "pd").rglob("*") if f.is_file())

        def per_repo(seconds: float) -> float:
            return seconds / (2 * len(pols))  # both sites

        t0 = time.monotonic()
        svc.verify(pols, check=False, drill=False)
        first = per_repo(time.monotonic() - t0)  # includes reading every snapshot's restore size once
        t0 = time.monotonic()
        svc.verify(pols, check=False, drill=False)
        plain = per_repo(time.monotonic() - t0)
        checks, shares = [], []
        for _ in range(min(args.cycle, 3)):
            t0 = time.monotonic()
            svc.verify(pols, check=True, drill=False)
            checks.append(per_repo(time.monotonic() - t0))
        for r in store.conn.execute("SELECT packs_read, packs_total FROM backup_checks"):
            if r[1]:
                shares.append(r[0] / r[1])
        t0 = time.monotonic()
        svc.verify(pols, check=False, drill=True)
        drill = per_repo(time.monotonic() - t0)
        full = []
        for p in pols:
            t0 = time.monotonic()
            subprocess.run(["restic", "-r", p.pusat_data_repo, "--no-cache", "check", "--read-data"], check=True,
                           capture_output=True, env={**os.environ, "RESTIC_PASSWORD": "bench"})
            full.append(time.monotonic() - t0)
        store.close()

    size_mib = repo_bytes / 2**20 / len(pols)
    print(f"{len(pols)} agencies x 2 sites; each Pusat Data repository {size_mib:.0f} MiB in {args.snapshots} "
          f"snapshots; check cycle {args.cycle}")
    print(f"{'per repository':<40}{'seconds':>9}{'data read':>11}")
    print(f"{'pantau verify, first pass (sizes read)':<40}{first:>9.2f}{'-':>11}")
    print(f"{'pantau verify (no check)':<40}{plain:>9.2f}{'-':>11}")
    print(f"{'pantau verify + check n/' + str(args.cycle):<40}{statistics.median(checks):>9.2f}"
          f"{statistics.mean(shares) * 100 if shares else 0:>10.0f}%")
    print(f"{'pantau drill (3 files)':<40}{drill:>9.2f}{'-':>11}")
    print(f"{'restic check --read-data (reference)':<40}{statistics.median(full):>9.2f}{100:>10.0f}%")
    cycle_pantau = statistics.median(checks) * args.cycle
    print(f"a whole cycle reads every pack once: pantau {cycle_pantau:.1f} s spread over {args.cycle} passes, "
          f"against {statistics.median(full) * args.cycle:.1f} s for {args.cycle} full checks")


if __name__ == "__main__":
    main()

"""Turning one accepted batch of agent reports into NOC state, inside the caller's transaction.

For each report not seen before (the dedup ledger is keyed by (agent, seq)): date it on the
NOC's clock, update the device's latest state, compute each interface's rate against its
previous sample (:mod:`collectors.rates`), add the bytes to the 1- and 5-minute rollups, and queue
the TSDB lines in the outbox. A report older than the latest one already applied (late) still
gets its raw counters written, but makes no rate, so it can never corrupt one.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from collectors import metrics
from collectors.ingest import CommitResult
from noc.counters import IfaceReading, apply_interfaces
from noc.model import Device

if TYPE_CHECKING:
    from noc.state import StateStore


def sample_time(report: dict[str, Any], batch: dict[str, Any], received_at: float) -> float:
    """When a report was collected, on the NOC's clock.

    Within the boot the batch was sent from, the agent's monotonic clock gives the exact age of
    the report at sending; otherwise fall back to the agent's wall clock corrected by its skew.
    """
    if report["boot_id"] == batch["boot_id"] and batch["sent_mono"] >= report["mono"]:
        return received_at - (float(batch["sent_mono"]) - float(report["mono"]))
    skew = float(batch["sent_at"]) - received_at
    return float(report["collected_at"]) - skew


def apply_batch(c: sqlite3.Connection, store: StateStore, dev: Device, batch: dict[str, Any],
                received_at: float) -> CommitResult:
    agent = dev.id
    floor_row = c.execute("SELECT seq FROM report_floor WHERE agent=?", (agent,)).fetchone()
    floor = floor_row[0] if floor_row else 0
    accepted: list[int] = []
    duplicates: list[int] = []
    lines: list[str] = []
    skew = batch["sent_at"] - received_at
    for r in batch["reports"]:
        seq = r["seq"]
        t = sample_time(r, batch, received_at)
        if seq <= floor or c.execute("INSERT OR IGNORE INTO reports VALUES (?,?,?,?)",
                                     (agent, seq, received_at, t)).rowcount == 0:
            duplicates.append(seq)
            continue
        accepted.append(seq)
        ts_ns = int(t * 1e9)
        _apply_host(c, dev, r, t, skew, lines, ts_ns)
        _apply_interfaces(c, dev, r, t, lines)
        _apply_backups(c, dev, r.get("backups", ()), lines, skew, received_at)
    if lines:
        store.outbox_add(c, lines)
    return CommitResult(accepted, duplicates)


def _apply_backups(c: sqlite3.Connection, dev: Device, runs: Any, lines: list[str], skew: float,
                   received_at: float) -> None:
    """An agent's claim about its own backup runs: kept and graphed as *reported*, never as verified.

    The agency is the reporting device's own (an agent reports only for itself). The run's time is
    moved onto the NOC's clock by the batch's skew, and is never later than the batch's arrival."""
    if not dev.agency:
        return
    reporter = f"agent:{dev.id}"
    for b in runs:
        at = min(received_at, float(b["at"]) - skew)
        c.execute("INSERT INTO backup_runs (agency, site, at, ok, snapshot_id, files, bytes, added, duration_s, "
                  "warnings, error, reported_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                  (dev.agency, "pusat_data", at, int(b["ok"]), b["snapshot_id"], b["files"], b["bytes"],
                   b["added"], b["duration_s"], json.dumps(b["warnings"]), b["error"], reporter))
        lines.append(metrics.line(metrics.BACKUP_RUN, {"agency": dev.agency, "reported_by": reporter},
                                  {"ok": int(b["ok"]), "files": b["files"], "bytes": b["bytes"],
                                   "seconds": float(b["duration_s"])}, int(at * 1e9)))


def _apply_host(c: sqlite3.Connection, dev: Device, r: dict[str, Any], t: float, skew: float,
                lines: list[str], ts_ns: int) -> None:
    host = r["host"]
    uptime = max(0.0, r["collected_at"] - r["boot_time"])
    prev = c.execute("SELECT last_seq, last_seen, boot_id, reboots FROM device_state WHERE device=?",
                     (dev.id,)).fetchone()
    if prev is None or r["seq"] > (prev[0] or 0):
        interval = None if prev is None or prev[1] is None else max(0.0, t - prev[1])
        reboots = (prev[3] if prev else 0) + (1 if prev is not None and prev[2] not in (None, r["boot_id"]) else 0)
        c.execute(
            """INSERT INTO device_state (device, source, last_seq, last_seen, interval_s, boot_id, boot_time,
                   uptime_s, cpu_percent, mem_used, mem_total, clock_skew_s, spool_dropped, reboots)
               VALUES (?, 'agent', ?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(device) DO UPDATE SET source=excluded.source, last_seq=excluded.last_seq,
                   last_seen=excluded.last_seen, interval_s=coalesce(excluded.interval_s, interval_s),
                   boot_id=excluded.boot_id, boot_time=excluded.boot_time, uptime_s=excluded.uptime_s,
                   cpu_percent=excluded.cpu_percent, mem_used=excluded.mem_used, mem_total=excluded.mem_total,
                   clock_skew_s=excluded.clock_skew_s, spool_dropped=excluded.spool_dropped,
                   reboots=excluded.reboots""",
            (dev.id, r["seq"], t, interval, r["boot_id"], r["boot_time"], uptime, host["cpu_percent"],
             host["mem_used"], host["mem_total"], skew, r.get("spool_dropped", 0), reboots),
        )
    tags = {"agency": dev.agency or "", "device": dev.id, "source": "agent"}
    load1 = host.get("load1")
    lines.append(metrics.line(metrics.HOST, tags, {  # floats stay floats: a TSDB field keeps one type
        "uptime_seconds": float(uptime), "cpu_percent": float(host["cpu_percent"]),
        "load1": None if load1 is None else float(load1),
        "mem_total_bytes": host["mem_total"], "mem_used_bytes": host["mem_used"],
        "clock_skew_seconds": float(skew), "spool_dropped": r.get("spool_dropped", 0),
    }, ts_ns))
    mounts: set[str] = set()
    for d in host.get("disks", []):
        if d["mount"] in mounts:
            continue  # a mount point listed twice (stacked mounts): the first one counts
        mounts.add(d["mount"])
        lines.append(metrics.line(metrics.DISK, {"agency": dev.agency or "", "device": dev.id, "mount": d["mount"]},
                                  {"total_bytes": d["total"], "used_bytes": d["used"]}, ts_ns))


_EXTRA = ("rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_drops", "tx_drops")


def _apply_interfaces(c: sqlite3.Connection, dev: Device, r: dict[str, Any], t: float, lines: list[str]) -> None:
    readings = [
        IfaceReading(it["name"], it["rx_bytes"], it["tx_bytes"], it.get("counter_bits", 64),
                     {k: it.get(k) for k in _EXTRA}, it.get("up"), it.get("speed_bps"))
        for it in r["interfaces"]
    ]
    apply_interfaces(c, dev, source="agent", seq=r["seq"], boot_id=r["boot_id"], mono=r["mono"], t=t,
                     readings=readings, agency_of=lambda it: dev.agency_of_interface(it.name), lines=lines)

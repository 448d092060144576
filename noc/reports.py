"""Turning one accepted batch of agent reports into NOC state, inside the caller's transaction.

For each report not seen before (the dedup ledger is keyed by (agent, seq)): date it on the
NOC's clock, update the device's latest state, compute each interface's rate against its
previous sample (:mod:`collectors.rates`), add the bytes to the 1- and 5-minute rollups, and queue
the TSDB lines in the outbox. A report older than the latest one already applied (late) still
gets its raw counters written, but makes no rate, so it can never corrupt one.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from collectors import metrics
from collectors.ingest import CommitResult
from collectors.rates import CounterPoint, bucket_shares, interval_rate
from noc.model import Device

if TYPE_CHECKING:
    from noc.state import StateStore

MAX_ROLLUP_INTERVAL_S = 3600.0  # a longer gap is averaged in the TSDB rate but not spread over buckets
ROLLUP_RES = (60, 300)


def sample_time(report: dict[str, Any], batch: dict[str, Any], received_at: float) -> float:
    """When a report was collected, on the NOC's clock.

    Within the boot the batch was sent from, the agent's monotonic clock gives the exact age of
    the report at sending; otherwise fall back to the agent's wall clock corrected by its skew.
    """
    if report["boot_id"] == batch["boot_id"] and batch["sent_mono"] >= report["mono"]:
        return received_at - (float(batch["sent_mono"]) - float(report["mono"]))
    skew = float(batch["sent_at"]) - received_at
    return float(report["collected_at"]) - skew


def _add_rollup(c: sqlite3.Connection, scope: str, key: str, t_end: float, elapsed: float,
                rx: float, tx: float) -> None:
    for res in ROLLUP_RES:
        for bucket, share in bucket_shares(t_end - elapsed, t_end, res):
            c.execute(
                """INSERT INTO rollups VALUES (?,?,?,?,?,?,?)
                   ON CONFLICT(scope, key, res, bucket) DO UPDATE SET rx_bytes=rx_bytes+excluded.rx_bytes,
                   tx_bytes=tx_bytes+excluded.tx_bytes, seconds=seconds+excluded.seconds""",
                (scope, key, res, bucket, rx * share, tx * share, elapsed * share),
            )


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
        _apply_interfaces(c, dev, r, t, lines, ts_ns)
    if lines:
        store.outbox_add(c, lines)
    return CommitResult(accepted, duplicates)


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
    lines.append(metrics.line(metrics.HOST, tags, {
        "uptime_seconds": uptime, "cpu_percent": float(host["cpu_percent"]), "load1": host.get("load1"),
        "mem_total_bytes": host["mem_total"], "mem_used_bytes": host["mem_used"],
        "clock_skew_seconds": float(skew), "spool_dropped": r.get("spool_dropped", 0),
    }, ts_ns))
    for d in host.get("disks", []):
        lines.append(metrics.line(metrics.DISK, {"agency": dev.agency or "", "device": dev.id, "mount": d["mount"]},
                                  {"total_bytes": d["total"], "used_bytes": d["used"]}, ts_ns))


def _apply_interfaces(c: sqlite3.Connection, dev: Device, r: dict[str, Any], t: float,
                      lines: list[str], ts_ns: int) -> None:
    # per agency: [rx bytes, tx bytes, elapsed, complete]; an agency's interval counts only if every
    # one of its interfaces on this device has a known difference for it
    per_agency: dict[str, list[Any]] = {}
    for it in r["interfaces"]:
        name = it["name"]
        agency = dev.agency_of_interface(name)
        bits = it.get("counter_bits", 64)
        cur = CounterPoint(r["boot_id"], r["mono"], it["rx_bytes"], it["tx_bytes"], bits)
        prev = c.execute("SELECT seq, boot_id, mono, rx_bytes, tx_bytes, bits FROM iface_last "
                         "WHERE device=? AND iface=?", (dev.id, name)).fetchone()
        rx_bps = tx_bps = None
        newer = prev is None or r["seq"] > prev[0]
        acc = per_agency.setdefault(agency, [0.0, 0.0, None, True]) if agency else None
        known = False
        if prev is not None and newer:
            speed = it.get("speed_bps")
            rate = interval_rate(CounterPoint(prev[1], prev[2], prev[3], prev[4], prev[5]), cur,
                                 max_bps=speed * 2 if speed else None)
            rx_bps, tx_bps = rate.rx_bps, rate.tx_bps
            if rate.rx_bytes is not None and rate.tx_bytes is not None and 0 < rate.elapsed <= MAX_ROLLUP_INTERVAL_S:
                known = True
                _add_rollup(c, "iface", f"{dev.id}/{name}", t, rate.elapsed, rate.rx_bytes, rate.tx_bytes)
                if acc is not None:
                    acc[0] += rate.rx_bytes
                    acc[1] += rate.tx_bytes
                    acc[2] = rate.elapsed
        if acc is not None and not known:
            acc[3] = False
        if newer:
            c.execute("INSERT OR REPLACE INTO iface_last VALUES (?,?,?,?,?,?,?,?)",
                      (dev.id, name, r["seq"], r["boot_id"], r["mono"], it["rx_bytes"], it["tx_bytes"], bits))
            c.execute("INSERT OR REPLACE INTO iface_state VALUES (?,?,?,?,?,?,?)",
                      (dev.id, name, agency, t, rx_bps, tx_bps, None if "up" not in it else int(it["up"])))
        fields: dict[str, float | int | bool | None] = {
            k: it.get(k) for k in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors",
                                   "rx_drops", "tx_drops")
        }
        fields["rx_bps"], fields["tx_bps"] = rx_bps, tx_bps
        if "up" in it:
            fields["up"] = int(it["up"])
        lines.append(metrics.line(metrics.IFACE, {"agency": agency or "", "device": dev.id, "iface": name,
                                                  "source": "agent"}, fields, ts_ns))
    for agency, (rx, tx, elapsed, complete) in per_agency.items():
        if complete and elapsed:
            _add_rollup(c, "agency", f"{agency}|{dev.id}", t, elapsed, rx, tx)

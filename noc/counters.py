"""Interface counters → NOC state, shared by agent reports and SNMP polls (in the caller's transaction).

For every interface reading: find its previous sample (keyed by device and interface *name*, so an
ifIndex renumbered after a reboot never mixes two interfaces' counters), compute the interval's
rate (:mod:`collectors.rates`), add bytes to the 1- and 5-minute rollups per interface and per
agency, update the latest state, and queue the TSDB line. A sample too close to the previous one to
judge leaves the previous one as the baseline, so the next interval carries its bytes: the
rollups' byte sums equal the counters' difference however the samples are spaced.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from collectors import metrics
from collectors.rates import CounterPoint, DeltaKind, bucket_shares, interval_rate
from noc.model import Device

log = logging.getLogger("pantau.counters")

MAX_ROLLUP_INTERVAL_S = 3600.0  # a longer gap is averaged in the TSDB rate but not spread over buckets
ROLLUP_RES = (60, 300)


@dataclass(frozen=True)
class IfaceReading:
    """One interface's cumulative counters as read from the device."""

    name: str
    rx_bytes: int
    tx_bytes: int
    bits: int = 64
    extra: dict[str, int | None] = field(default_factory=dict)  # other IFACE fields (packets, errors, drops)
    up: bool | None = None
    speed_bps: int | None = None
    if_index: int | None = None
    alias: str | None = None


def _u64_to_sql(value: int) -> int:
    """SQLite integers are signed 64-bit: a counter past 2**63 is kept as its two's complement."""
    return value - 2**64 if value >= 2**63 else value


def _u64_from_sql(value: int) -> int:
    return value + 2**64 if value < 0 else value


def add_rollup(c: sqlite3.Connection, scope: str, key: str, t_end: float, elapsed: float, rx: float,
               tx: float, *, covered: bool = True) -> None:
    """Spread bytes moved over [t_end - elapsed, t_end) over the rollup buckets, in proportion to time.

    ``covered`` adds the interval's seconds too (a bucket's rate is its bytes over its seconds);
    bytes added with ``covered=False`` share seconds another call adds."""
    for res in ROLLUP_RES:
        for bucket, share in bucket_shares(t_end - elapsed, t_end, res):
            c.execute(
                """INSERT INTO rollups VALUES (?,?,?,?,?,?,?)
                   ON CONFLICT(scope, key, res, bucket) DO UPDATE SET rx_bytes=rx_bytes+excluded.rx_bytes,
                   tx_bytes=tx_bytes+excluded.tx_bytes, seconds=seconds+excluded.seconds""",
                (scope, key, res, bucket, rx * share, tx * share, elapsed * share if covered else 0.0),
            )


def _note_interface_changes(c: sqlite3.Connection, dev: Device, seq: int, readings: list[IfaceReading]) -> None:
    """Log interfaces that appeared or disappeared; forget the latest state of those gone."""
    known = {r[0]: r[1] for r in c.execute("SELECT iface, seq FROM iface_last WHERE device=?", (dev.id,))}
    if not known or any(s >= seq for s in known.values()):
        return  # first sample of this device, or a late one: nothing to compare
    names = {it.name for it in readings}
    for it in readings:
        if it.name not in known:
            log.info("%s: new interface %s%s", dev.id, it.name,
                     f" (ifIndex {it.if_index})" if it.if_index is not None else "")
    for gone in sorted(set(known) - names):
        log.warning("%s: interface %s is no longer reported by the device; its rate is no longer counted",
                    dev.id, gone)
        c.execute("DELETE FROM iface_state WHERE device=? AND iface=?", (dev.id, gone))


def apply_interfaces(
    c: sqlite3.Connection,
    dev: Device,
    *,
    source: str,
    seq: int,
    boot_id: str,
    mono: float,
    t: float,
    readings: list[IfaceReading],
    agency_of: Callable[[IfaceReading], str | None],
    lines: list[str],
) -> None:
    """Apply one sample of a device's interfaces taken at ``t`` (NOC clock) / ``mono`` (device clock)."""
    ts_ns = int(t * 1e9)
    _note_interface_changes(c, dev, seq, readings)
    # per agency, seen from the agency (Device.download_is_rx): the bytes of each of its interfaces
    # whose difference is known, each over its own interval (a kept baseline makes one longer), so
    # the agency's byte sums are its interfaces' sums
    per_agency: dict[str, list[tuple[float, float, float]]] = {}
    for it in readings:
        agency = agency_of(it)
        cur = CounterPoint(boot_id, mono, it.rx_bytes, it.tx_bytes, it.bits)
        prev = c.execute("SELECT seq, boot_id, mono, rx_bytes, tx_bytes, bits, if_index FROM iface_last "
                         "WHERE device=? AND iface=?", (dev.id, it.name)).fetchone()
        newer = prev is None or seq > prev[0]
        if prev is not None and newer and None not in (prev[6], it.if_index) and prev[6] != it.if_index:
            log.warning("%s: interface %s moved from ifIndex %s to %s (renumbered after a reboot?); its rate "
                        "restarts from this sample", dev.id, it.name, prev[6], it.if_index)
            prev = None
        rx_bps = tx_bps = None
        new_baseline = newer
        if prev is not None and newer:
            baseline = CounterPoint(prev[1], prev[2], _u64_from_sql(prev[3]), _u64_from_sql(prev[4]), prev[5])
            rate = interval_rate(baseline, cur, max_bps=it.speed_bps * 2 if it.speed_bps else None)
            rx_bps, tx_bps = rate.rx_bps, rate.tx_bps
            new_baseline = rate.kind is not DeltaKind.TOO_SHORT
            if rate.rx_bytes is not None and rate.tx_bytes is not None and 0 < rate.elapsed <= MAX_ROLLUP_INTERVAL_S:
                add_rollup(c, "iface", f"{dev.id}/{it.name}", t, rate.elapsed, rate.rx_bytes, rate.tx_bytes)
                if agency:
                    down, up = (rate.rx_bytes, rate.tx_bytes) if dev.download_is_rx else (rate.tx_bytes, rate.rx_bytes)
                    per_agency.setdefault(agency, []).append((rate.elapsed, float(down), float(up)))
        link_up = None if it.up is None else int(it.up)
        if new_baseline:
            c.execute("INSERT OR REPLACE INTO iface_last (device, iface, seq, boot_id, mono, rx_bytes, tx_bytes, "
                      "bits, if_index) VALUES (?,?,?,?,?,?,?,?,?)",
                      (dev.id, it.name, seq, boot_id, mono, _u64_to_sql(it.rx_bytes), _u64_to_sql(it.tx_bytes), it.bits,
                       it.if_index))
            c.execute("INSERT OR REPLACE INTO iface_state (device, iface, agency, last_seen, rx_bps, tx_bps, up, "
                      "if_index, alias, speed_bps) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (dev.id, it.name, agency, t, rx_bps, tx_bps, link_up, it.if_index, it.alias, it.speed_bps))
        elif newer:  # too soon after the last sample: seen now, its rate stays the last one judged
            c.execute("UPDATE iface_state SET last_seen=?, up=? WHERE device=? AND iface=?",
                      (t, link_up, dev.id, it.name))
        fields: dict[str, float | int | bool | None] = {"rx_bytes": it.rx_bytes, "tx_bytes": it.tx_bytes,
                                                        "rx_bps": rx_bps, "tx_bps": tx_bps, **it.extra}
        if it.up is not None:
            fields["up"] = int(it.up)
        lines.append(metrics.line(metrics.IFACE, {"agency": agency or "", "device": dev.id, "iface": it.name,
                                                  "source": source}, fields, ts_ns))
    for agency, parts in per_agency.items():
        # scope 'agency' rows keep download in rx_bytes and upload in tx_bytes; the seconds once
        key = f"{agency}|{dev.id}"
        for span, down_bytes, up_bytes in parts:
            add_rollup(c, "agency", key, t, span, down_bytes, up_bytes, covered=False)
        add_rollup(c, "agency", key, t, max(e for e, _, _ in parts), 0.0, 0.0)
        lines.append(metrics.line(metrics.AGENCY, {"agency": agency, "device": dev.id, "source": source},
                                  {"down_bps": sum(d * 8 / e for e, d, _ in parts),
                                   "up_bps": sum(u * 8 / e for e, _, u in parts)}, ts_ns))

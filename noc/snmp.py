"""The NOC side of SNMP: targets from the inventory, and polls applied to the state store.

A device that answers gets its interfaces through the same rate maths, rollups and TSDB lines
as agent reports (source ``snmp``). sysUpTime is the device's own clock: intervals are measured
on it, and when it goes backwards the device rebooted (a new boot, so no rate spans the reboot).
A device that does not answer is recorded as unreachable with the error; its interfaces get no
rate at all, never zero.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import TYPE_CHECKING, Any

from collectors import metrics
from collectors.snmp.client import SnmpTarget
from collectors.snmp.poller import DevicePoll, InterfaceRow, Schedule
from core.errors import SecretError
from noc.counters import IfaceReading, apply_interfaces
from noc.inventory import Secrets
from noc.model import Device, Inventory

if TYPE_CHECKING:
    from noc.state import StateStore

log = logging.getLogger("pantau.snmp")

ALIAS_RE = re.compile(r"(?:^|[\s,;])agency[:=]\s*([a-z0-9][a-z0-9_.-]{0,62})", re.IGNORECASE)
TICKS_WRAP = 2**32


def target_for(dev: Device, secrets: Secrets, host: str | None = None) -> SnmpTarget:
    """An SNMP target with the device's credentials resolved."""
    snmp = dev.snmp
    if snmp is None:
        raise SecretError(f"device {dev.id!r} has no [devices.snmp] access in the inventory")
    purpose = f"SNMP access to {dev.id}"
    common: dict[str, Any] = {"name": dev.id, "host": host or dev.address, "port": snmp.port, "timeout": snmp.timeout_s,
              "retries": snmp.retries}
    if snmp.version == "2c":
        assert snmp.community is not None
        return SnmpTarget(version="2c", community=secrets.resolve(snmp.community, purpose), **common)
    assert snmp.auth_key is not None and snmp.priv_key is not None
    return SnmpTarget(version="3", user=snmp.user, auth_key=secrets.resolve(snmp.auth_key, purpose),
                      priv_key=secrets.resolve(snmp.priv_key, purpose), auth_protocol=snmp.auth_protocol,
                      priv_protocol=snmp.priv_protocol, **common)


def schedules(inv: Inventory, secrets: Secrets) -> tuple[list[Schedule], list[str]]:
    """One schedule per device with SNMP access; problems (e.g. a missing secret) are returned, not raised."""
    out, problems = [], []
    for dev in inv.devices:
        if dev.snmp is None:
            continue
        try:
            out.append(Schedule(target_for(dev, secrets), dev.snmp.interval_s))
        except SecretError as exc:
            problems.append(f"{dev.id}: not polled: {exc}")
    return out, problems


def interface_agency(dev: Device, row_name: str, alias: str | None, agencies: set[str]) -> str | None:
    """The inventory's mapping first, else an ifAlias like ``agency:dinkes`` set on the router."""
    mapped = dev.agency_of_interface(row_name)
    if mapped is not None or not alias:
        return mapped
    m = ALIAS_RE.search(alias)
    if m and m.group(1).lower() in agencies:
        return m.group(1).lower()
    return None


def _reading(row: InterfaceRow) -> IfaceReading:
    return IfaceReading(row.name, row.in_octets, row.out_octets, row.bits,
                        {"rx_errors": row.in_errors, "tx_errors": row.out_errors, "rx_drops": row.in_discards,
                         "tx_drops": row.out_discards},
                        row.up, row.speed_bps, row.index, row.alias)


def apply_poll(c: sqlite3.Connection, store: StateStore, dev: Device, poll: DevicePoll, agencies: set[str]) -> None:
    """Record one poll in the caller's transaction."""
    t = poll.started_at + poll.duration_s / 2
    ts_ns = int(t * 1e9)
    tags = {"agency": dev.agency or "", "device": dev.id, "source": "snmp"}
    lines: list[str] = []
    if not poll.ok or poll.sys_uptime_ticks is None:
        c.execute("""INSERT INTO device_state (device, source, last_error, last_error_at) VALUES (?, 'snmp', ?, ?)
                     ON CONFLICT(device) DO UPDATE SET last_error=excluded.last_error,
                     last_error_at=excluded.last_error_at""", (dev.id, poll.error or "no sysUpTime", t))
        lines.append(metrics.line(metrics.SNMP, tags, {"up": 0, "poll_seconds": poll.duration_s}, ts_ns))
        store.outbox_add(c, lines)
        return
    prev = c.execute("SELECT boot_id, uptime_s, last_seen, reboots, last_seq FROM device_state WHERE device=?",
                     (dev.id,)).fetchone()
    uptime = poll.sys_uptime_ticks / 100.0
    boot_n, reboots = 0, 0
    if prev is not None and prev[0] and prev[0].startswith("snmp-") and prev[0][5:].isdigit():
        boot_n, reboots = int(prev[0].split("-")[1]), prev[3] or 0
        if prev[1] is not None and uptime < prev[1]:
            boot_n += 1
            elapsed_wall = t - (prev[2] or t)
            wrapped = prev[1] + elapsed_wall > TICKS_WRAP / 100 - 1  # sysUpTime passes 2^32 ticks (497 days)
            if not wrapped:
                reboots += 1
                log.warning("%s rebooted: sysUpTime went from %.0fs to %.0fs", dev.id, prev[1], uptime)
    boot_id = f"snmp-{boot_n}"
    seq = max(int(t * 1000), (prev[4] or 0) + 1 if prev else 0)
    interval = None if prev is None or prev[2] is None else max(0.0, t - prev[2])
    c.execute(
        """INSERT INTO device_state (device, source, last_seq, last_seen, interval_s, boot_id, boot_time, uptime_s,
               reboots, sys_name, sys_descr, last_error, last_error_at)
           VALUES (?, 'snmp', ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)
           ON CONFLICT(device) DO UPDATE SET source='snmp', last_seq=excluded.last_seq, last_seen=excluded.last_seen,
               interval_s=coalesce(excluded.interval_s, interval_s), boot_id=excluded.boot_id,
               boot_time=excluded.boot_time, uptime_s=excluded.uptime_s, reboots=excluded.reboots,
               sys_name=excluded.sys_name, sys_descr=excluded.sys_descr, last_error=NULL, last_error_at=NULL""",
        (dev.id, seq, t, interval, boot_id, t - uptime, uptime, reboots, poll.sys_name[:255], poll.sys_descr[:1000]),
    )
    lines.append(metrics.line(metrics.SNMP, tags, {"up": 1, "poll_seconds": poll.duration_s}, ts_ns))
    lines.append(metrics.line(metrics.HOST, tags, {"uptime_seconds": uptime}, ts_ns))
    apply_interfaces(c, dev, source="snmp", seq=seq, boot_id=boot_id, mono=uptime, t=t,
                     readings=[_reading(r) for r in poll.interfaces],
                     agency_of=lambda it: interface_agency(dev, it.name, it.alias, agencies), lines=lines)
    store.outbox_add(c, lines)

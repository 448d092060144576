"""Up and down per device from what the NOC sees, the incidents that follow, and the uptime report.

Every check the watcher turns each device's state (agent heartbeat on time, SNMP answering) into
transitions: a device that stops reporting or answering opens an outage starting when it was last
heard, and a *device_down* incident (attached to an upstream root when one is down); its return
closes both. A reboot (a new boot id, or sysUpTime going back) is an outage from the last report
before it to the boot, and a *reboot* incident opened and resolved at once for the record. Devices
in a planned maintenance window still get their outages recorded (shown as planned) but open no
incident.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from collectors import metrics
from core.units import format_duration
from noc.incidents import down_key, open_incident, resolve_incident
from noc.model import Inventory
from noc.state import StateStore
from noc.uptime import Availability, Span, availability, subtract, union
from noc.views import when

log = logging.getLogger("pantau.uptime")


class AvailabilityWatcher:
    def __init__(self, store: StateStore, inv: Inventory) -> None:
        self.store, self.inv = store, inv
        self.agency_of = {d.id: d.agency for d in inv.devices}

    def observe(self, now: float | None = None) -> None:
        now = self.store.clock() if now is None else now
        rows = self.store.status_rows(now)
        ts = int(now * 1e9)
        with self.store.tx() as c:
            lines = []
            for r in rows:
                if r["state"] == "never seen" or r["source"] == "ssh":
                    continue  # an SSH read shows management reachability, not availability
                self._one(c, r, now)
                up = int(r["state"] == "ok")
                planned = int(in_maintenance(c, r["device"], r["agency"], now))
                lines.append(metrics.line(metrics.DEVICE, {"device": r["device"], "agency": r["agency"] or "",
                                                           "kind": r["kind"]},
                                          {"up": up, "in_maintenance": planned, "sla_up": max(up, planned)}, ts))
            counts: dict[tuple[str, str], list[int]] = {}
            for cat, agency, parent in c.execute("SELECT category, coalesce(agency, ''), parent_id FROM incidents "
                                                 "WHERE resolved_at IS NULL"):
                counts.setdefault((cat, agency), [0, 0])[0 if parent is None else 1] += 1
            lines += [metrics.line(metrics.INCIDENTS, {"category": cat, "agency": agency},
                                   {"open": n[0], "attached": n[1]}, ts) for (cat, agency), n in counts.items()]
            self.store.outbox_add(c, lines)

    def _one(self, c: sqlite3.Connection, r: dict[str, Any], now: float) -> None:
        dev, up, reboots = r["device"], r["state"] == "ok", r["reboots"]
        prev = c.execute("SELECT up, since, reboots, last_ok FROM avail_state WHERE device=?", (dev,)).fetchone()
        last_seen = r["last_seen"] or now
        planned = in_maintenance(c, dev, self.agency_of.get(dev), now)
        if prev is None:
            c.execute("INSERT INTO avail_state (device, up, since, reboots, last_ok, monitored_since) "
                      "VALUES (?,?,?,?,?,?)", (dev, int(up), now, reboots, last_seen if up else None,
                                               min(now, last_seen)))
            if not up:
                self._down(c, r, last_seen, now, planned)
            return
        was_up, _, prev_reboots, last_ok = bool(prev[0]), prev[1], prev[2], prev[3]
        if reboots > prev_reboots and r["boot_time"]:
            self._reboot(c, r, last_ok, now, planned)
        if was_up and not up:
            self._down(c, r, last_ok or last_seen, now, planned)
        elif up and not was_up:
            c.execute("UPDATE outages SET end=? WHERE device=? AND end IS NULL", (last_seen, dev))
            resolve_incident(c, now, down_key(dev), note=f"{dev} reporting again since {when(last_seen)}")
        c.execute("UPDATE avail_state SET up=?, since=CASE WHEN up=? THEN since ELSE ? END, reboots=?, "
                  "last_ok=CASE WHEN ? THEN ? ELSE last_ok END WHERE device=?",
                  (int(up), int(up), now, reboots, int(up), last_seen, dev))

    def _down(self, c: sqlite3.Connection, r: dict[str, Any], since: float, now: float, planned: bool) -> None:
        dev = r["device"]
        why = (f"unreachable: {r['error']}" if r["state"] == "unreachable"
               else f"no report since {when(r['last_seen'])}")
        c.execute("INSERT OR IGNORE INTO outages (device, start, kind, reason) VALUES (?,?,?,?)",
                  (dev, since, "down", why))
        agency = r["agency"]
        if planned:
            log.info("%s is down inside a planned maintenance window: recorded, no incident", dev)
            return
        who = f"{dev} ({agency})" if agency else dev
        open_incident(c, now, down_key(dev), "device_down", f"{who} is down since {when(since)}: {why}",
                      agency=agency, device=dev)

    def _reboot(self, c: sqlite3.Connection, r: dict[str, Any], last_ok: float | None, now: float,
                planned: bool) -> None:
        dev, boot = r["device"], float(r["boot_time"])
        start = min(last_ok, boot) if last_ok else boot
        c.execute("INSERT INTO outages (device, start, end, kind, reason) VALUES (?,?,?,?,?)",
                  (dev, start, boot, "reboot", f"rebooted at {when(boot)}"))
        if planned:
            return
        key = f"reboot:{dev}:{int(boot)}"
        summary = f"{dev} rebooted at {when(boot)} (down about {format_duration(boot - start)})"
        if open_incident(c, now, key, "reboot", summary, agency=r["agency"], device=dev):
            resolve_incident(c, now, key, note="a reboot is recorded; it is over once the device reports again")


def in_maintenance(c: sqlite3.Connection, device: str, agency: str | None, at: float) -> bool:
    return c.execute("SELECT 1 FROM maintenance WHERE start <= ? AND end > ? AND (device=? OR "
                     "(device IS NULL AND agency=?))", (at, at, device, agency)).fetchone() is not None


@dataclass(frozen=True)
class ReportRow:
    scope: str  # "agency" | "device"
    id: str
    agency: str
    figures: Availability
    since: float | None  # where the figures start: the period's start, or when the NOC began watching

    def as_dict(self) -> dict[str, Any]:
        f = self.figures
        return {"scope": self.scope, "id": self.id, "agency": self.agency,
                "availability_percent": None if f.ratio is None else round(f.ratio * 100, 4),
                "down_s": round(f.down_s, 1), "unplanned_down_s": round(f.unplanned_down_s, 1),
                "planned_down_s": round(f.planned_down_s, 1), "maintenance_s": round(f.maintenance_s, 1),
                "outages": f.outages, "period_s": f.period_s, "monitored_from": self.since}


def report(c: sqlite3.Connection, inv: Inventory, start: float, end: float, now: float) -> list[ReportRow]:
    """Availability per agency and per device over [start, end) (up to ``now`` for the current month).

    A device counts from when the NOC first watched it — time before that is not evidence of
    anything — and an agency from its first watched device; one never watched has no figure."""
    end_eff = min(end, now)
    watched = dict(c.execute("SELECT device, monitored_since FROM avail_state WHERE monitored_since IS NOT NULL"))

    def since(devices: list[str]) -> float | None:
        first = min((watched[d] for d in devices if d in watched), default=None)
        return None if first is None or first >= end_eff else max(start, first)

    outs: dict[str, list[Span]] = {}
    for dev, s, e in c.execute("SELECT device, start, end FROM outages WHERE start < ? AND (end IS NULL OR end > ?)",
                               (end_eff, start)):
        outs.setdefault(dev, []).append((s, e if e is not None else end_eff))
    maint = c.execute("SELECT device, agency, start, end FROM maintenance WHERE start < ? AND end > ?",
                      (end_eff, start)).fetchall()

    def windows(device: str | None, agency: str | None) -> list[Span]:
        return [(s, e) for d, a, s, e in maint if (device is not None and d == device)
                or (d is None and agency is not None and a == agency)]

    rows = []
    for a in inv.agencies:
        devs = [d for d in inv.devices if d.agency == a.id]
        # a device's downtime inside its own window is planned for the agency too
        down = union(sp for d in devs for sp in subtract(outs.get(d.id, []), windows(d.id, None)))
        begin = since([d.id for d in devs])
        rows.append(ReportRow("agency", a.id, a.id, availability(
            down, windows(None, a.id), end_eff if begin is None else begin, end_eff), begin))
    for d in inv.devices:
        begin = since([d.id])
        rows.append(ReportRow("device", d.id, d.agency or "", availability(
            outs.get(d.id, []), windows(d.id, d.agency), end_eff if begin is None else begin, end_eff), begin))
    return rows

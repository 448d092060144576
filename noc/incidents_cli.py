"""`pantau incidents …`, `pantau uptime report`, `pantau maintenance …`: the service desk's commands.

Acknowledging and resolving by hand, and every maintenance window, are audited (who, when, why).
The uptime report prints per agency and per device, as a table, JSON or CSV.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import click

from core.errors import ConfigError
from core.units import format_duration
from noc.availability import report
from noc.bw_cli import inventory_required, json_option
from noc.cli import db_option, operator_name, operator_option
from noc.incidents import acknowledge, get, listing, resolve_by_operator
from noc.inventory import load_inventory
from noc.state import StateStore
from noc.uptime import month_bounds
from noc.views import table, when


def _store(db: Path) -> StateStore:
    return StateStore(db)


def _line(i: dict[str, Any], now: float) -> list[str]:
    state = ("resolved" if i["resolved_at"] else "acked" if i["acked_at"] else "OPEN")
    dur = (i["resolved_at"] or now) - i["opened_at"]
    attached = f" (+{i.get('attached_count', 0)} attached)" if i.get("attached_count") else ""
    parent = f" -> #{i['parent_id']}" if i["parent_id"] else ""
    return [f"#{i['id']}{parent}", state, i["category"], i["agency"] or "-", i["device"] or "-",
            when(i["opened_at"]), format_duration(dur), (i["summary"][:90] + attached)]


@click.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="include resolved incidents")
@click.option("--agency", default=None)
@click.option("--category", default=None, help="device_down, reboot, bandwidth, backup")
@click.option("--attached", is_flag=True, help="also list the consequences attached to a root incident")
@db_option
@json_option
def incidents_list(include_resolved: bool, agency: str | None, category: str | None, attached: bool, db: Path,
                   as_json: bool) -> None:
    """Open incidents (root incidents with their attached consequences), newest first."""
    store = _store(db)
    rows = listing(store.conn, include_resolved=include_resolved, agency=agency, category=category,
                   attached=attached)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no open incidents" if not include_resolved else "no incidents")
        return
    now = time.time()
    click.echo(table(["id", "state", "category", "agency", "device", "opened", "for", "summary"],
                     [_line(i, now) for i in rows]))


@click.command("show")
@click.argument("incident_id", type=int)
@db_option
@json_option
def incidents_show(incident_id: int, db: Path, as_json: bool) -> None:
    """One incident: the service-desk fields, its attached consequences and its history."""
    inc = get(_store(db).conn, incident_id)
    if as_json:
        click.echo(json.dumps(inc, indent=2))
        return
    now = time.time()
    end = inc["resolved_at"] or now
    click.echo(f"incident #{inc['id']}  {inc['category']}  {'resolved' if inc['resolved_at'] else 'OPEN'}")
    for k, v in (("agency", inc["agency"]), ("device", inc["device"]), ("summary", inc["summary"]),
                 ("start", when(inc["opened_at"])), ("end", when(inc["resolved_at"])),
                 ("duration", format_duration(end - inc["opened_at"])),
                 ("acknowledged", f"{when(inc['acked_at'])} by {inc['acked_by']}" if inc["acked_at"] else "-"),
                 ("resolved by", inc["resolved_by"] or "-"), ("flaps", inc["flaps"]),
                 ("root", f"#{inc['parent_id']}" if inc["parent_id"] else "-")):
        click.echo(f"  {k:<13} {v if v is not None else '-'}")
    if inc["attached"]:
        click.echo(f"  attached consequences ({len(inc['attached'])}):")
        for a in inc["attached"]:
            click.echo(f"    #{a['id']} {a['category']} {'resolved' if a['resolved_at'] else 'open'}: {a['summary']}")
    click.echo("  history:")
    for e in inc["log"]:
        click.echo(f"    {when(e['at'])}  {e['actor']:<12} {e['action']:<12} {e['note']}")
    if inc["notifications"]:
        click.echo("  notifications:")
        for n in inc["notifications"]:
            to = f" to {n['target']}" if n["target"] else ""
            err = f" — {n['last_error']}" if n["status"] != "sent" and n["last_error"] else ""
            click.echo(f"    {n['event']:<9} via {n['channel']}{to}: {n['status']} after {n['attempts']} "
                       f"attempt(s){err}")


@click.command("ack")
@click.argument("incident_id", type=int)
@click.option("--note", default="", help="what you are doing about it")
@db_option
@operator_option
def incidents_ack(incident_id: int, note: str, db: Path, operator: str | None) -> None:
    """Acknowledge an incident: someone is on it."""
    store, who = _store(db), operator_name(operator)
    with store.tx() as c:
        inc = acknowledge(c, time.time(), incident_id, who, note)
        store.audit_tx(c, who, "incident.ack", f"#{incident_id}", None, {"note": note}, note)
    click.echo(f"incident #{incident_id} acknowledged by {inc['acked_by']} at {when(inc['acked_at'])}")


@click.command("resolve")
@click.argument("incident_id", type=int)
@click.option("--note", required=True, help="what was done (kept in the incident's history and the audit log)")
@db_option
@operator_option
def incidents_resolve(incident_id: int, note: str, db: Path, operator: str | None) -> None:
    """Resolve an incident by hand (a condition pantau watches reopens it if it is still there)."""
    store, who = _store(db), operator_name(operator)
    with store.tx() as c:
        resolve_by_operator(c, time.time(), incident_id, who, note)
        store.audit_tx(c, who, "incident.resolve", f"#{incident_id}", None, {"note": note}, note)
    click.echo(f"incident #{incident_id} resolved by {who}")


@click.command("report")
@click.option("--month", default=None, help="YYYY-MM (default: this month, up to now)")
@click.option("--day", default=None, help="YYYY-MM-DD instead of a month (UTC)")
@inventory_required
@db_option
@click.option("--csv", "as_csv", is_flag=True, help="CSV for the service desk's spreadsheet")
@json_option
def uptime_report(month: str | None, day: str | None, inventory: Path, db: Path, as_csv: bool,
                  as_json: bool) -> None:
    """Availability per agency and per device for a month or a day; maintenance windows excluded and shown."""
    import calendar

    if day is not None:
        try:
            start = float(calendar.timegm(time.strptime(day, "%Y-%m-%d")))
        except ValueError:
            raise click.BadParameter(f"{day!r} is not a day like 2026-11-22", param_hint="--day") from None
        end, month = start + 86400, day
    else:
        month = month or time.strftime("%Y-%m", time.gmtime())
        try:
            start, end = month_bounds(month)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--month") from None
    inv = load_inventory(inventory)
    store = _store(db)
    rows = [r.as_dict() for r in report(store.conn, inv, start, end, time.time())]
    if as_json:
        click.echo(json.dumps({"period": month, "start": start, "end": end, "rows": rows}, indent=2))
    elif as_csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["scope"])
        w.writeheader()
        w.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo(f"availability, {month} (UTC){' so far' if end > time.time() else ''}; "
                   "maintenance windows are not charged; counted from when the NOC began watching")

        def counted_from(at: float | None) -> str:
            if at is None:
                return "never watched"
            return "" if at <= start else time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(at))

        click.echo(table(["scope", "id", "availability", "unplanned down", "planned down", "maintenance",
                          "outages", "counted from"],
                         [[r["scope"], r["id"], "-" if r["availability_percent"] is None
                           else f"{r['availability_percent']:.3f}%", format_duration(r["unplanned_down_s"]),
                           format_duration(r["planned_down_s"]), format_duration(r["maintenance_s"]),
                           str(r["outages"]), counted_from(r["monitored_from"])] for r in rows]))


@click.command("add")
@click.option("--device", default=None)
@click.option("--agency", default=None, help="every device of the agency")
@click.option("--start", "start_s", required=True, help="ISO time (2026-12-01T22:00Z) or 'now'")
@click.option("--end", "end_s", required=True, help="ISO time, or a duration from the start (2h)")
@click.option("--reason", required=True, help="change ticket or memo")
@inventory_required
@db_option
@operator_option
def maintenance_add(device: str | None, agency: str | None, start_s: str, end_s: str, reason: str, inventory: Path,
                    db: Path, operator: str | None) -> None:
    """Declare a planned maintenance window for a device or a whole agency."""
    from datetime import datetime

    from core.units import parse_duration

    if bool(device) == bool(agency):
        raise click.UsageError("give exactly one of --device or --agency")
    inv = load_inventory(inventory)
    if device and inv.device(device) is None:
        raise ConfigError(f"device {device!r} is not in the inventory")
    if agency and inv.agency(agency) is None:
        raise ConfigError(f"agency {agency!r} is not in the inventory")

    def at(text: str) -> float:
        if text == "now":
            return time.time()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    try:
        start = at(start_s)
        try:
            end = start + parse_duration(end_s)
        except ValueError:
            end = at(end_s)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; use an ISO time like 2026-12-01T22:00Z") from None
    if end <= start:
        raise click.BadParameter("the window must end after it starts", param_hint="--end")
    store, who = _store(db), operator_name(operator)
    with store.tx() as c:
        c.execute("INSERT INTO maintenance (device, agency, start, end, reason, created_by, created_at) "
                  "VALUES (?,?,?,?,?,?,?)", (device, agency, start, end, reason, who, time.time()))
        store.audit_tx(c, who, "maintenance.add", device or agency or "", None,
                       {"start": start, "end": end}, reason)
    click.echo(f"maintenance for {device or agency}: {when(start)} – {when(end)} ({reason})")


@click.command("list")
@db_option
@json_option
def maintenance_list(db: Path, as_json: bool) -> None:
    """Maintenance windows, latest first."""
    rows = [dict(zip(("id", "device", "agency", "start", "end", "reason", "created_by"), r, strict=True))
            for r in _store(db).conn.execute("SELECT id, device, agency, start, end, reason, created_by "
                                             "FROM maintenance ORDER BY start DESC LIMIT 200")]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(table(["id", "for", "start", "end", "reason", "by"],
                     [[str(r["id"]), r["device"] or f"agency {r['agency']}", when(r["start"]), when(r["end"]),
                       r["reason"], r["created_by"]] for r in rows]))

"""Incidents for the service desk: one per real problem, with a lifecycle open → acknowledged → resolved.

* **Deduplicated**: one open incident per problem key; opening it again changes nothing.
* **Flap-damped**: a problem that comes back within ``FLAP_WINDOW_S`` of its resolution reopens the
  same incident (its ``flaps`` count grows) instead of opening a new one; notifications wait a
  hold time (see :mod:`noc.notify`), so a blip never pages anyone.
* **Topology-aware**: a device reached through another (``via`` in the inventory) has its incidents
  attached to the open *down* incident of the nearest upstream device — the root — instead of
  standing alone; a root that opens later adopts the open incidents downstream of it. Attached
  incidents are not notified; they resolve by themselves when their own condition clears.
Every change is written to ``incident_log`` (who, when, what, note).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

log = logging.getLogger("pantau.incidents")

FLAP_WINDOW_S = 600.0
COLUMNS = ("id", "key", "category", "agency", "device", "summary", "opened_at", "resolved_at", "acked_at",
           "acked_by", "resolved_by", "parent_id", "flaps")
_SELECT = ("SELECT id, key, category, agency, device, summary, opened_at, resolved_at, acked_at, acked_by, "
           "resolved_by, parent_id, flaps FROM incidents ")


def down_key(device: str) -> str:
    return f"down:{device}"


def open_incident(c: sqlite3.Connection, now: float, key: str, category: str, summary: str,
                  agency: str | None = None, device: str | None = None, detail: Any = None,
                  consequence: bool = False) -> bool:
    """Open ``key`` unless it is open already (reopen it if it flapped); True when it was (re)opened.

    ``consequence``: the problem can follow from ``device`` being cut off (a missed heartbeat, a
    late backup), so it is attached to an upstream outage; a corrupt pack or a breach never is."""
    if c.execute("SELECT 1 FROM incidents WHERE key=? AND resolved_at IS NULL", (key,)).fetchone():
        return False
    parent = root_for(c, device) if device and (consequence or category == "device_down") else None
    recent = c.execute("SELECT id FROM incidents WHERE key=? AND resolved_at >= ? ORDER BY id DESC LIMIT 1",
                       (key, now - FLAP_WINDOW_S)).fetchone()
    if recent:
        iid = int(recent[0])
        c.execute("UPDATE incidents SET resolved_at=NULL, resolved_by=NULL, flaps=flaps+1, summary=?, parent_id=? "
                  "WHERE id=?", (summary, parent, iid))
        _log(c, iid, now, "pantau", "reopened", f"back within {FLAP_WINDOW_S / 60:.0f} min of its resolution")
        log.warning("incident #%d reopened (flapping): %s", iid, summary)
    else:
        cur = c.execute("INSERT INTO incidents (key, category, agency, device, summary, opened_at, detail, parent_id, "
                        "consequence) VALUES (?,?,?,?,?,?,?,?,?)",
                        (key, category, agency, device, summary, now, json.dumps(detail), parent,
                         int(consequence or category == "device_down")))
        iid = int(cur.lastrowid or 0)
        _log(c, iid, now, "pantau", "opened", summary)
        if parent is None:
            log.warning("incident opened: %s", summary)
        else:
            log.info("incident #%d attached to root incident #%d: %s", iid, parent, summary)
    if category == "device_down" and device and parent is None:
        _adopt_downstream(c, iid, device, now)
    return True


def resolve_incident(c: sqlite3.Connection, now: float, key: str, by: str = "pantau", note: str = "") -> bool:
    row = c.execute("SELECT id FROM incidents WHERE key=? AND resolved_at IS NULL", (key,)).fetchone()
    if not row:
        return False
    c.execute("UPDATE incidents SET resolved_at=?, resolved_by=? WHERE id=?", (now, by, row[0]))
    _log(c, int(row[0]), now, by, "resolved", note)
    log.info("incident resolved: %s", key)
    return True


def acknowledge(c: sqlite3.Connection, now: float, incident_id: int, who: str, note: str = "") -> dict[str, Any]:
    inc = get(c, incident_id)
    if inc["resolved_at"] is not None:
        raise _not_open(incident_id, "acknowledged")
    c.execute("UPDATE incidents SET acked_at=coalesce(acked_at, ?), acked_by=coalesce(acked_by, ?) WHERE id=?",
              (now, who, incident_id))
    _log(c, incident_id, now, who, "acknowledged", note)
    return get(c, incident_id)


def resolve_by_operator(c: sqlite3.Connection, now: float, incident_id: int, who: str, note: str) -> dict[str, Any]:
    inc = get(c, incident_id)
    if inc["resolved_at"] is not None:
        raise _not_open(incident_id, "resolved")
    c.execute("UPDATE incidents SET resolved_at=?, resolved_by=? WHERE id=?", (now, who, incident_id))
    _log(c, incident_id, now, who, "resolved", note)
    return get(c, incident_id)


def get(c: sqlite3.Connection, incident_id: int) -> dict[str, Any]:
    from core.errors import NotFoundError

    row = c.execute(_SELECT + "WHERE id=?", (incident_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"there is no incident #{incident_id}; `pantau incidents list --all` lists them")
    inc = dict(zip(COLUMNS, row, strict=True))
    inc["attached"] = [dict(zip(COLUMNS, r, strict=True)) for r in c.execute(
        _SELECT + "WHERE parent_id=? ORDER BY id", (incident_id,))]
    inc["log"] = [dict(zip(("at", "actor", "action", "note"), r, strict=True)) for r in c.execute(
        "SELECT at, actor, action, note FROM incident_log WHERE incident_id=? ORDER BY id", (incident_id,))]
    inc["notifications"] = [dict(zip(("event", "channel", "target", "status", "attempts", "sent_at", "last_error"),
                                     r, strict=True)) for r in c.execute(
        "SELECT event, channel, target, status, attempts, sent_at, last_error FROM notifications "
        "WHERE incident_id=? ORDER BY id", (incident_id,))]
    return inc


def listing(c: sqlite3.Connection, *, include_resolved: bool = False, agency: str | None = None,
            category: str | None = None, attached: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    """Incidents newest first: roots only (with a count of what is attached) unless ``attached``."""
    rows = c.execute(
        _SELECT + "WHERE (? OR resolved_at IS NULL) AND (? IS NULL OR agency=?) "
        "AND (? IS NULL OR category=?) AND (? OR parent_id IS NULL) ORDER BY opened_at DESC, id DESC LIMIT ?",
        (int(include_resolved), agency, agency, category, category, int(attached), limit)).fetchall()
    out = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    counts = dict(c.execute("SELECT parent_id, count(*) FROM incidents WHERE parent_id IS NOT NULL "
                            "GROUP BY parent_id").fetchall())
    for inc in out:
        inc["attached_count"] = counts.get(inc["id"], 0)
        inc["duration_s"] = None if inc["resolved_at"] is None else inc["resolved_at"] - inc["opened_at"]
    return out


def open_incidents(c: sqlite3.Connection, category: str | None = None) -> list[dict[str, Any]]:
    return listing(c, category=category, attached=True)


def root_for(c: sqlite3.Connection, device: str) -> int | None:
    """The open *down* incident of the nearest device upstream of ``device`` (its root), if any."""
    vias = dict(c.execute("SELECT id, via FROM devices").fetchall())
    hop, seen = vias.get(device), {device}
    while hop and hop not in seen:
        seen.add(hop)
        row = c.execute("SELECT id, parent_id FROM incidents WHERE key=? AND resolved_at IS NULL",
                        (down_key(hop),)).fetchone()
        if row:
            return int(row[1] or row[0])
        hop = vias.get(hop)
    return None


def detach_orphans(c: sqlite3.Connection, now: float, grace_s: float = 0.0) -> int:
    """Attached incidents still open ``grace_s`` after their root resolved stand on their own again
    (the grace lets consequences clear by themselves once the root is back)."""
    rows = c.execute("SELECT i.id FROM incidents i JOIN incidents p ON p.id = i.parent_id "
                     "WHERE i.resolved_at IS NULL AND p.resolved_at IS NOT NULL AND p.resolved_at <= ?",
                     (now - grace_s,)).fetchall()
    for (iid,) in rows:
        c.execute("UPDATE incidents SET parent_id=NULL WHERE id=?", (iid,))
        _log(c, iid, now, "pantau", "detached", "its root incident resolved but this problem remains")
    return len(rows)


def _adopt_downstream(c: sqlite3.Connection, root: int, device: str, now: float) -> None:
    vias = dict(c.execute("SELECT id, via FROM devices").fetchall())

    def behind(d: str) -> bool:
        hop, seen = vias.get(d), {d}
        while hop and hop not in seen:
            if hop == device:
                return True
            seen.add(hop)
            hop = vias.get(hop)
        return False

    for iid, dev in c.execute("SELECT id, device FROM incidents WHERE resolved_at IS NULL AND parent_id IS NULL "
                              "AND consequence = 1 AND device IS NOT NULL AND id != ?", (root,)).fetchall():
        if behind(dev):
            c.execute("UPDATE incidents SET parent_id=? WHERE id=?", (root, iid))
            # its children (if it was a root itself) follow it
            c.execute("UPDATE incidents SET parent_id=? WHERE parent_id=?", (root, iid))
            _log(c, iid, now, "pantau", "attached", f"a consequence of incident #{root}")


def _log(c: sqlite3.Connection, iid: int, now: float, actor: str, action: str, note: str) -> None:
    c.execute("INSERT INTO incident_log (incident_id, at, actor, action, note) VALUES (?,?,?,?,?)",
              (iid, now, actor, action, note))


def _not_open(incident_id: int, what: str) -> Exception:
    from core.errors import PantauError

    return PantauError(f"incident #{incident_id} is already resolved and cannot be {what}")

"""Incidents: one open row per problem key, opened once and resolved once (the uptime issue adds the lifecycle).

Opening an incident that is already open changes nothing, so a problem seen on every check does
not become a storm; resolving one that is not open is a no-op.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

log = logging.getLogger("pantau.incidents")


def open_incident(c: sqlite3.Connection, now: float, key: str, category: str, summary: str,
                  agency: str | None = None, device: str | None = None, detail: Any = None) -> bool:
    """Open ``key`` unless it is open already; True when a new incident was opened."""
    cur = c.execute("INSERT INTO incidents (key, category, agency, device, summary, opened_at, detail) "
                    "VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    (key, category, agency, device, summary, now, json.dumps(detail)))
    if cur.rowcount:
        log.warning("incident opened: %s", summary)
    return bool(cur.rowcount)


def resolve_incident(c: sqlite3.Connection, now: float, key: str) -> bool:
    cur = c.execute("UPDATE incidents SET resolved_at=? WHERE key=? AND resolved_at IS NULL", (now, key))
    if cur.rowcount:
        log.info("incident resolved: %s", key)
    return bool(cur.rowcount)


def open_incidents(c: sqlite3.Connection, category: str | None = None) -> list[dict[str, Any]]:
    rows = c.execute("SELECT id, key, category, agency, device, summary, opened_at FROM incidents "
                     "WHERE resolved_at IS NULL AND (? IS NULL OR category=?) ORDER BY opened_at",
                     (category, category)).fetchall()
    return [dict(zip(("id", "key", "category", "agency", "device", "summary", "opened_at"), r, strict=True))
            for r in rows]

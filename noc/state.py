"""The NOC state store: SQLite in WAL mode with migrations.

Holds the inventory as last synced, agent credentials (hashed tokens only), the dedup ledger of
accepted reports, latest state per device and interface, rate rollups, the TSDB outbox and the
append-only, hash-chained audit log. ``synchronous=FULL``: a commit has reached the disk before
the collector acknowledges a report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.ingest import CommitResult
from collectors.snmp.poller import DevicePoll
from core.errors import NotFoundError, PantauError, ReportError, StateError
from noc.migrations import MIGRATIONS
from noc.model import Device, DeviceKind, InterfaceMapping, Inventory
from noc.reports import apply_batch
from noc.snmp import apply_poll

log = logging.getLogger("pantau.state")

TOKEN_PREFIX = "pnt_"  # noqa: S105 - a prefix, not a secret
# Rollup resolutions (seconds) and how long each is kept: 5-minute buckets for a year
# cover monthly 95th percentiles with room to compare months.
ROLLUP_RETENTION = {60: 8 * 86400, 300: 400 * 86400}
BACKUP_HISTORY_S = 400 * 86400.0  # a verdict every pass; a year and a month of them for the audit
LEDGER_RETENTION_S = 35 * 86400
DEFAULT_RECONCILE_S = 300.0  # a router seen only by the reconciler is late after 3 missed rounds


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AgentInfo:
    agent: str
    agency: str | None
    active: bool
    created_at: float | None
    created_by: str | None
    revoked_at: float | None
    last_seen: float | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    reason: str


class StateStore:
    """One connection to the NOC database. Use one store per thread."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time, outbox_max: int = 5_000_000) -> None:
        self.path = path
        self.clock = clock
        self.outbox_max = outbox_max
        self.devices: dict[str, Device] = {}
        self.agency_ids: set[str] = set()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot open the NOC state database {path}: {exc}") from exc
        self._load_devices()

    def close(self) -> None:
        self.conn.close()

    # -- schema -----------------------------------------------------------------------------
    def _migrate(self) -> None:
        (version,) = self.conn.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise StateError(
                f"{self.path} was written by a newer pantau (schema {version}, this one knows "
                f"{len(MIGRATIONS)}); upgrade pantau before using it"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            # one script, one transaction: a migration is applied whole or not at all
            self.conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[number - 1]}\nPRAGMA user_version={number};\nCOMMIT;"
            )
            log.info("NOC state %s migrated to schema %d", self.path, number)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken immediately so writers never deadlock."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # -- inventory ----------------------------------------------------------------------------
    def sync_inventory(self, inv: Inventory) -> None:
        """Make the stored inventory equal to ``inv`` (the file is the source of truth)."""
        with self.tx() as c:
            c.execute("DELETE FROM agencies")
            c.execute("DELETE FROM uplinks")
            c.execute("DELETE FROM devices")
            c.execute("DELETE FROM iface_map")
            c.executemany("INSERT INTO agencies VALUES (?,?,?)", [(a.id, a.name, a.admin_email) for a in inv.agencies])
            c.executemany("INSERT INTO uplinks VALUES (?,?,?)", [(u.id, u.down_bps, u.up_bps) for u in inv.uplinks])
            c.executemany(
                "INSERT INTO devices (id, agency, kind, address, agent, vendor, site, via) VALUES (?,?,?,?,?,?,?,?)",
                [(d.id, d.agency, d.kind.value, d.address, int(d.agent), d.vendor.value if d.vendor else None, d.site,
                  d.via) for d in inv.devices],
            )
            c.executemany("INSERT INTO iface_map VALUES (?,?,?)",
                          [(d.id, m.name, m.agency) for d in inv.devices for m in d.interfaces])
        self.adopt_inventory(inv)

    def adopt_inventory(self, inv: Inventory) -> None:
        """Use ``inv``'s devices for ingest without writing it (another connection synced it)."""
        self.devices = {d.id: d for d in inv.devices}
        self.agency_ids = {a.id for a in inv.agencies}

    def _load_devices(self) -> None:
        """Rebuild the device map from the database (for a process that did not sync an inventory)."""
        maps: dict[str, list[InterfaceMapping]] = {}
        for dev, iface, agency in self.conn.execute("SELECT device, iface, agency FROM iface_map"):
            maps.setdefault(dev, []).append(InterfaceMapping(iface, agency))
        self.devices = {
            r[0]: Device(r[0], DeviceKind(r[2]), r[3], r[1], bool(r[4]), interfaces=tuple(maps.get(r[0], [])))
            for r in self.conn.execute("SELECT id, agency, kind, address, agent FROM devices")
        }
        self.agency_ids = {r[0] for r in self.conn.execute("SELECT id FROM agencies")}

    # -- agents and tokens --------------------------------------------------------------------
    def add_agent(self, device_id: str, actor: str, reason: str = "", rotate: bool = False) -> str:
        """Issue a token for the agent of ``device_id``; return it (only its hash is stored)."""
        dev = self.devices.get(device_id)
        if dev is None:
            raise NotFoundError(f"device {device_id!r} is not in the inventory; add it there first")
        if not dev.agent:
            raise PantauError(f"device {device_id!r} is not marked agent = true in the inventory")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.tx() as c:
            active = c.execute("SELECT count(*) FROM agent_tokens WHERE agent=? AND revoked_at IS NULL",
                               (device_id,)).fetchone()[0]
            if active and not rotate:
                raise PantauError(f"agent {device_id!r} already has a token; use --rotate to replace it "
                                  "(the old token stops working at once)")
            c.execute("UPDATE agent_tokens SET revoked_at=?, revoked_by=? WHERE agent=? AND revoked_at IS NULL",
                      (now, actor, device_id))
            c.execute("INSERT INTO agent_tokens VALUES (?,?,?,?,NULL,NULL)", (hash_token(token), device_id, now, actor))
            self.audit_tx(c, actor, "agent.token.rotate" if active else "agent.add", device_id, None,
                        {"agency": dev.agency}, reason)
        return token

    def revoke_agent(self, device_id: str, actor: str, reason: str = "") -> int:
        now = self.clock()
        with self.tx() as c:
            n = c.execute("UPDATE agent_tokens SET revoked_at=?, revoked_by=? WHERE agent=? AND revoked_at IS NULL",
                          (now, actor, device_id)).rowcount
            if n == 0:
                raise NotFoundError(f"agent {device_id!r} has no active token")
            self.audit_tx(c, actor, "agent.revoke", device_id, {"active_tokens": n}, {"active_tokens": 0}, reason)
        return n

    def list_agents(self) -> list[AgentInfo]:
        rows = self.conn.execute(
            """SELECT d.id, d.agency,
                      (SELECT count(*) FROM agent_tokens t WHERE t.agent=d.id AND t.revoked_at IS NULL),
                      (SELECT max(created_at) FROM agent_tokens t WHERE t.agent=d.id),
                      (SELECT created_by FROM agent_tokens t WHERE t.agent=d.id ORDER BY created_at DESC LIMIT 1),
                      (SELECT max(revoked_at) FROM agent_tokens t WHERE t.agent=d.id),
                      s.last_seen
               FROM devices d LEFT JOIN device_state s ON s.device=d.id WHERE d.agent=1 ORDER BY d.agency, d.id"""
        ).fetchall()
        return [AgentInfo(r[0], r[1], bool(r[2]), r[3], r[4], None if r[2] else r[5], r[6]) for r in rows]

    def authenticate(self, token: str) -> str | None:
        """The agent a token belongs to, if it is active and its device is in the inventory."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        row = self.conn.execute(
            "SELECT t.agent FROM agent_tokens t JOIN devices d ON d.id=t.agent "
            "WHERE t.token_hash=? AND t.revoked_at IS NULL", (hash_token(token),)
        ).fetchone()
        return row[0] if row else None

    # -- audit ----------------------------------------------------------------------------------
    def audit_tx(self, c: sqlite3.Connection, actor: str, action: str, target: str, before: Any, after: Any,
               reason: str) -> None:
        row = c.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else "0" * 64
        at = self.clock()
        b, a = json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)
        digest = _audit_hash(prev, at, actor, action, target, b, a, reason)
        c.execute("INSERT INTO audit (at, actor, action, target, before, after, reason, prev_hash, hash) "
                  "VALUES (?,?,?,?,?,?,?,?,?)", (at, actor, action, target, b, a, reason, prev, digest))

    def audit(self, actor: str, action: str, target: str, before: Any, after: Any, reason: str = "") -> None:
        """Append one operator action to the audit log."""
        with self.tx() as c:
            self.audit_tx(c, actor, action, target, before, after, reason)

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        rows = self.conn.execute("SELECT id, at, actor, action, target, before, after, reason FROM audit "
                                 "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "null"), json.loads(r[6] or "null"),
                           r[7]) for r in reversed(rows)]

    def verify_audit(self) -> tuple[int, int | None]:
        """Check the hash chain; return (entries checked, id of the first broken entry or None)."""
        prev = "0" * 64
        n = 0
        for r in self.conn.execute("SELECT id, at, actor, action, target, before, after, reason, prev_hash, hash "
                                   "FROM audit ORDER BY id"):
            n += 1
            if r[8] != prev or _audit_hash(prev, r[1], r[2], r[3], r[4], r[5], r[6], r[7]) != r[9]:
                return n, r[0]
            prev = r[9]
        return n, None

    # -- TSDB outbox ---------------------------------------------------------------------------
    def outbox_peek(self, limit: int) -> list[tuple[int, str]]:
        return self.conn.execute("SELECT id, line FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()

    def outbox_delete(self, upto_id: int) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM outbox WHERE id <= ?", (upto_id,))

    def outbox_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def outbox_add(self, c: sqlite3.Connection, lines: list[str]) -> None:
        """Queue lines inside the caller's transaction; enforce the bound by dropping the oldest."""
        c.executemany("INSERT INTO outbox (line) VALUES (?)", [(ln,) for ln in lines])
        lo, hi = c.execute("SELECT min(id), max(id) FROM outbox").fetchone()
        if lo is not None and hi - lo + 1 > self.outbox_max:
            cut = hi - self.outbox_max
            dropped = c.execute("DELETE FROM outbox WHERE id <= ?", (cut,)).rowcount
            log.warning("the TSDB outbox is full (%d lines): dropped the %d oldest metric lines; the time-series "
                        "store has been unreachable for long: check --tsdb-url", self.outbox_max, dropped)

    # -- reports --------------------------------------------------------------------------------
    def commit_batch(self, agent: str, batch: dict[str, Any], received_at: float) -> CommitResult:
        """Durably record a validated batch (see :mod:`noc.reports`)."""
        dev = self.devices.get(agent)
        if dev is None:
            self._load_devices()
            dev = self.devices.get(agent)
        if dev is None:
            raise ReportError(f"device {agent!r} is no longer in the inventory")
        try:
            with self.tx() as c:
                return apply_batch(c, self, dev, batch, received_at)
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full, I/O error
            raise StateError(f"the NOC state database {self.path} did not take the batch: {exc}") from exc

    def apply_poll(self, poll: DevicePoll) -> None:
        """Durably record one SNMP poll (see :mod:`noc.snmp`)."""
        dev = self.devices.get(poll.device)
        if dev is None:
            raise NotFoundError(f"device {poll.device!r} is not in the inventory")
        with self.tx() as c:
            apply_poll(c, self, dev, poll, self.agency_ids)

    def prune(self, now: float | None = None) -> dict[str, int]:
        """Drop rollups and ledger rows past their retention; returns rows removed per table."""
        now = self.clock() if now is None else now
        out = {}
        with self.tx() as c:
            n = 0
            for res, keep in ROLLUP_RETENTION.items():
                n += c.execute("DELETE FROM rollups WHERE res=? AND bucket < ?", (res, now - keep)).rowcount
            out["rollups"] = n
            cutoff = now - LEDGER_RETENTION_S
            c.execute("""INSERT INTO report_floor (agent, seq)
                         SELECT agent, max(seq) FROM reports WHERE received_at < ? GROUP BY agent
                         ON CONFLICT(agent) DO UPDATE SET seq=max(seq, excluded.seq)""", (cutoff,))
            out["reports"] = c.execute("DELETE FROM reports WHERE received_at < ?", (cutoff,)).rowcount
            out["backup_verdicts"] = c.execute("DELETE FROM backup_verdicts WHERE at < ?",
                                               (now - BACKUP_HISTORY_S,)).rowcount
        return out

    # -- reading ----------------------------------------------------------------------------------
    def status_rows(self, now: float | None = None) -> list[dict[str, Any]]:
        """One row per device: agency, kind, last seen, counted in/out rate, uptime, state."""
        now = self.clock() if now is None else now
        rows = self.conn.execute(
            """SELECT d.agency, d.id, d.kind, d.address, s.last_seen, s.interval_s, s.uptime_s, s.boot_time,
                      s.cpu_percent, s.mem_used, s.mem_total, s.clock_skew_s, s.spool_dropped, s.source,
                      s.last_error, s.last_error_at, s.reboots, s.sys_name,
                      (SELECT sum(rx_bps) FROM iface_state i WHERE i.device=d.id AND i.agency IS NOT NULL),
                      (SELECT sum(tx_bps) FROM iface_state i WHERE i.device=d.id AND i.agency IS NOT NULL),
                      b.checked_at, b.in_sync, b.last_error, b.every_s
               FROM devices d LEFT JOIN device_state s ON s.device=d.id LEFT JOIN bw_router b ON b.device=d.id
               ORDER BY coalesce(d.agency, ''), d.id"""
        ).fetchall()
        out = []
        for r in rows:
            last_seen, source = r[4], r[13]
            error, error_at = r[14], r[15]
            late_after = max(3 * (r[5] or 30.0), 30.0)
            if last_seen is None and error_at is None and r[20] is not None:
                # a shaping router neither reporting nor polled: the reconciler's SSH read is its contact
                source = "ssh"
                if r[21] is None:
                    error, error_at = r[22], r[20]
                else:
                    last_seen, late_after = r[20], 3 * (r[23] or DEFAULT_RECONCILE_S)
            if error_at is not None and (last_seen is None or error_at >= last_seen):
                state = "unreachable"
            elif last_seen is None:
                state = "never seen"
            else:
                state = "ok" if now - last_seen <= late_after else "late"
            out.append({
                "agency": r[0], "device": r[1], "kind": r[2], "address": r[3], "state": state,
                "last_seen": last_seen, "age_s": None if last_seen is None else max(0.0, now - last_seen),
                "uptime_s": None if r[6] is None else r[6] + (now - last_seen if state == "ok" else 0.0),
                "boot_time": r[7], "cpu_percent": r[8], "mem_used": r[9], "mem_total": r[10],
                "clock_skew_s": r[11], "spool_dropped": r[12], "source": source,
                "error": error if state == "unreachable" else None, "reboots": r[16] or 0, "sys_name": r[17],
                "in_bps": r[18] if state == "ok" else None, "out_bps": r[19] if state == "ok" else None,
            })
        return out

    def agency_usage(self, now: float | None = None) -> dict[str, tuple[float, float]]:
        """Current (down, up) bit/s per agency, seen from the agency, over every device that reported recently."""
        now = self.clock() if now is None else now
        fresh = {r["device"] for r in self.status_rows(now) if r["state"] == "ok"}
        out: dict[str, tuple[float, float]] = {}
        for dev, agency, rx, tx in self.conn.execute(
                "SELECT device, agency, rx_bps, tx_bps FROM iface_state WHERE agency IS NOT NULL"):
            if dev in fresh:
                d = self.devices.get(dev)
                down, up = (rx, tx) if d is None or d.download_is_rx else (tx, rx)
                cur = out.get(agency, (0.0, 0.0))
                out[agency] = (cur[0] + (down or 0.0), cur[1] + (up or 0.0))
        return out

    def rollup_rates(self, scope: str, key_prefix: str, res: int, since: float) -> list[tuple[int, float, float]]:
        """(bucket, rx_bps, tx_bps) summed over keys starting with ``key_prefix``."""
        rows = self.conn.execute(
            "SELECT bucket, sum(rx_bytes * 8.0 / seconds), sum(tx_bytes * 8.0 / seconds) FROM rollups "
            "WHERE scope=? AND res=? AND bucket >= ? AND key >= ? AND key < ? AND seconds > 0 "
            "GROUP BY bucket ORDER BY bucket",
            (scope, res, since, key_prefix, key_prefix + "\U0010ffff"),
        ).fetchall()
        return [(int(b), float(rx), float(tx)) for b, rx, tx in rows]


def _audit_hash(prev: str, at: float, actor: str, action: str, target: str, before: str, after: str,
                reason: str) -> str:
    payload = json.dumps([prev, repr(at), actor, action, target, before, after, reason], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()

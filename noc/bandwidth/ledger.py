"""The allocation book in the NOC store: load it, change it in one audited transaction, let loans expire.

Every change reads the book, applies the pure operation from :mod:`noc.bandwidth.alloc` and
writes the result with its audit entry (who, when, before, after, why) in one ``BEGIN IMMEDIATE``
transaction, so two operators cannot interleave and a refused change leaves nothing behind.
Uplink capacities and floors come from the inventory; base rates and loans live in the store.
The inventory's ``[[allocations]]`` only seed agencies the store has never seen.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import AllocationError
from noc.bandwidth import alloc
from noc.bandwidth.alloc import Book, Loan, Rates
from noc.model import Inventory
from noc.state import AuditEntry, StateStore

SYSTEM_ACTOR = "pantau"


@dataclass(frozen=True)
class Change:
    """What one accepted change did: the rates before and after, per agency touched."""

    action: str
    before: dict[str, Rates]
    after: dict[str, Rates]
    dry_run: bool
    loan: Loan | None = None


def _read_book(c: sqlite3.Connection, inv: Inventory) -> Book:
    base = {r[0]: Rates(*r[2:6]) for r in c.execute("SELECT agency, uplink, g_down, c_down, g_up, c_up FROM bw_alloc")}
    uplink_of = {r[0]: r[1] for r in c.execute("SELECT agency, uplink FROM bw_alloc")}
    loans = tuple(Loan(*r) for r in c.execute(
        "SELECT id, src, dst, direction, amount, ceil_raise, until FROM bw_loans WHERE ended_at IS NULL ORDER BY id"))
    return Book(capacity={u.id: (u.down_bps, u.up_bps) for u in inv.uplinks}, uplink_of=uplink_of, base=base,
                floors={a.agency: (a.floor_down, a.floor_up) for a in inv.allocations}, loans=loans)


def _touched(old: Book, new: Book, now: float) -> tuple[dict[str, Rates], dict[str, Rates]]:
    before, after = old.effective(now), new.effective(now)
    touched = sorted(a for a in after if before.get(a) != after[a])
    return {k: before[k] for k in touched}, {k: after[k] for k in touched}


def _rates_json(rates: dict[str, Rates]) -> dict[str, Any]:
    return {a: r.as_dict() for a, r in sorted(rates.items())}


class Ledger:
    """Allocation changes against one :class:`StateStore` and the inventory that gives capacities."""

    def __init__(self, store: StateStore, inv: Inventory, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.inv = inv
        self.clock = clock or store.clock

    def book(self) -> Book:
        return _read_book(self.store.conn, self.inv)

    def seed(self) -> list[str]:
        """Give every inventory allocation the store lacks its inventory rates; returns the agencies seeded."""
        seeded = []
        with self.store.tx() as c:
            have = {r[0] for r in c.execute("SELECT agency FROM bw_alloc")}
            for a in self.inv.allocations:
                if a.agency in have:
                    continue
                rates = Rates(a.guaranteed_down, a.ceiling_down, a.guaranteed_up, a.ceiling_up)
                self._write_base(c, a.agency, a.uplink, rates, "inventory")
                self.store.audit_tx(c, "inventory", "bw.seed", a.agency, None, {a.agency: rates.as_dict()},
                                    f"initial allocation from {self.inv.source or 'the inventory'}")
                seeded.append(a.agency)
        return seeded

    def _write_base(self, c: sqlite3.Connection, agency: str, uplink: str, r: Rates, actor: str) -> None:
        c.execute("INSERT INTO bw_alloc VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(agency) DO UPDATE SET "
                  "g_down=excluded.g_down, c_down=excluded.c_down, g_up=excluded.g_up, c_up=excluded.c_up, "
                  "updated_at=excluded.updated_at, updated_by=excluded.updated_by",
                  (agency, uplink, r.g_down, r.c_down, r.g_up, r.c_up, self.clock(), actor))

    def _change(self, action: str, target: str, actor: str, reason: str, dry_run: bool,
                op: Callable[[Book, float], Book]) -> Change:
        if not reason.strip():
            raise AllocationError("every bandwidth change needs a reason (--reason \"memo 12/2026: …\")")
        now = self.clock()
        if dry_run:
            old = self.book()
            new = op(old, now)
            b, a = _touched(old, new, now)
            added = [loan for loan in new.loans if loan not in old.loans]
            return Change(action, b, a, True, added[0] if added else None)
        with self.store.tx() as c:
            old = _read_book(c, self.inv)
            new = op(old, now)
            b, a = _touched(old, new, now)
            added = [loan for loan in new.loans if loan not in old.loans]
            for agency, rates in new.base.items():
                if old.base.get(agency) != rates:
                    self._write_base(c, agency, new.uplink_of[agency], rates, actor)
            loan = None
            if added:
                x = added[0]
                cur = c.execute("INSERT INTO bw_loans (src, dst, direction, amount, ceil_raise, until, created_at, "
                                "created_by, reason) VALUES (?,?,?,?,?,?,?,?,?)",
                                (x.src, x.dst, x.direction, x.amount, x.ceil_raise, x.until, now, actor, reason))
                loan = Loan(int(cur.lastrowid or 0), x.src, x.dst, x.direction, x.amount, x.ceil_raise, x.until)
            after_doc: dict[str, Any] = _rates_json(a)
            if loan is not None:
                after_doc["_loan"] = {"id": loan.id, "until": loan.until}
            self.store.audit_tx(c, actor, action, target, _rates_json(b), after_doc, reason)
        return Change(action, b, a, False, loan)

    def set(self, agency: str, rates: Rates, actor: str, reason: str, dry_run: bool = False) -> Change:
        return self._change("bw.set", agency, actor, reason, dry_run,
                            lambda book, now: alloc.set_rates(book, agency, rates, now))

    def move(self, amount: int, src: str, dst: str, direction: str, actor: str, reason: str,
             until: float | None = None, dry_run: bool = False) -> Change:
        return self._change("bw.move", f"{src}->{dst}", actor, reason, dry_run,
                            lambda book, now: alloc.move(book, amount, src, dst, direction, now, until))

    def accept(self, proposal: dict[str, Rates], actor: str, reason: str, dry_run: bool = False) -> Change:
        """Replace agencies' base rates with a proposal (from ``bw analyze``) as one audited change."""
        return self._change("bw.reallocate", ",".join(sorted(proposal)), actor, reason, dry_run,
                            lambda book, now: alloc.set_many(book, proposal, now))

    def expire_due(self) -> list[Loan]:
        """End the loans whose time has come, each with its audit entry; returns them."""
        now = self.clock()
        with self.store.tx() as c:
            book = _read_book(c, self.inv)
            new, ended = alloc.expire(book, now)
            if not ended:
                return []
            before, after = book.effective(now - 1e-9), new.effective(now)
            for loan in ended:
                c.execute("UPDATE bw_loans SET ended_at=? WHERE id=?", (now, loan.id))
                touched = [loan.src, loan.dst]
                self.store.audit_tx(c, SYSTEM_ACTOR, "bw.expire", f"{loan.src}->{loan.dst}",
                                    _rates_json({a: before[a] for a in touched}),
                                    _rates_json({a: after[a] for a in touched}),
                                    f"temporary move #{loan.id} ended (until {alloc._when(loan.until)})")
        return ended

    def loans(self) -> list[tuple[Loan, str, str]]:
        """Running loans with who made them and why."""
        return [(Loan(*r[:7]), r[7], r[8]) for r in self.store.conn.execute(
            "SELECT id, src, dst, direction, amount, ceil_raise, until, created_by, reason FROM bw_loans "
            "WHERE ended_at IS NULL ORDER BY until")]


def history(store: StateStore, agency: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """Bandwidth changes, oldest first, optionally only those touching ``agency``."""
    rows = store.conn.execute(
        "SELECT id, at, actor, action, target, before, after, reason FROM audit WHERE action LIKE 'bw.%' "
        "ORDER BY id DESC LIMIT ?", (limit if agency is None else 100_000,)).fetchall()
    out = []
    for r in reversed(rows):
        before, after = json.loads(r[5] or "null") or {}, json.loads(r[6] or "null") or {}
        if agency is None or agency in before or agency in after:
            out.append(AuditEntry(r[0], r[1], r[2], r[3], r[4], before, after, r[7]))
    return out[-limit:]

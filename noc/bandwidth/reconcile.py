"""Desired vs actual on every shaping router: read, compare, and (when asked) push and read back.

One report per router, as data. The CLI (`bw plan`, `bw apply`) and the NOC service's periodic
reconciler both call :func:`reconcile`; the service passes ``repair=None`` so each router's
inventory ``mode`` decides (enforce repairs drift, observe only reports it). Routers are handled
in a bounded thread pool: netmiko sessions are synchronous.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from collectors import metrics
from core.errors import CommitError, PantauError
from noc.bandwidth.alloc import Rates
from noc.bandwidth.drivers import RouterDriver, driver_for
from noc.bandwidth.shaping import desired_for
from noc.inventory import Secrets
from noc.model import Device, Inventory, ShapingMode
from noc.state import StateStore

log = logging.getLogger("pantau.bandwidth")

DriverFactory = Callable[[Device, Secrets, bool], RouterDriver]


@dataclass
class RouterReport:
    device: str
    mode: str
    in_sync: bool | None = None  # None: could not be read
    drift: list[str] = field(default_factory=list)
    pushed: bool = False
    verified: bool | None = None
    commands: list[str] = field(default_factory=list)
    error: str | None = None
    kept_previous: bool | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shaping_routers(inv: Inventory, only: str | None = None) -> list[Device]:
    routers = [d for d in inv.devices if d.shaping is not None and (only is None or d.id == only)]
    if only is not None and not routers:
        from core.errors import NotFoundError

        raise NotFoundError(f"{only!r} is not a shaping router in the inventory (devices with a shaping section: "
                            f"{', '.join(d.id for d in inv.devices if d.shaping) or 'none'})")
    return routers


def _one(router: Device, inv: Inventory, rates: dict[str, Rates], secrets: Secrets, repair: bool | None,
         dry_run: bool, factory: DriverFactory) -> RouterReport:
    assert router.shaping is not None
    mode = router.shaping.mode
    push = (mode is ShapingMode.ENFORCE) if repair is None else repair
    rep = RouterReport(router.id, mode.value)
    t0 = time.monotonic()
    try:
        with factory(router, secrets, dry_run or not push) as drv:
            drv.load_candidate(desired_for(router, inv, rates))
            drift = drv.compare()
            rep.in_sync, rep.drift = not drift, [str(x) for x in drift]
            if drift and (push or dry_run):
                result = drv.commit()
                rep.commands = result.commands
                rep.pushed = result.changed
                if result.changed:
                    rep.verified = result.verified
                    rep.in_sync = result.verified
                    if not result.verified:
                        rep.error = "read back after the push still differs: " + "; ".join(map(str, result.remaining))
    except CommitError as exc:
        rep.error, rep.kept_previous = str(exc), exc.kept_previous
    except PantauError as exc:
        rep.error = str(exc)
    rep.seconds = round(time.monotonic() - t0, 3)
    return rep


def reconcile(inv: Inventory, rates: dict[str, Rates], secrets: Secrets, *, repair: bool | None,
              dry_run: bool = False, only: str | None = None, factory: DriverFactory = driver_for,
              workers: int = 8) -> list[RouterReport]:
    """Compare (and with ``repair`` push) every shaping router; ``repair=None`` follows each router's mode."""
    routers = shaping_routers(inv, only)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(routers) or 1))) as pool:
        return list(pool.map(lambda r: _one(r, inv, rates, secrets, repair, dry_run, factory), routers))


def record(store: StateStore, reports: list[RouterReport], actor: str | None = None, reason: str = "",
           every_s: float | None = None) -> None:
    """Keep what was seen per router, a metric per router, and an audit entry for every push.

    ``every_s`` is how often the NOC's reconciler reads the routers (None from a one-off command)."""
    now = store.clock()
    with store.tx() as c:
        for r in reports:
            c.execute("INSERT INTO bw_router (device, checked_at, in_sync, drift, last_push_at, last_push_ok, "
                      "last_error, every_s) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(device) DO UPDATE SET "
                      "checked_at=excluded.checked_at, in_sync=excluded.in_sync, drift=excluded.drift, "
                      "last_push_at=coalesce(excluded.last_push_at, bw_router.last_push_at), "
                      "last_push_ok=coalesce(excluded.last_push_ok, bw_router.last_push_ok), "
                      "last_error=excluded.last_error, every_s=coalesce(excluded.every_s, bw_router.every_s)",
                      (r.device, now, None if r.in_sync is None else int(r.in_sync), json.dumps(r.drift),
                       now if r.pushed or (r.error and r.commands) else None,
                       None if not (r.pushed or r.commands) else int(bool(r.verified)), r.error, every_s))
            store.outbox_add(c, [metrics.line(metrics.SHAPING, {"device": r.device, "mode": r.mode}, {
                "in_sync": -1 if r.in_sync is None else int(r.in_sync), "drift_items": len(r.drift),
                "seconds": r.seconds}, int(now * 1e9))])
            if r.pushed or (r.commands and r.error):
                store.audit_tx(c, actor or "pantau-reconciler", "bw.push", r.device, {"drift": r.drift},
                               {"verified": r.verified, "error": r.error, "commands": len(r.commands)},
                               reason or ("automatic repair of drift" if actor is None else "bw apply"))

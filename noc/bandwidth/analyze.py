"""Needs analysis: 95th-percentile usage against allocation, and a fair reallocation that keeps every invariant.

Pure. The proposal gives each agency a demand of ``p95 × headroom`` (never below its floor) and,
when the demands do not fit the uplink, divides the capacity max-min fairly: every agency gets
its floor, then the rest is water-filled so no agency gets more than it needs while another that
needs more gets less than the same level. Ceilings stay as they are unless a new guarantee is
above one. The result is checked with :func:`noc.bandwidth.alloc.violations` before it is offered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from noc.bandwidth.alloc import DIRECTIONS, Book, Rates, violations

QUANTUM = 1000  # proposals are rounded to whole kbit/s, as routers take them


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile by the nearest-rank method (what carriers bill on), or None without data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Need:
    agency: str
    direction: str
    p95_bps: float | None
    guaranteed: int
    ceiling: int
    proposed: int

    @property
    def utilisation(self) -> float | None:
        """p95 as a share of the guaranteed rate (above 1.0: the agency lives on borrowed capacity)."""
        if self.p95_bps is None or self.guaranteed <= 0:
            return None
        return self.p95_bps / self.guaranteed


def water_fill(capacity: int, demands: dict[str, int], floors: dict[str, int]) -> dict[str, int]:
    """Max-min fair shares of ``capacity``: each gets ``min(demand, max(floor, L))`` for the highest level L that fits.

    Whatever is left below one unit per agency goes to the hungriest at the level. If the floors
    alone do not fit, the floors are returned (the invariant check then refuses them).
    """
    def at(level: int) -> dict[str, int]:
        return {a: min(d, max(floors.get(a, 0), level)) for a, d in demands.items()}

    if sum(at(0).values()) >= capacity or not demands:
        return at(0)
    lo, hi = 0, max(demands.values())
    while lo < hi:  # the highest level whose total still fits
        mid = (lo + hi + 1) // 2
        if sum(at(mid).values()) <= capacity:
            lo = mid
        else:
            hi = mid - 1
    share = at(lo)
    left = capacity - sum(share.values())
    for a in sorted((a for a in demands if share[a] < demands[a]), key=lambda a: demands[a] - share[a],
                    reverse=True)[:max(0, left)]:
        share[a] += 1
    return share


def propose(book: Book, p95: dict[tuple[str, str], float | None], now: float,
            headroom: float = 1.2) -> tuple[dict[str, Rates], list[Need]]:
    """New base rates for every agency with an allocation, and the per-agency needs behind them.

    An agency without usage data keeps its current guarantee (no data is not no need).
    """
    eff = book.effective(now)
    proposed = dict(book.base)
    needs: list[Need] = []
    for d in DIRECTIONS:
        for uplink in book.capacity:
            members = sorted(a for a, u in book.uplink_of.items() if u == uplink and a in book.base)
            demands, floors = {}, {}
            for a in members:
                floors[a] = book.floor(a, d)
                use = p95.get((a, d))
                want = eff[a].g(d) if use is None else math.ceil(use * headroom / QUANTUM) * QUANTUM
                demands[a] = max(want, floors[a])
            cap = book.cap(uplink, d)
            loaned = {a: eff[a].g(d) - book.base[a].g(d) for a in members}
            # loans sit on top of the base: leave room so they still fit until they end
            room = cap - max(0, sum(max(0, x) for x in loaned.values()))
            shares = demands if sum(demands.values()) <= room else water_fill(room, demands, floors)
            for a in members:
                g = max(floors[a], (shares[a] // QUANTUM) * QUANTUM) if shares[a] >= QUANTUM else shares[a]
                r = proposed[a]
                proposed[a] = r.with_dir(d, g, max(r.c(d), g))
                needs.append(Need(a, d, p95.get((a, d)), eff[a].g(d), eff[a].c(d), g))
    if violations(replace(book, base=proposed), now):
        # the fair share cannot be placed under the running loans: offer no change rather than a bad one
        return dict(book.base), needs
    return proposed, needs

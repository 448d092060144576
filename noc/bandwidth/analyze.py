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
    """Max-min fair shares of ``capacity`` over ``demands``, each at least its floor (floors must fit)."""
    share = {a: min(floors.get(a, 0), capacity) for a in demands}
    left = capacity - sum(share.values())
    hungry = {a for a in demands if demands[a] > share[a]}
    while left > 0 and hungry:
        step = max(1, left // len(hungry))
        for a in sorted(hungry, key=lambda x: demands[x] - share[x]):
            give = min(step, demands[a] - share[a], left)
            share[a] += give
            left -= give
            if share[a] >= demands[a]:
                hungry.discard(a)
            if left <= 0:
                break
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

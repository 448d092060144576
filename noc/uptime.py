"""Availability arithmetic (pure): down intervals, maintenance windows, a period → the SLA figure.

Planned maintenance is taken out of the period before anything is counted: downtime inside a
window is *planned* (shown, not charged), downtime outside is *unplanned* and lowers availability:

    availability = 1 − unplanned_down / (period − maintenance)

An agency is down whenever any of its devices is down (the union of their intervals) — the
service desk's view: the agency could not work normally.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass

Span = tuple[float, float]


def union(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted((s, e) for s, e in spans if e > s):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def clip(spans: Iterable[Span], start: float, end: float) -> list[Span]:
    return [(max(s, start), min(e, end)) for s, e in spans if min(e, end) > max(s, start)]


def total(spans: Iterable[Span]) -> float:
    return sum(e - s for s, e in union(spans))


def intersect(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    out = []
    bb = union(b)
    for s, e in union(a):
        out += clip(bb, s, e)
    return out


def subtract(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    """The parts of ``a`` outside ``b``."""
    out = []
    bb = union(b)
    for s, e in union(a):
        cur = s
        for bs, be in bb:
            if be <= cur or bs >= e:
                continue
            if bs > cur:
                out.append((cur, bs))
            cur = max(cur, be)
        if cur < e:
            out.append((cur, e))
    return out


@dataclass(frozen=True)
class Availability:
    period_s: float
    maintenance_s: float
    down_s: float
    planned_down_s: float
    outages: int

    @property
    def unplanned_down_s(self) -> float:
        return self.down_s - self.planned_down_s

    @property
    def ratio(self) -> float | None:
        """Availability from 0 to 1; None when nothing of the period counts (all maintenance, or unwatched)."""
        counted = self.period_s - self.maintenance_s
        return None if counted <= 0 else max(0.0, 1.0 - self.unplanned_down_s / counted)


def availability(down: Iterable[Span], maintenance: Iterable[Span], start: float, end: float) -> Availability:
    d = union(clip(down, start, end))
    m = union(clip(maintenance, start, end))
    return Availability(end - start, total(m), total(d), total(intersect(d, m)), len(d))


def month_bounds(month: str) -> tuple[float, float]:
    """'2026-11' → [start, end) in UTC seconds."""
    try:
        y, mo = (int(x) for x in month.split("-"))
        if not 1 <= mo <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"{month!r} is not a month like 2026-11") from None
    start = calendar.timegm((y, mo, 1, 0, 0, 0))
    end = calendar.timegm((y + mo // 12, mo % 12 + 1, 1, 0, 0, 0))
    return float(start), float(end)


def day_bounds(start: float, end: float) -> list[tuple[float, float]]:
    """UTC days covering [start, end)."""
    days, d = [], start - start % 86400
    while d < end:
        days.append((max(d, start), min(d + 86400, end)))
        d += 86400
    return days

"""Vendor-neutral shaping config of one router, built from the desired division, and its diff against a router's.

Pure. A router that enforces an uplink's division holds one queue per agency (classified by the
agency's prefixes) under a root at the uplink's capacity, per direction: HTB semantics on Linux,
simple queues with a parent on RouterOS, hierarchical MQC on IOS. Rates are quantised to whole
kbit/s because that is what the routers store and print back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.units import format_rate
from noc.bandwidth.alloc import Rates
from noc.model import Device, Inventory

QUANTUM = 1000


def q(bps: int) -> int:
    """A rate as routers hold it: whole kbit/s, at least 1 kbit/s."""
    return max(QUANTUM, (bps // QUANTUM) * QUANTUM)


@dataclass(frozen=True)
class AgencyQueue:
    agency: str
    prefixes: tuple[str, ...]
    g_down: int
    c_down: int
    g_up: int
    c_up: int
    ref: str = field(default="", compare=False)  # the vendor's handle for it (tc class id, queue id)


@dataclass(frozen=True)
class ShapingConfig:
    """What pantau owns on a router: the roots and one queue per agency (sorted by agency)."""

    down_bps: int
    up_bps: int
    queues: tuple[AgencyQueue, ...]

    def queue(self, agency: str) -> AgencyQueue | None:
        return next((x for x in self.queues if x.agency == agency), None)


EMPTY = ShapingConfig(0, 0, ())


def desired_for(router: Device, inv: Inventory, rates: dict[str, Rates]) -> ShapingConfig:
    """The queues ``router`` should hold for the agencies of its uplink that have prefixes and rates."""
    if router.shaping is None:
        raise ValueError(f"{router.id} has no shaping section")
    uplink = next(u for u in inv.uplinks if u.id == router.shaping.uplink)
    members = {a.agency for a in inv.allocations if a.uplink == uplink.id} | set(rates)
    queues = []
    for agency in sorted(members):
        ag, r = inv.agency(agency), rates.get(agency)
        if ag is None or r is None or not ag.prefixes:
            continue
        queues.append(AgencyQueue(agency, tuple(sorted(ag.prefixes)), q(r.g_down), q(r.c_down), q(r.g_up),
                                  q(r.c_up)))
    return ShapingConfig(q(uplink.down_bps), q(uplink.up_bps), tuple(queues))


@dataclass(frozen=True)
class Drift:
    """One difference between desired and actual, as an operator reads it."""

    kind: str  # "add" | "remove" | "change"
    what: str  # agency id or "root"
    field: str
    desired: object
    actual: object

    def __str__(self) -> str:
        def show(v: object) -> str:
            return format_rate(v) if isinstance(v, int) else ", ".join(v) if isinstance(v, tuple) else str(v)

        if self.kind == "add":
            return f"+ {self.what}: missing on the router (should be {show(self.desired)})"
        if self.kind == "remove":
            return f"- {self.what}: on the router but not in the division ({show(self.actual)})"
        return f"~ {self.what} {self.field}: router has {show(self.actual)}, should be {show(self.desired)}"


_FIELDS = ("prefixes", "g_down", "c_down", "g_up", "c_up")


def _summary(x: AgencyQueue) -> str:
    return (f"down {format_rate(x.g_down)}/{format_rate(x.c_down)}, up {format_rate(x.g_up)}/{format_rate(x.c_up)}, "
            f"{', '.join(x.prefixes)}")


def diff(desired: ShapingConfig, actual: ShapingConfig) -> list[Drift]:
    """Differences that would have to change for the router to hold ``desired`` (empty: in sync)."""
    out = []
    for f in ("down_bps", "up_bps"):
        if getattr(desired, f) != getattr(actual, f):
            out.append(Drift("change", "root", f, getattr(desired, f), getattr(actual, f)))
    want = {x.agency: x for x in desired.queues}
    have = {x.agency: x for x in actual.queues}
    for agency in sorted(want.keys() | have.keys()):
        w, h = want.get(agency), have.get(agency)
        if h is None and w is not None:
            out.append(Drift("add", agency, "queue", _summary(w), None))
        elif w is None and h is not None:
            out.append(Drift("remove", agency, "queue", None, _summary(h)))
        elif w is not None and h is not None:
            out += [Drift("change", agency, f, getattr(w, f), getattr(h, f)) for f in _FIELDS
                    if getattr(w, f) != getattr(h, f)]
    return out


def structural(d: list[Drift]) -> bool:
    """Whether the drift needs queues added, removed or reclassified (not only new rates)."""
    return any(x.kind != "change" or x.field == "prefixes" for x in d)

"""Usage watchdog: an agency measured above its ceiling for several checks in a row is an enforcement breach.

HTB cannot let an agency past its ceiling, so traffic above it means the router is not shaping
that agency (a missing queue, traffic that bypasses the router, a wrong prefix). Pure counting
here; the NOC service feeds it the measured usage and opens or resolves the incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors import metrics
from core.units import format_rate
from noc.bandwidth.alloc import DIRECTIONS, Rates


@dataclass(frozen=True)
class Breach:
    agency: str
    direction: str
    measured_bps: float
    ceiling_bps: int
    checks: int

    @property
    def key(self) -> str:
        return f"bw.breach:{self.agency}:{self.direction}"

    def line(self, ts_ns: int) -> str:
        """The breach as a ``pantau_breach`` metric line."""
        return metrics.line(metrics.BREACH, {"agency": self.agency, "direction": self.direction},
                            {"over_ceiling": 1, "measured_bps": self.measured_bps}, ts_ns)

    def summary(self) -> str:
        return (f"{self.agency}: {self.direction}load measured at {format_rate(self.measured_bps)}, above its ceiling "
                f"of {format_rate(self.ceiling_bps)} for {self.checks} checks in a row; the router is not shaping "
                "this agency (missing queue, wrong prefix, or traffic bypassing it): run `pantau bw plan`")


@dataclass
class Watchdog:
    """Counts consecutive over-ceiling checks per (agency, direction)."""

    checks: int = 3
    tolerance: float = 0.10  # measured rates wobble; HTB may briefly burst
    streak: dict[tuple[str, str], int] = field(default_factory=dict)

    def observe(self, usage: dict[str, tuple[float, float]], rates: dict[str, Rates]
                ) -> tuple[list[Breach], list[tuple[str, str]]]:
        """(breaches now at or past the threshold, (agency, direction) pairs back under their ceiling)."""
        breaches, cleared = [], []
        for agency, r in rates.items():
            measured = usage.get(agency)
            for i, d in enumerate(DIRECTIONS):
                k = (agency, d)
                bps = None if measured is None else measured[i]
                if bps is not None and bps > r.c(d) * (1 + self.tolerance):
                    self.streak[k] = self.streak.get(k, 0) + 1
                    if self.streak[k] >= self.checks:
                        breaches.append(Breach(agency, d, bps, r.c(d), self.streak[k]))
                elif self.streak.pop(k, 0) or bps is not None:
                    cleared.append(k)
        return breaches, cleared

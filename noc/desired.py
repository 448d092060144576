"""The desired state as metrics: uplink capacities and agency allocations, for dashboards.

Written periodically by the NOC so Grafana can draw each agency's usage against its guaranteed
rate and ceiling on one time axis.
"""

from __future__ import annotations

from collectors import metrics
from noc.model import Inventory


def desired_lines(inv: Inventory, ts_ns: int) -> list[str]:
    lines = [metrics.line(metrics.UPLINK, {"uplink": u.id},
                          {"capacity_down_bps": u.down_bps, "capacity_up_bps": u.up_bps}, ts_ns)
             for u in inv.uplinks]
    lines += [metrics.line(metrics.ALLOC, {"agency": a.agency, "uplink": a.uplink}, {
        "guaranteed_down_bps": a.guaranteed_down, "ceiling_down_bps": a.ceiling_down,
        "guaranteed_up_bps": a.guaranteed_up, "ceiling_up_bps": a.ceiling_up}, ts_ns) for a in inv.allocations]
    return lines

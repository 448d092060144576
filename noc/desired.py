"""The desired state as metrics: uplink capacities and agency allocations, for dashboards.

Written periodically by the NOC so Grafana can draw each agency's usage against its guaranteed
rate and ceiling on one time axis.
"""

from __future__ import annotations

from collectors import metrics
from noc.bandwidth.alloc import Book
from noc.model import Inventory


def desired_lines(inv: Inventory, book: Book, ts_ns: int) -> list[str]:
    """Uplink capacities and every agency's effective rates (base plus running loans) at ``ts_ns``."""
    lines = [metrics.line(metrics.UPLINK, {"uplink": u.id},
                          {"capacity_down_bps": u.down_bps, "capacity_up_bps": u.up_bps}, ts_ns)
             for u in inv.uplinks]
    eff = book.effective(ts_ns / 1e9)
    lines += [metrics.line(metrics.ALLOC, {"agency": a, "uplink": book.uplink_of[a]}, {
        f"{k}_bps": v for k, v in r.as_dict().items()}, ts_ns) for a, r in sorted(eff.items())]
    return lines

"""Measured usage per agency from the NOC store: the current rate and the 95th percentile over a window."""

from __future__ import annotations

from noc.bandwidth.analyze import percentile
from noc.state import StateStore

P95_RES = 300  # 5-minute buckets, as carriers bill


def p95(store: StateStore, agencies: list[str], window_s: float) -> dict[tuple[str, str], float | None]:
    """(agency, direction) → 95th percentile of 5-minute rates over the window; None without data.

    The agency rollups keep the download (toward the agency) in the rx column.
    """
    since = store.clock() - window_s
    out: dict[tuple[str, str], float | None] = {}
    for a in agencies:
        rows = store.rollup_rates("agency", f"{a}|", P95_RES, since)
        out[(a, "down")] = percentile([r[1] for r in rows], 95)
        out[(a, "up")] = percentile([r[2] for r in rows], 95)
    return out

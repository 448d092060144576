"""Plain-text tables for the CLI: what an operator reads at 2 a.m."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from core.units import format_duration, format_rate


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers), fmt.format(*["-" * w for w in widths])]
    out += [fmt.format(*r) for r in rows]
    return "\n".join(line.rstrip() for line in out)


def ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{format_duration(seconds)} ago"


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def status_table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        note = r["state"]
        if r.get("error"):
            # the table already names the device: drop the "device (host:port): " prefix and keep it short
            err = str(r["error"]).split("): ", 1)[-1]
            note += f": {err[:77] + '...' if len(err) > 80 else err}"
        if r.get("clock_skew_s") is not None and abs(r["clock_skew_s"]) > 5:
            note += f", clock off by {r['clock_skew_s']:+.0f}s"
        if r.get("spool_dropped"):
            note += f", {r['spool_dropped']} report(s) lost from full spool"
        body.append([
            r["agency"] or "(dinas)", r["device"], r["kind"], ago(r["age_s"]),
            format_rate(r["in_bps"]), format_rate(r["out_bps"]), format_duration(r["uptime_s"]), note,
        ])
    return table(["AGENCY", "DEVICE", "KIND", "LAST SEEN", "IN", "OUT", "UPTIME", "STATE"], body)

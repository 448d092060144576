"""Parsing and formatting of bit rates and durations as operators write them.

``"100 Mbit"``, ``"1.5Gbit"``, ``"512 kbit/s"``, ``"20mbps"`` and plain integers (bit/s) are
accepted; SI prefixes (k = 1000), as network equipment and tc use them.
"""

from __future__ import annotations

import re

_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:bit|bps|b)?(?:/s)?\s*$", re.IGNORECASE)
_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$", re.IGNORECASE)
_DUR_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_rate(value: object) -> int:
    """Return a rate in bit/s from an int or a string such as ``"100 Mbit"``.

    Raises ``ValueError`` with a message that shows the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a rate; write e.g. \"100 Mbit\" or 100000000")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"rate {value} is negative")
        return value
    if isinstance(value, str):
        m = _RATE_RE.match(value)
        if m:
            return round(float(m.group(1)) * _PREFIX[m.group(2).lower()])
    raise ValueError(f"{value!r} is not a rate; write e.g. \"100 Mbit\", \"1 Gbit\" or 100000000 (bit/s)")


def parse_duration(value: object) -> float:
    """Return seconds from a number or a string such as ``"90s"``, ``"5m"``, ``"24h"``, ``"30d"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. \"5m\" or \"24h\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration {value} is negative")
        return float(value)
    if isinstance(value, str):
        m = _DUR_RE.match(value)
        if m:
            return float(m.group(1)) * _DUR_UNIT[(m.group(2) or "s").lower()]
    raise ValueError(f"{value!r} is not a duration; write e.g. \"90s\", \"5m\", \"24h\" or \"30d\"")


def format_rate(bps: float | None) -> str:
    """Human form of a bit rate, e.g. ``12.3 Mbit/s``; ``-`` for unknown."""
    if bps is None:
        return "-"
    for unit, div in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if abs(bps) >= div:
            return f"{bps / div:.1f} {unit}"
    return f"{bps:.0f} bit/s"


def format_duration(seconds: float | None) -> str:
    """Human form of a duration, e.g. ``3d 4h``, ``12m 5s``; ``-`` for unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {s}s"
    return f"{s}s"

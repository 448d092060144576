"""Counter → rate maths, pure functions only.

Devices report cumulative counters; a rate is the difference of two samples over the time
between them. What can go wrong, and what we do:

* **wrap**: a 32- (or 64-) bit counter passes its maximum and starts again at 0. If the wrapped
  difference gives a plausible rate, it is a wrap.
* **reset**: the counter went back for another reason (reboot, driver reload, interface
  re-created). The bytes before the reset are unknown; if the new value alone is plausible for
  the interval it is counted (a lower bound), otherwise the interval has no rate.
* **reboot**: a different boot id means every counter restarted and the monotonic clock too: the
  interval has no rate (a gap), never a negative or giant one.
* **gaps**: counters are cumulative, so a longer interval after lost reports still gives the
  exact average rate over it.
* **clock skew**: intervals are measured on the reporting host's monotonic clock, never on wall
  clocks, so a wrong or jumping wall clock cannot make a rate.
* **too short**: two samples closer than ``MIN_ELAPSED`` cannot give a rate worth the name. The
  interval is ``TOO_SHORT`` and the caller keeps its previous baseline, so the next interval covers
  these bytes: no byte is ever lost because two samples came close together.

Nothing here returns a negative rate or one above ``max_bps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

DEFAULT_MAX_BPS = 400e9  # nothing we measure carries more than 400 Gbit/s
MIN_ELAPSED = 0.001


class DeltaKind(Enum):
    OK = "ok"
    WRAP = "wrap"
    RESET = "reset"
    UNKNOWN = "unknown"  # no trustworthy difference for this interval
    TOO_SHORT = "too_short"  # too close to the previous sample to judge: keep the previous baseline


@dataclass(frozen=True)
class Delta:
    """The increase of a counter over one interval, or ``None`` when it cannot be known."""

    value: int | None
    kind: DeltaKind


def counter_delta(prev: int, cur: int, *, bits: int, elapsed: float, max_per_second: float) -> Delta:
    """Increase of a cumulative counter from ``prev`` to ``cur`` over ``elapsed`` seconds.

    ``max_per_second`` bounds what is plausible (counter units per second).
    """
    if prev < 0 or cur < 0 or elapsed < 0:
        return Delta(None, DeltaKind.UNKNOWN)
    if elapsed < MIN_ELAPSED:
        return Delta(None, DeltaKind.TOO_SHORT)
    limit = max_per_second * elapsed
    modulus = 2**bits
    if cur >= prev:
        d = cur - prev
        return Delta(d, DeltaKind.OK) if d <= limit else Delta(None, DeltaKind.UNKNOWN)
    if prev < modulus and cur < modulus:
        wrapped = modulus - prev + cur
        if wrapped <= limit:
            return Delta(wrapped, DeltaKind.WRAP)
    if cur <= limit:
        return Delta(cur, DeltaKind.RESET)
    return Delta(None, DeltaKind.RESET)


@dataclass(frozen=True)
class CounterPoint:
    """One sample of an interface's byte counters, timed on the reporter's own clock."""

    boot_id: str
    mono: float
    rx_bytes: int
    tx_bytes: int
    bits: int = 64


@dataclass(frozen=True)
class IntervalRate:
    """Bytes moved over one interval and the resulting rates (bit/s); ``None`` where unknown."""

    elapsed: float
    rx_bytes: int | None
    tx_bytes: int | None
    rx_bps: float | None
    tx_bps: float | None
    kind: DeltaKind


def interval_rate(prev: CounterPoint, cur: CounterPoint, *, max_bps: float | None = None) -> IntervalRate:
    """Rates between two samples of one interface."""
    if prev.boot_id != cur.boot_id:
        return IntervalRate(0.0, None, None, None, None, DeltaKind.RESET)
    elapsed = cur.mono - prev.mono
    cap_bytes = (max_bps or DEFAULT_MAX_BPS) / 8
    bits = min(prev.bits, cur.bits)
    rx = counter_delta(prev.rx_bytes, cur.rx_bytes, bits=bits, elapsed=elapsed, max_per_second=cap_bytes)
    tx = counter_delta(prev.tx_bytes, cur.tx_bytes, bits=bits, elapsed=elapsed, max_per_second=cap_bytes)
    kind = rx.kind if rx.kind is not DeltaKind.OK else tx.kind
    if DeltaKind.TOO_SHORT in (rx.kind, tx.kind):
        kind = DeltaKind.TOO_SHORT

    def bps(d: Delta) -> float | None:
        return None if d.value is None else d.value * 8 / elapsed

    return IntervalRate(max(elapsed, 0.0), rx.value, tx.value, bps(rx), bps(tx), kind)


def bucket_shares(t_start: float, t_end: float, width: int) -> list[tuple[int, float]]:
    """Split the interval [t_start, t_end) over fixed buckets of ``width`` seconds.

    Returns (bucket_start, fraction_of_interval) pairs whose fractions sum to 1, so bytes moved in
    an interval are spread over the rollup buckets it overlaps in proportion to time.
    """
    span = t_end - t_start
    if span <= 0:
        b = int(t_start // width) * width
        return [(b, 1.0)]
    out: list[tuple[int, float]] = []
    b = int(t_start // width) * width
    while b < t_end:
        lo, hi = max(t_start, b), min(t_end, b + width)
        if hi > lo:
            out.append((b, (hi - lo) / span))
        b += width
    return out


def percentile(values: list[float], pct: float) -> float | None:
    """The nearest-rank percentile (as used for 95th-percentile billing); ``None`` for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]

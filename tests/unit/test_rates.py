"""Counter → rate maths: exact cases and hypothesis properties (never negative, never absurd)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.rates import (
    CounterPoint,
    DeltaKind,
    bucket_shares,
    counter_delta,
    interval_rate,
    percentile,
)

pytestmark = pytest.mark.unit
GBIT = 1e9 / 8  # bytes per second


def test_plain_increase() -> None:
    d = counter_delta(1000, 6000, bits=64, elapsed=10, max_per_second=GBIT)
    assert (d.value, d.kind) == (5000, DeltaKind.OK)


def test_32bit_wrap() -> None:
    d = counter_delta(2**32 - 100, 400, bits=32, elapsed=1, max_per_second=GBIT)
    assert (d.value, d.kind) == (500, DeltaKind.WRAP)


def test_64bit_wrap() -> None:
    d = counter_delta(2**64 - 10, 90, bits=64, elapsed=1, max_per_second=GBIT)
    assert (d.value, d.kind) == (100, DeltaKind.WRAP)


def test_reset_counts_only_what_is_known() -> None:
    # 64-bit counter drops from 5 GB to 2 MB: not a wrap (that would be 2^64 bytes), a reset.
    d = counter_delta(5_000_000_000, 2_000_000, bits=64, elapsed=60, max_per_second=GBIT)
    assert (d.value, d.kind) == (2_000_000, DeltaKind.RESET)


def test_implausible_jump_is_unknown_not_a_spike() -> None:
    d = counter_delta(0, 10**15, bits=64, elapsed=1, max_per_second=GBIT)
    assert d.value is None


def test_reboot_gives_a_gap() -> None:
    r = interval_rate(CounterPoint("boot1", 100.0, 10**9, 10**9), CounterPoint("boot2", 5.0, 1000, 1000))
    assert r.rx_bps is None and r.tx_bps is None and r.kind is DeltaKind.RESET


def test_rate_uses_the_monotonic_interval() -> None:
    r = interval_rate(CounterPoint("b", 100.0, 0, 0), CounterPoint("b", 110.0, 12_500_000, 1_250_000))
    assert r.rx_bps == pytest.approx(10e6) and r.tx_bps == pytest.approx(1e6)


def test_gap_after_lost_reports_gives_exact_average() -> None:
    r = interval_rate(CounterPoint("b", 0.0, 0, 0), CounterPoint("b", 300.0, 375_000_000, 0))
    assert r.rx_bps == pytest.approx(10e6)


def test_backwards_clock_gives_no_rate() -> None:
    r = interval_rate(CounterPoint("b", 100.0, 0, 0), CounterPoint("b", 90.0, 100, 100))
    assert r.rx_bps is None


@given(
    prev=st.integers(0, 2**64 - 1),
    cur=st.integers(0, 2**64 - 1),
    bits=st.sampled_from([32, 64]),
    elapsed=st.floats(-10, 1e6, allow_nan=False),
    speed_bps=st.sampled_from([1e6, 1e9, 100e9]),
)
def test_delta_never_negative_or_above_the_line_rate(prev: int, cur: int, bits: int, elapsed: float,
                                                      speed_bps: float) -> None:
    d = counter_delta(prev, cur, bits=bits, elapsed=elapsed, max_per_second=speed_bps / 8)
    if d.value is not None:
        assert d.value >= 0
        assert d.value <= speed_bps / 8 * elapsed + 1e-6


@given(
    start=st.integers(0, 2**32 - 1),
    steps=st.lists(st.integers(0, 125_000_000), min_size=1, max_size=50),
)
def test_32bit_counter_wrapping_many_times_sums_exactly(start: int, steps: list[int]) -> None:
    """A 1 Gbit/s link sampled every second: wraps are recovered exactly, whatever the start."""
    value, total = start, 0
    for step in steps:
        nxt = (value + step) % 2**32
        d = counter_delta(value, nxt, bits=32, elapsed=1.0, max_per_second=GBIT)
        assert d.value == step
        total += d.value
        value = nxt
    assert total == sum(steps)


@given(
    a=st.floats(0, 1e9, allow_nan=False),
    span=st.floats(0.001, 7200, allow_nan=False),
    width=st.sampled_from([60, 300]),
)
def test_bucket_shares_sum_to_one_and_cover_the_interval(a: float, span: float, width: int) -> None:
    shares = bucket_shares(a, a + span, width)
    assert sum(f for _, f in shares) == pytest.approx(1.0)
    assert all(f > 0 for _, f in shares)
    assert shares[0][0] <= a < shares[0][0] + width


def test_percentile_nearest_rank() -> None:
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 95) is None


def test_samples_too_close_together_are_too_short_not_unknown() -> None:
    r = interval_rate(CounterPoint("b", 100.0, 0, 0), CounterPoint("b", 100.0001, 500, 500))
    assert (r.rx_bytes, r.rx_bps, r.kind) == (None, None, DeltaKind.TOO_SHORT)
    assert counter_delta(0, 10, bits=64, elapsed=0.0, max_per_second=GBIT).kind is DeltaKind.TOO_SHORT
    assert counter_delta(0, 10, bits=64, elapsed=-1.0, max_per_second=GBIT).kind is DeltaKind.UNKNOWN

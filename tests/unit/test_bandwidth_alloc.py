"""The allocation algebra: invariants, refusals that name the numbers, loans that revert, fair proposals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import AllocationError
from noc.bandwidth.alloc import Book, Rates, expire, move, set_rates, violations
from noc.bandwidth.analyze import percentile, propose, water_fill
from noc.bandwidth.watchdog import Watchdog

pytestmark = pytest.mark.unit
M = 1_000_000
AGENCIES = ("dinkes", "disdik", "bappeda")


def book() -> Book:
    return Book(capacity={"isp": (1000 * M, 500 * M)}, uplink_of=dict.fromkeys(AGENCIES, "isp"),
                base={"dinkes": Rates(300 * M, 800 * M, 150 * M, 400 * M),
                      "disdik": Rates(200 * M, 600 * M, 100 * M, 300 * M),
                      "bappeda": Rates(100 * M, 400 * M, 50 * M, 200 * M)},
                floors={"dinkes": (100 * M, 50 * M), "disdik": (50 * M, 0), "bappeda": (0, 0)})


def test_set_over_the_uplink_is_refused_naming_everyone() -> None:
    with pytest.raises(AllocationError) as err:
        set_rates(book(), "dinkes", Rates(800 * M, 900 * M, 150 * M, 400 * M), now=0)
    msg = str(err.value)
    assert "nothing was changed" in msg
    assert "guaranteed down rates on uplink isp add up to 1.1 Gbit/s, more than its capacity of 1.0 Gbit/s" in msg
    assert "dinkes 800.0 Mbit/s" in msg and "disdik 200.0 Mbit/s" in msg


@pytest.mark.parametrize(("rates", "needle"), [
    (Rates(300 * M, 200 * M, 150 * M, 400 * M), "dinkes: guaranteed down 300.0 Mbit/s is above its ceiling 200.0"),
    (Rates(300 * M, 1200 * M, 150 * M, 400 * M), "dinkes: ceiling down 1.2 Gbit/s is above uplink isp's capacity"),
    (Rates(50 * M, 800 * M, 150 * M, 400 * M), "dinkes: guaranteed down 50.0 Mbit/s is below its floor of 100.0"),
])
def test_each_invariant_is_named(rates: Rates, needle: str) -> None:
    with pytest.raises(AllocationError, match="refused") as err:
        set_rates(book(), "dinkes", rates, now=0)
    assert needle in str(err.value)


def test_move_is_both_or_neither_and_lifts_the_ceiling() -> None:
    b = book()
    with pytest.raises(AllocationError, match=r"below its floor of 50\.0 Mbit/s"):
        move(b, 180 * M, "disdik", "bappeda", "down", now=0)
    assert b == book()
    nb = move(b, 150 * M, "disdik", "bappeda", "down", now=0)
    assert nb.base["disdik"].g_down == 50 * M and nb.base["bappeda"].g_down == 250 * M
    lifted = move(nb, 200 * M, "dinkes", "bappeda", "down", now=0)
    assert lifted.base["bappeda"] == Rates(450 * M, 450 * M, 50 * M, 200 * M)


def test_a_loan_reverts_by_itself_and_expiry_is_checked_in_advance() -> None:
    b = move(book(), 100 * M, "disdik", "dinkes", "down", now=0, until=3600, loan_id=1)
    assert b.base == book().base
    assert b.effective(10)["dinkes"].g_down == 400 * M and b.effective(10)["disdik"].g_down == 100 * M
    assert b.effective(3600)["dinkes"].g_down == 300 * M
    # while the loan runs, dinkes may not keep a base that only fits because of it
    with pytest.raises(AllocationError, match="once the loan ending at"):
        set_rates(b, "disdik", Rates(200 * M, 100 * M, 100 * M, 300 * M), now=10)
    nb, ended = expire(b, 3600)
    assert [x.id for x in ended] == [1] and nb.loans == () and nb.effective(3600) == book().base


def test_moves_need_one_uplink_and_known_agencies() -> None:
    b = Book(capacity={"isp": (M * 100, M * 100), "isp2": (M * 100, M * 100)},
             uplink_of={"a": "isp", "b": "isp2"}, base={"a": Rates(M, 2 * M, M, 2 * M), "b": Rates(M, 2 * M, M, 2 * M)},
             floors={})
    with pytest.raises(AllocationError, match="bandwidth moves only between agencies of one uplink"):
        move(b, M // 2, "a", "b", "down", now=0)
    with pytest.raises(AllocationError, match="agency 'zz' has no allocation"):
        move(b, M, "a", "zz", "down", now=0)


# -- property: no sequence of set / move / expire breaks an invariant, now or later -----------------
rate = st.integers(min_value=0, max_value=1200).map(lambda x: x * M)
op = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(AGENCIES), rate, rate, rate, rate),
    st.tuples(st.just("move"), st.integers(1, 600).map(lambda x: x * M), st.sampled_from(AGENCIES),
              st.sampled_from(AGENCIES), st.sampled_from(["down", "up"]),
              st.one_of(st.none(), st.integers(1, 5000))),
    st.tuples(st.just("tick"), st.integers(1, 3000)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=25))
def test_no_sequence_of_operations_breaks_an_invariant(ops: list[tuple[object, ...]]) -> None:
    b, now, loan_id = book(), 0.0, 0
    for o in ops:
        try:
            if o[0] == "set":
                _, a, gd, cd, gu, cu = o
                b = set_rates(b, str(a), Rates(int(gd), int(cd), int(gu), int(cu)), now)  # type: ignore[call-overload]
            elif o[0] == "move":
                _, amount, src, dst, d, dur = o
                loan_id += 1
                b = move(b, int(amount), str(src), str(dst), str(d), now,  # type: ignore[call-overload]
                         None if dur is None else now + float(dur), loan_id)  # type: ignore[arg-type]
            else:
                now += float(o[1])  # type: ignore[arg-type]
                b, _ = expire(b, now)
        except AllocationError:
            pass  # refused: the book is unchanged
        assert violations(b, now) == []
        for t in [now] + [x.until for x in b.loans]:
            eff = b.effective(t)
            for d, cap in (("down", 1000 * M), ("up", 500 * M)):
                assert sum(r.g(d) for r in eff.values()) <= cap
                assert all(0 <= r.g(d) <= r.c(d) <= cap for r in eff.values())


# -- needs analysis -------------------------------------------------------------------------------
def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([5.0], 95) == 5.0


def test_water_fill_is_max_min_fair_over_floors() -> None:
    shares = water_fill(100, {"a": 10, "b": 60, "c": 80}, {"a": 0, "b": 0, "c": 30})
    assert sum(shares.values()) == 100
    assert shares["a"] == 10  # needs little: gets all it needs
    assert abs(shares["b"] - shares["c"]) <= 1  # the rest split evenly between the hungry
    floors_only = water_fill(100, {"a": 90, "b": 90}, {"a": 70, "b": 0})
    assert floors_only["a"] >= 70 and sum(floors_only.values()) == 100


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(AGENCIES), st.integers(0, 2000).map(lambda x: x * M * 1.0),
                       min_size=0, max_size=3), st.floats(1.0, 2.0))
def test_proposals_always_keep_every_invariant(p95_down: dict[str, float], headroom: float) -> None:
    b = book()
    p95 = {(a, "down"): v for a, v in p95_down.items()}
    proposal, needs = propose(b, p95, now=0, headroom=headroom)
    from noc.bandwidth.alloc import set_many

    set_many(b, proposal, 0)  # raises if the proposal broke anything
    assert len(needs) == 2 * len(AGENCIES)


def test_proposal_follows_usage_when_it_fits() -> None:
    p95 = {("dinkes", "down"): 500 * M, ("disdik", "down"): 50 * M, ("bappeda", "down"): 100 * M}
    proposal, _ = propose(book(), p95, now=0, headroom=1.2)
    assert proposal["dinkes"].g_down == 600 * M and proposal["dinkes"].c_down == 800 * M
    assert proposal["disdik"].g_down == 60 * M
    assert proposal["bappeda"].g_down == 120 * M


# -- watchdog ------------------------------------------------------------------------------------
def test_watchdog_needs_several_checks_over_the_ceiling() -> None:
    w = Watchdog(checks=3)
    rates = {"dinkes": Rates(300 * M, 800 * M, 150 * M, 400 * M)}
    over = {"dinkes": (950 * M, 10 * M)}
    assert w.observe(over, rates)[0] == []
    assert w.observe(over, rates)[0] == []
    breaches, _ = w.observe(over, rates)
    assert [(b.agency, b.direction, b.checks) for b in breaches] == [("dinkes", "down", 3)]
    assert "above its ceiling of 800.0 Mbit/s" in breaches[0].summary()
    _, cleared = w.observe({"dinkes": (700 * M, 10 * M)}, rates)
    assert ("dinkes", "down") in cleared
    assert w.observe({"dinkes": (820 * M, 0)}, rates)[0] == []  # within the 10% tolerance

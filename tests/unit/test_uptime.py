"""Availability against hand-computed intervals; the watcher and incident topology on a real store with a set clock."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noc.availability import AvailabilityWatcher, report
from noc.incidents import acknowledge, get, listing, resolve_by_operator
from noc.inventory import parse_inventory
from noc.model import Inventory
from noc.state import StateStore
from noc.uptime import availability, month_bounds, subtract, union

pytestmark = pytest.mark.unit

DAY = 86400.0


def test_hand_computed_day_with_an_outage_a_reboot_and_a_maintenance_window() -> None:
    # down 01:00-02:00 (3600 s); maintenance 01:56:40-02:46:40 overlaps the outage's last 200 s;
    # a reboot 11:06:40-11:08:40 (120 s)
    a = availability([(3600, 7200), (40000, 40120)], [(7000, 10000)], 0, DAY)
    assert a.period_s == DAY and a.maintenance_s == 3000 and a.down_s == 3720
    assert a.planned_down_s == 200 and a.unplanned_down_s == 3520 and a.outages == 2
    assert a.ratio == pytest.approx(1 - 3520 / (DAY - 3000))  # 95.779 %
    assert round(a.ratio * 100, 3) == 95.779


def test_overlapping_outages_count_once_and_a_period_of_only_maintenance_has_no_figure() -> None:
    assert union([(0, 10), (5, 20), (30, 40)]) == [(0, 20), (30, 40)]
    assert subtract([(0, 100)], [(10, 20), (50, 60)]) == [(0, 10), (20, 50), (60, 100)]
    assert availability([(0, 50)], [(0, 100)], 0, 100).ratio is None
    assert month_bounds("2026-02") == (1769904000.0, 1772323200.0)
    with pytest.raises(ValueError, match="not a month"):
        month_bounds("2026-13")


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 200)), max_size=8),
       st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 200)), max_size=4))
def test_availability_is_a_ratio_and_planned_time_is_never_charged(downs: list[tuple[float, float]],
                                                                  maint: list[tuple[float, float]]) -> None:
    d = [(s, s + w) for s, w in downs]
    m = [(s, s + w) for s, w in maint]
    a = availability(d, m, 0, 1000)
    assert 0 <= a.planned_down_s <= a.down_s <= 1000 + 1e-6
    if a.ratio is not None:
        assert 0 <= a.ratio <= 1
        assert a.unplanned_down_s <= a.period_s - a.maintenance_s + 1e-6


CITY = textwrap.dedent("""\
    [city]
    name = "Kota Uji"
    [[uplinks]]
    id = "isp"
    down = "1 Gbit"
    up = "1 Gbit"
    [[agencies]]
    id = "dinkes"
    name = "Dinas Kesehatan"
    [[devices]]
    id = "rtr"
    kind = "router"
    address = "10.99.1.1"
    [[devices]]
    id = "srv"
    agency = "dinkes"
    kind = "server"
    address = "10.99.1.10"
    agent = true
    via = "rtr"
    """)


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def _watched_city(tmp: Path) -> tuple[Clock, Inventory, StateStore, AvailabilityWatcher]:
    """The router-and-server city on a fresh store with a set clock, and its availability watcher."""
    clock = Clock()
    inv = parse_inventory(CITY)
    store = StateStore(tmp / "noc.sqlite", clock=clock)
    store.sync_inventory(inv)
    return clock, inv, store, AvailabilityWatcher(store, inv)


def _seen(store: StateStore, device: str, at: float, *, boot_time: float = 1.0, reboots: int = 0,
          error_at: float | None = None) -> None:
    with store.tx() as c:
        c.execute("INSERT INTO device_state (device, source, last_seen, interval_s, boot_time, reboots, last_error, "
                  "last_error_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(device) DO UPDATE SET "
                  "last_seen=excluded.last_seen, boot_time=excluded.boot_time, reboots=excluded.reboots, "
                  "last_error=excluded.last_error, last_error_at=excluded.last_error_at",
                  (device, "agent", at, 10.0, boot_time, reboots, "timeout" if error_at else None, error_at))


def test_router_down_is_one_root_incident_with_its_server_attached_and_figures_add_up(tmp_path: Path) -> None:
    clock, inv, store, w = _watched_city(tmp_path)
    t0 = clock.t
    _seen(store, "rtr", t0)
    _seen(store, "srv", t0)
    w.observe()
    assert listing(store.conn) == []

    # +100 s: the router stops answering (last heard at t0), so does the server behind it
    clock.t = t0 + 100
    _seen(store, "rtr", t0, error_at=t0 + 95)
    w.observe()
    [root] = listing(store.conn)
    assert root["key"] == "down:rtr" and root["attached_count"] == 1
    [srv] = get(store.conn, root["id"])["attached"]
    assert srv["key"] == "down:srv" and srv["parent_id"] == root["id"] and srv["agency"] == "dinkes"
    with store.tx() as c:
        assert acknowledge(c, clock.t, root["id"], "budi", "on my way")["acked_by"] == "budi"

    # +200 s: both report again; both incidents resolve, the outages close where they were heard again
    clock.t = t0 + 200
    _seen(store, "rtr", t0 + 200)
    _seen(store, "srv", t0 + 200)
    w.observe()
    assert listing(store.conn) == []

    # +300 s: the server rebooted at +290 (last report before it at +200)
    clock.t = t0 + 300
    _seen(store, "rtr", t0 + 300)
    _seen(store, "srv", t0 + 300, boot_time=t0 + 290, reboots=1)
    w.observe()
    reboot = listing(store.conn, include_resolved=True, category="reboot")
    assert len(reboot) == 1 and reboot[0]["resolved_at"] is not None

    # a maintenance window for the server over [+350, +450): its last report is at +300, down at +400
    with store.tx() as c:
        c.execute("INSERT INTO maintenance (device, agency, start, end, reason, created_by, created_at) "
                  "VALUES ('srv', NULL, ?, ?, 'kernel update', 'budi', ?)", (t0 + 350, t0 + 450, t0))
    clock.t = t0 + 400
    _seen(store, "rtr", t0 + 400)
    w.observe()
    assert listing(store.conn) == []  # planned: recorded, no incident
    clock.t = t0 + 460
    _seen(store, "rtr", t0 + 460)
    _seen(store, "srv", t0 + 460, boot_time=t0 + 290, reboots=1)
    w.observe()

    rows = {(r.scope, r.id): r.figures for r in report(store.conn, inv, t0, t0 + 1000, t0 + 1000)}
    # by hand: router down [t0, +200) = 200 s; server down [t0, +200) + reboot [+200, +290) + silent
    # from its last report [+300, +460) = 200 + 90 + 160 = 450 s, of which [+350, +450) = 100 s planned
    rtr, srv, agency = rows[("device", "rtr")], rows[("device", "srv")], rows[("agency", "dinkes")]
    assert rtr.down_s == 200 and rtr.ratio == pytest.approx(0.8)
    assert srv.down_s == 450 and srv.planned_down_s == 100 and srv.maintenance_s == 100
    assert srv.outages == 2  # the outage and the reboot right after it are one continuous span
    assert srv.ratio == pytest.approx(1 - 350 / 900)
    # the agency: the server's unplanned downtime (its own window is planned for the agency too)
    assert agency.down_s == 350 and agency.ratio == pytest.approx(1 - 350 / 1000)
    store.close()


def test_flapping_reopens_the_incident_a_blip_pages_nobody_nor_does_each_swing(tmp_path: Path) -> None:
    from noc.incidents import open_incident, resolve_incident
    from noc.inventory import Secrets
    from noc.notify import Notifier

    clock = Clock()
    t0 = clock.t
    inv = parse_inventory(CITY + '[[notify]]\nid = "hook"\nkind = "webhook"\nurl = "http://127.0.0.1:9/x"\n')
    store = StateStore(tmp_path / "noc.sqlite", clock=clock)
    store.sync_inventory(inv)
    notifier = Notifier(store, inv, Secrets(environ={}), hold_s=60)
    with store.tx() as c:  # down for 20 s: a blip
        assert open_incident(c, t0, "down:rtr", "device_down", "rtr is down", device="rtr")
        assert not open_incident(c, t0 + 5, "down:rtr", "device_down", "rtr is down", device="rtr")  # deduplicated
        resolve_incident(c, t0 + 20, "down:rtr")
    clock.t = t0 + 100
    assert notifier.plan() == 0, "a blip shorter than the hold time pages nobody"
    with store.tx() as c:  # back within the flap window: the same incident, reopened
        open_incident(c, t0 + 200, "down:rtr", "device_down", "rtr is down again", device="rtr")
    rows = listing(store.conn, include_resolved=True)
    assert len(rows) == 1 and rows[0]["flaps"] == 1 and rows[0]["resolved_at"] is None
    assert [e["action"] for e in get(store.conn, rows[0]["id"])["log"]] == ["opened", "resolved", "reopened"]
    clock.t = t0 + 300
    assert notifier.plan() == 1  # still open after the hold: announced once
    assert notifier.plan() == 0
    msg = notifier._message(rows[0]["id"], "opened")["text"]
    assert "flapping: back 1 time(s) within 10 min of clearing" in msg, msg
    # it keeps swinging: every swing is logged, but nobody is paged again until it stays resolved
    t = t0 + 300
    for _ in range(4):
        with store.tx() as c:
            resolve_incident(c, t + 30, "down:rtr")
            open_incident(c, t + 90, "down:rtr", "device_down", "rtr is down again", device="rtr")
        t += 120
        clock.t = t
        assert notifier.plan() == 0, "a swing of an announced, flapping incident pages nobody"
    with store.tx() as c:
        resolve_incident(c, t, "down:rtr")
    clock.t = t + 300
    assert notifier.plan() == 0, "resolved, but not yet stable for the flap window"
    clock.t = t + 601
    assert notifier.plan() == 1, "stable for the flap window: the resolution is announced once"
    assert notifier.plan() == 0
    events = [r[0] for r in store.conn.execute("SELECT event FROM notifications ORDER BY id")]
    assert events == ["opened", "resolved"]
    assert get(store.conn, rows[0]["id"])["flaps"] == 5
    # an operator who resolves a flapping incident is announced at once
    t = clock.t + 1000
    with store.tx() as c:
        open_incident(c, t, "down:sw", "device_down", "sw is down", device="sw")
        resolve_incident(c, t + 100, "down:sw")
        open_incident(c, t + 110, "down:sw", "device_down", "sw is down again", device="sw")
    clock.t = t + 200
    assert notifier.plan() == 1
    sw = next(r for r in listing(store.conn) if r["device"] == "sw")
    with store.tx() as c:
        resolve_by_operator(c, t + 210, sw["id"], "ani", "replaced the power supply")
    clock.t = t + 220
    assert notifier.plan() == 1
    store.close()


def test_a_device_counts_from_when_the_noc_first_watched_it_and_one_never_watched_has_no_figure(
        tmp_path: Path) -> None:
    clock, inv, store, w = _watched_city(tmp_path)
    t0 = clock.t
    # the server joins the NOC at +600 s of the day, goes silent after +800, reports again at +1100;
    # the router never reports
    for at, heard in ((600, 600), (800, 800), (1000, 800), (1100, 1100)):
        clock.t = t0 + at
        _seen(store, "srv", t0 + heard)
        w.observe()
    rows = {(r.scope, r.id): r for r in report(store.conn, inv, t0, t0 + DAY, t0 + 1600)}
    srv, agency, rtr = rows[("device", "srv")], rows[("agency", "dinkes")], rows[("device", "rtr")]
    # by hand: watched [+600, +1600) = 1000 s, down [+800, +1100) = 300 s -> 70 %, not 1 - 300/1600
    assert srv.since == t0 + 600 and srv.figures.period_s == 1000 and srv.figures.down_s == 300
    assert srv.figures.ratio == pytest.approx(0.7)
    assert agency.since == t0 + 600 and agency.figures.ratio == pytest.approx(0.7)
    assert rtr.since is None and rtr.figures.ratio is None and rtr.as_dict()["availability_percent"] is None
    # a period that began after the device was first watched starts at the period's own start
    later = {(r.scope, r.id): r for r in report(store.conn, inv, t0 + 700, t0 + DAY, t0 + 1600)}
    assert later[("device", "srv")].since == t0 + 700 and later[("device", "srv")].figures.period_s == 900
    assert later[("device", "srv")].figures.ratio == pytest.approx(1 - 300 / 900)
    store.close()

"""The NOC state store on a real SQLite file: dedup, tokens, reboots, late reports, audit chain."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from core.errors import NotFoundError, PantauError, StateError
from noc.inventory import parse_inventory
from noc.state import StateStore
from tests.unit.test_inventory import GOOD

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(tmp_path / "noc.sqlite", clock=lambda: 1_700_000_000.0)
    s.sync_inventory(parse_inventory(GOOD))
    return s


def report(seq: int, mono: float, rx: int, boot: str = "b1", **over: Any) -> dict[str, Any]:
    r = {"seq": seq, "collected_at": 1_700_000_000.0 + mono, "mono": mono, "boot_id": boot, "boot_time": 1.0e9,
         "host": {"cpu_percent": 5.0, "mem_total": 100, "mem_used": 50},
         "interfaces": [{"name": "eth0", "rx_bytes": rx, "tx_bytes": rx // 2}]}
    r.update(over)
    return r


def batch(*reports: dict[str, Any], sent_mono: float = 1000.0, boot: str = "b1") -> dict[str, Any]:
    return {"schema": 1, "agent": "dinkes-srv1", "sent_at": 1_700_000_000.0 + sent_mono, "sent_mono": sent_mono,
            "boot_id": boot, "reports": list(reports)}


def rates(store: StateStore) -> list[tuple[float | None, float | None]]:
    return [(r[0], r[1]) for r in store.conn.execute("SELECT rx_bps, tx_bps FROM iface_state")]


def test_duplicates_are_recognised_and_not_counted(store: StateStore) -> None:
    r1 = store.commit_batch("dinkes-srv1", batch(report(1, 0, 0), report(2, 60, 75_000_000)), 1_700_001_000.0)
    r2 = store.commit_batch("dinkes-srv1", batch(report(2, 60, 75_000_000), report(3, 120, 150_000_000)),
                            1_700_001_000.0)
    assert (r1.accepted, r1.duplicates) == ([1, 2], [])
    assert (r2.accepted, r2.duplicates) == ([3], [2])
    (total,) = store.conn.execute("SELECT sum(rx_bytes) FROM rollups WHERE scope='iface' AND res=300").fetchone()
    assert total == pytest.approx(150_000_000)
    assert rates(store) == [(pytest.approx(10e6), pytest.approx(5e6))]


def test_agency_rollup_and_rates(store: StateStore) -> None:
    store.commit_batch("dinkes-srv1", batch(report(1, 0, 0), report(2, 60, 75_000_000)), 1_700_001_000.0)
    buckets = store.rollup_rates("agency", "dinkes|", 60, 0)
    total_bits = sum(rx * 60 for _, rx, _ in buckets)  # full buckets or partial ones add up per bucket
    assert buckets and all(rx == pytest.approx(10e6) for _, rx, _ in buckets)
    assert total_bits >= 10e6 * 60 * 0.99


def test_reboot_is_a_gap_not_a_negative_rate(store: StateStore) -> None:
    store.commit_batch("dinkes-srv1", batch(report(1, 0, 5_000_000_000), report(2, 60, 5_075_000_000)),
                       1_700_001_000.0)
    store.commit_batch("dinkes-srv1", batch(report(3, 5, 1_000, boot="b2"), sent_mono=6, boot="b2"),
                       1_700_001_100.0)
    assert rates(store) == [(None, None)]
    (reboots,) = store.conn.execute("SELECT reboots FROM device_state").fetchone()
    assert reboots == 1
    store.commit_batch("dinkes-srv1", batch(report(4, 65, 75_001_000, boot="b2"), sent_mono=66, boot="b2"),
                       1_700_001_160.0)
    assert rates(store) == [(pytest.approx(10e6), pytest.approx(5e6))]


def test_late_report_writes_raw_values_but_makes_no_rate(store: StateStore) -> None:
    store.commit_batch("dinkes-srv1", batch(report(1, 0, 0), report(3, 120, 150_000_000)), 1_700_001_000.0)
    before = store.conn.execute("SELECT * FROM rollups").fetchall()
    res = store.commit_batch("dinkes-srv1", batch(report(2, 60, 75_000_000)), 1_700_001_000.0)
    assert res.accepted == [2]
    assert store.conn.execute("SELECT * FROM rollups").fetchall() == before
    # a host and an interface line per report, and one agency line for the only rate (seq 1 -> 3)
    assert store.outbox_count() == 7


def test_sample_time_uses_agent_monotonic_clock_not_its_wall_clock(store: StateStore) -> None:
    skewed = report(1, 100.0, 0, collected_at=42.0)  # agent wall clock is wildly wrong
    b = batch(skewed, sent_mono=130.0) | {"sent_at": 42.0}
    store.commit_batch("dinkes-srv1", b, 1_700_000_500.0)
    (t,) = store.conn.execute("SELECT sample_time FROM reports").fetchone()
    assert t == pytest.approx(1_700_000_500.0 - 30.0)
    (skew,) = store.conn.execute("SELECT clock_skew_s FROM device_state").fetchone()
    assert skew == pytest.approx(42.0 - 1_700_000_500.0)


def test_tokens_are_hashed_shown_once_and_revocable(store: StateStore) -> None:
    token = store.add_agent("dinkes-srv1", "budi", "new server")
    assert store.authenticate(token) == "dinkes-srv1"
    dump = "\n".join(store.conn.iterdump())
    assert token not in dump
    with pytest.raises(PantauError, match="--rotate"):
        store.add_agent("dinkes-srv1", "budi")
    new = store.add_agent("dinkes-srv1", "budi", rotate=True)
    assert store.authenticate(token) is None and store.authenticate(new) == "dinkes-srv1"
    store.revoke_agent("dinkes-srv1", "siti", "decommissioned")
    assert store.authenticate(new) is None
    with pytest.raises(NotFoundError):
        store.add_agent("nope", "budi")
    with pytest.raises(PantauError, match="not marked agent = true"):
        store.add_agent("core-rtr", "budi")


def test_audit_log_is_append_only_and_tamper_evident(store: StateStore, tmp_path: Path) -> None:
    store.add_agent("dinkes-srv1", "budi", "new server")
    store.revoke_agent("dinkes-srv1", "siti", "decommissioned")
    assert store.verify_audit() == (2, None)
    entries = store.audit_entries()
    assert [(e.actor, e.action, e.reason) for e in entries] == [
        ("budi", "agent.add", "new server"), ("siti", "agent.revoke", "decommissioned")]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("UPDATE audit SET actor='mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("DELETE FROM audit")
    # Someone with the file drops the trigger and rewrites history: the chain shows it.
    store.conn.execute("DROP TRIGGER audit_no_update")
    store.conn.execute("UPDATE audit SET reason='routine' WHERE id=2")
    assert store.verify_audit() == (2, 2)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    StateStore(db).close()
    c = sqlite3.connect(db)
    c.execute("PRAGMA user_version=99")
    c.close()
    with pytest.raises(StateError, match="newer pantau"):
        StateStore(db)


def test_outbox_is_bounded(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "o.sqlite", outbox_max=10)
    with s.tx() as c:
        s.outbox_add(c, [f"m v={i}i {i}" for i in range(25)])
    rows = s.outbox_peek(100)
    assert len(rows) == 10 and rows[0][1] == "m v=15i 15"


def test_prune_keeps_dedup_for_pruned_reports(store: StateStore) -> None:
    store.commit_batch("dinkes-srv1", batch(report(1, 0, 0)), 1_600_000_000.0)
    assert store.prune(now=1_700_000_000.0)["reports"] == 1
    res = store.commit_batch("dinkes-srv1", batch(report(1, 0, 0)), 1_700_000_000.0)
    assert res.duplicates == [1]


def test_linux_router_agent_splits_traffic_by_interface_agency(tmp_path: Path) -> None:
    inv = parse_inventory(GOOD + """
[[devices]]
id = "edge-linux"
kind = "router"
vendor = "linux"
address = "10.99.0.2"
agent = true
interfaces = [ { name = "eth1", agency = "dinkes" }, { name = "eth2", agency = "disdik" } ]
""")
    s = StateStore(tmp_path / "r.sqlite")
    s.sync_inventory(inv)

    def rep(seq: int, mono: float, a: int, b: int) -> dict[str, Any]:
        return report(seq, mono, 0) | {"interfaces": [
            {"name": "eth0", "rx_bytes": a + b, "tx_bytes": a + b},  # uplink: counts for nobody
            # ports facing the agencies: what they send is the agency's download
            {"name": "eth1", "rx_bytes": 0, "tx_bytes": a}, {"name": "eth2", "rx_bytes": 0, "tx_bytes": b}]}

    b = batch(rep(1, 0, 0, 0), rep(2, 60, 75_000_000, 7_500_000)) | {"agent": "edge-linux"}
    s.commit_batch("edge-linux", b, 1_700_001_000.0)
    dinkes = s.rollup_rates("agency", "dinkes|", 300, 0)
    disdik = s.rollup_rates("agency", "disdik|", 300, 0)
    assert dinkes and disdik
    # agency rollups are seen from the agency: rx column = download
    assert [down for _, down, _ in dinkes] == pytest.approx([10e6] * len(dinkes))
    assert [down for _, down, _ in disdik] == pytest.approx([1e6] * len(disdik))
    rows = {r["device"]: r for r in s.status_rows(now=1_700_000_061.0)}
    assert rows["edge-linux"]["out_bps"] == pytest.approx(11e6)  # eth1 + eth2; the uplink eth0 is not counted
    usage = s.agency_usage(now=1_700_000_061.0)
    assert usage["dinkes"] == (pytest.approx(10e6), 0.0) and usage["disdik"] == (pytest.approx(1e6), 0.0)
    lines = [r[1] for r in s.outbox_peek(100) if r[1].startswith("pantau_agency,")]
    assert any("agency=dinkes" in ln and "down_bps=10000000.0" in ln for ln in lines), lines


def test_a_router_seen_only_over_ssh_reads_ok_late_or_unreachable(tmp_path: Path) -> None:
    from noc.bandwidth.reconcile import RouterReport, record

    inv = parse_inventory(GOOD + """
[[devices]]
id = "edge"
kind = "router"
vendor = "linux"
address = "10.99.0.3"
ssh = { username = "root", key_file = "/nonexistent/key" }
""")
    now = [1_700_000_000.0]
    s = StateStore(tmp_path / "r.sqlite", clock=lambda: now[0])
    s.sync_inventory(inv)

    def edge() -> dict[str, Any]:
        return next(r for r in s.status_rows(now=now[0]) if r["device"] == "edge")

    assert edge()["state"] == "never seen"
    record(s, [RouterReport("edge", "verify", in_sync=True)], every_s=1200)  # noc serve --reconcile-every 20m
    assert (edge()["state"], edge()["source"], edge()["last_seen"]) == ("ok", "ssh", now[0])
    now[0] += 3 * 1200 - 1
    assert edge()["state"] == "ok"
    now[0] += 2  # three reconcile rounds missed
    assert edge()["state"] == "late"
    record(s, [RouterReport("edge", "verify", in_sync=True)])  # `pantau bw apply` keeps the NOC's interval
    now[0] += 3 * 1200 - 1
    assert edge()["state"] == "ok"
    record(s, [RouterReport("edge", "verify", in_sync=None, error="edge (10.99.0.3): SSH refused the key")])
    row = edge()
    assert (row["state"], row["error"]) == ("unreachable", "edge (10.99.0.3): SSH refused the key")
    from noc.availability import AvailabilityWatcher

    AvailabilityWatcher(s, inv).observe(now[0])
    assert s.conn.execute("SELECT count(*) FROM avail_state WHERE device='edge'").fetchone() == (0,), \
        "an SSH read is management reachability: it opens no outage and counts for no SLA"

"""Outages: NOC down for 2 minutes, collector SIGKILLed mid-stream, time-series store down."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from agents.sender import Sender
from agents.wire import make_batch
from tests.conftest import VM, make_report, wait_for

pytestmark = pytest.mark.integration



def test_noc_down_two_minutes_every_sample_arrives_exactly_once(vm: VM, noc_factory: Any) -> None:
    noc = noc_factory(tsdb_url=vm.url)
    agent = noc.start_agent("srv-a", interval=1.0)
    wait_for(lambda: len(noc.ledger("srv-a")) >= 3, 30, "first reports")
    noc.stop()
    down_at = time.monotonic()
    time.sleep(120)
    spooled = noc.spool_len("srv-a")
    assert spooled >= 100, f"the agent kept measuring while the NOC was down ({spooled} spooled)"
    noc.start()
    wait_for(lambda: noc.spool_len("srv-a") == 0, 90, "spool drained after the NOC came back")
    agent.terminate()
    assert agent.wait(30) == 0
    journal = noc.journal("srv-a")
    assert noc.ledger("srv-a") == [r["seq"] for r in journal] == list(range(1, len(journal) + 1))
    assert len(journal) >= 120
    noc.wait_outbox_empty()
    wait_for(lambda: len(vm.export('pantau_host_mem_used_bytes{device="srv-a"}')[0]["values"]) == len(journal),
             30, "every sample in VictoriaMetrics")
    got = vm.export('pantau_host_mem_used_bytes{device="srv-a"}')[0]
    assert got["values"] == [float(r["host"]["mem_used"]) for r in journal]
    # A sample measured during the outage keeps its measurement time, not its arrival time.
    outage_ts = [t / 1000 for t in got["timestamps"] if t / 1000 < time.time() - (time.monotonic() - down_at) + 110]
    assert len(outage_ts) > 100
    assert "NOC reachable again" in (noc.home / "agents" / "srv-a" / "agent.log").read_text()


def test_sigkill_mid_stream_loses_no_acknowledged_report(noc_factory: Any) -> None:
    noc = noc_factory()
    sender = Sender(noc.url, noc.token("srv-a"), timeout=5)
    acked: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        seq = 1
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            res = sender.send(make_batch("srv-a", [make_report(seq)], sent_at=time.time(), sent_mono=time.monotonic(),
                                         boot_id="b1"))
            if res.ok:
                acked.extend(res.acked)
                seq += 1
            else:
                errors.append(res.message)
                time.sleep(0.05)

    # rate limit lifted so the stream is as dense as the collector allows
    noc.stop()
    noc.extra = ["--rate-per-agent", "100000"]
    noc.start()
    t = threading.Thread(target=stream)
    t.start()
    wait_for(lambda: len(acked) >= 200, 30, "a stream of acknowledged reports")
    noc.kill()
    killed_with = len(acked)
    time.sleep(0.5)
    noc.start()
    wait_for(lambda: len(acked) >= killed_with + 50, 30, "the stream resumes")
    stop.set()
    t.join(30)
    ledger = set(noc.ledger("srv-a"))
    assert set(acked) <= ledger, f"acknowledged but lost: {sorted(set(acked) - ledger)[:10]}"
    assert errors, "the kill must have interrupted at least one request"
    from noc.state import StateStore

    store = StateStore(noc.db)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Counters went up by 1000 per report: every computed rate interval is whole, never double-counted.
    (total,) = store.conn.execute(
        "SELECT sum(rx_bytes) FROM rollups WHERE scope='iface' AND key='srv-a/eth0' AND res=60").fetchone()
    assert total == pytest.approx((max(ledger) - 1) * 1000)
    store.close()


def test_store_down_metrics_backfilled_nothing_lost(vm: VM, noc_factory: Any) -> None:
    noc = noc_factory(tsdb_url=vm.url)
    agent = noc.start_agent("srv-a", interval=1.0)
    wait_for(lambda: len(noc.ledger("srv-a")) >= 2, 30, "first reports")
    vm.stop()
    wait_for(lambda: noc.health()["tsdb_outbox_pending"] > 50, 60, "metrics held in the outbox while the store is down")
    time.sleep(3)
    assert noc.health()["accepted"] >= 3, "ingest went on while the store was down"
    vm.start()
    time.sleep(3)
    agent.terminate()
    assert agent.wait(30) == 0
    noc.wait_outbox_empty()
    journal = noc.journal("srv-a")
    wait_for(lambda: len(vm.export('pantau_iface_rx_bytes{device="srv-a",iface="lo"}')[0]["values"]) == len(journal),
             30, "backfilled samples searchable")
    got = vm.export('pantau_iface_rx_bytes{device="srv-a",iface="lo"}')[0]["values"]
    assert got == [float(next(i for i in r["interfaces"] if i["name"] == "lo")["rx_bytes"]) for r in journal]
    log = noc.log.read_text()
    assert "did not take the write" in log and "backfilling" in log

"""Reports 0.1 ms apart, 1 s apart and with gaps, posted to a real collector: the rollups hold the
exact byte sum each time (an interval too short to judge keeps its baseline; the next carries it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agents.sender import Sender
from agents.wire import make_batch
from noc.state import StateStore
from tests.conftest import make_report

pytestmark = pytest.mark.integration
SPACINGS = {"0.1 ms apart": [0.0001] * 30, "1 s apart": [1.0] * 30,
            "with gaps": [0.0001, 1.0, 120.0, 0.0002, 1800.0, 0.5, 3000.0, 0.0001, 30.0]}


def _sums(noc: Any, agent: str) -> tuple[float, float, float]:
    """The 1-minute and 5-minute interface rollups and the 5-minute agency rollup, in bytes."""
    store = StateStore(noc.db)
    try:
        q = "SELECT coalesce(sum(rx_bytes), 0) FROM rollups WHERE scope=? AND res=? AND key=?"
        one = store.conn.execute(q, ("iface", 60, f"{agent}/lo")).fetchone()[0]
        five = store.conn.execute(q, ("iface", 300, f"{agent}/lo")).fetchone()[0]
        agency = store.conn.execute("SELECT coalesce(sum(rx_bytes), 0) FROM rollups WHERE scope='agency' AND "
                                    "res=300 AND key LIKE ?", (f"%|{agent}",)).fetchone()[0]
        return float(one), float(five), float(agency)
    finally:
        store.close()


@pytest.mark.parametrize("spacing", SPACINGS.values(), ids=SPACINGS.keys())
def test_rollup_sums_are_exact_however_reports_are_spaced(noc_factory: Any, spacing: list[float]) -> None:
    noc = noc_factory(extra=["--rate-per-agent", "100000"])
    sender = Sender(noc.url, noc.token("srv-a"))
    mono, rx, reports = 1000.0, 0, []
    for i, gap in enumerate([0.0, *spacing, 10.0], start=1):  # the last, 10 s on, closes the interval
        mono += gap
        rx += 1_000 + 7 * i
        reports.append(make_report(i) | {"mono": mono, "interfaces": [{"name": "lo", "rx_bytes": rx,
                                                                        "tx_bytes": rx // 2}]})
    for r in reports:  # one batch per report, sent as fast as the collector takes them
        res = sender.send(make_batch("srv-a", [r], sent_at=time.time(), sent_mono=r["mono"], boot_id="b1"))
        assert res.ok and res.acked == [r["seq"]], res.message
    want = rx - reports[0]["interfaces"][0]["rx_bytes"]
    assert tuple(round(v, 3) for v in _sums(noc, "srv-a")) == (want, want, want)

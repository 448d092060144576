"""The agent's spool and loop: order, bounds, backoff, refusals — with a scripted NOC stand-in."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest

from agents.loop import Agent, Backoff, Clock
from agents.sender import SendResult
from agents.spool import Spool

pytestmark = pytest.mark.unit


class FakeProbe:
    def __init__(self) -> None:
        self.n = 0

    def boot(self) -> tuple[str, float]:
        return "boot-1", 1000.0

    def collect(self) -> dict[str, Any]:
        self.n += 1
        return {"host": {"cpu_percent": 1.0, "mem_total": 10, "mem_used": 1},
                "interfaces": [{"name": "eth0", "rx_bytes": self.n * 100, "tx_bytes": self.n * 10}]}


class ScriptedNoc:
    """Answers with a scripted status per call (then 200), recording every batch's seqs."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.batches: list[list[int]] = []
        self.received: list[int] = []

    def send(self, batch: dict[str, Any]) -> SendResult:
        seqs = [r["seq"] for r in batch["reports"]]
        self.batches.append(seqs)
        status = self.script.pop(0) if self.script else 200
        if status == 200:
            new = [s for s in seqs if s not in self.received]
            self.received += new
            return SendResult(True, 200, seqs)
        if status == 422 and len(seqs) > 1:
            return SendResult(False, 422, message="bad")
        return SendResult(False, status, message=f"HTTP {status}", retry_after=None)


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def clock(self) -> Clock:
        return Clock(wall=lambda: 1.7e9 + self.t, mono=lambda: self.t, sleep=self.sleep)

    def sleep(self, s: float) -> None:
        self.t += s


def test_spool_is_ordered_and_survives_restart(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    for _ in range(5):
        sp.append({"seq": sp.next_seq(), "x": 1})
    sp.remove([1, 2])
    again = Spool(tmp_path)
    assert [r["seq"] for r in again.oldest(10)] == [3, 4, 5]
    assert again.next_seq() == 6


def test_sequence_survives_an_empty_spool(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    for _ in range(3):
        sp.append({"seq": sp.next_seq()})
    sp.remove([1, 2, 3])
    assert Spool(tmp_path).next_seq() == 4


def test_full_spool_drops_oldest_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sp = Spool(tmp_path, max_reports=3)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            sp.append({"seq": sp.next_seq()})
    assert [r["seq"] for r in sp.oldest(10)] == [3, 4, 5]
    assert sp.dropped_total == 2
    assert "dropped 1 oldest report(s), seq 2..2" in caplog.text and "--spool-max-reports" in caplog.text
    assert Spool(tmp_path, max_reports=3).dropped_total == 2


def test_unreadable_spool_file_is_set_aside(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append({"seq": sp.next_seq()})
    (tmp_path / f"{2:016d}.json").write_text("{torn")
    sp = Spool(tmp_path)
    assert [r["seq"] for r in sp.oldest(10)] == [1]
    assert (tmp_path / "rejected" / f"{2:016d}.json").exists()


def test_outage_then_recovery_delivers_in_order_exactly_once(tmp_path: Path) -> None:
    ft = FakeTime()
    noc = ScriptedNoc([0] * 6)  # NOC unreachable for the first six attempts
    agent = Agent("srv", FakeProbe(), Spool(tmp_path), noc, interval=10, batch_size=4, clock=ft.clock(),
                  backoff=Backoff(base=1, cap=20, rng=random.Random(1)))
    agent.run(cycles=12)
    assert noc.received == list(range(1, 13))
    assert len(agent.spool) == 0
    assert all(b == sorted(b) for b in noc.batches)


def test_a_report_refused_for_good_is_set_aside_and_the_rest_go_on(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    ft = FakeTime()
    noc = ScriptedNoc([422, 422])  # the batch, then the bisected single report
    spool = Spool(tmp_path)
    agent = Agent("srv", FakeProbe(), spool, noc, interval=10, clock=ft.clock())
    for _ in range(3):
        agent.collect_once()
    with caplog.at_level(logging.ERROR):
        agent.drain(deadline=100)
    assert noc.received == [2, 3]
    assert (tmp_path / "rejected" / f"{1:016d}.json").exists()
    assert "refused report seq 1 for good" in caplog.text


def test_wrong_token_is_logged_once_and_reports_stay(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ft = FakeTime()
    noc = ScriptedNoc([401] * 50)
    agent = Agent("srv", FakeProbe(), Spool(tmp_path), noc, interval=5, clock=ft.clock(),
                  backoff=Backoff(base=1, cap=4, rng=random.Random(2)))
    with caplog.at_level(logging.ERROR):
        agent.run(cycles=6)
    assert caplog.text.count("refused agent 'srv''s credentials") == 1
    assert len(agent.spool) == 6 and noc.received == []


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    b = Backoff(base=1, cap=30, rng=random.Random(3))
    delays = [b.next_delay() for _ in range(12)]
    assert all(0.5 <= d <= 30 for d in delays)
    assert max(delays[6:]) > max(delays[:2])
    b.reset()
    assert b.next_delay() <= 2

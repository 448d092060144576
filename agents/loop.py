"""The agent's small sync loop: collect on schedule, spool, drain to the NOC with backoff.

Every report goes to the spool first and leaves it only when the NOC acknowledges it, so a NOC
that is down, slow or restarting loses nothing; the NOC recognises re-sent reports by
(agent, seq). Retries use exponential backoff with full jitter, capped, and honour Retry-After.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agents.backup_job import pending_results
from agents.probes import Probe
from agents.sender import SendResult
from agents.spool import Spool
from agents.wire import MAX_BATCH, make_batch

log = logging.getLogger("pantau.agent")


class BatchSender(Protocol):
    def send(self, batch: dict[str, Any]) -> SendResult: ...


@dataclass
class Clock:
    """The world's clocks, injected so tests can drive time."""

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Backoff:
    """Exponential backoff with full jitter."""

    base: float = 1.0
    cap: float = 60.0
    failures: int = 0
    rng: random.Random | None = None

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 16))
        return (self.rng or random).uniform(self.base / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class Agent:
    """Collect → spool → send, forever or for a bounded number of cycles."""

    def __init__(
        self,
        agent_id: str,
        probe: Probe,
        spool: Spool,
        sender: BatchSender,
        *,
        interval: float = 60.0,
        batch_size: int = 100,
        clock: Clock | None = None,
        journal: Path | None = None,
        backoff: Backoff | None = None,
        backup_results: Path | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.probe = probe
        self.spool = spool
        self.sender = sender
        self.interval = interval
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.clock = clock or Clock()
        self.journal = journal
        self.backoff = backoff or Backoff()
        self.backup_results = backup_results
        self._retry_at = 0.0
        self._stop = False
        self._warned_auth = False

    def stop(self) -> None:
        self._stop = True

    def collect_once(self) -> dict[str, Any]:
        """Measure the host and put the report in the spool."""
        boot_id, boot_time = self.probe.boot()
        body = self.probe.collect()
        report = {
            "seq": self.spool.next_seq(),
            "collected_at": self.clock.wall(),
            "mono": self.clock.mono(),
            "boot_id": boot_id,
            "boot_time": boot_time,
            "spool_dropped": self.spool.dropped_total,
            **body,
        }
        results = pending_results(self.backup_results)
        if results:
            report["backups"] = [d for _, d in results]
        self.spool.append(report)
        for f, _ in results:  # spooled: the report now carries them until the NOC acknowledges it
            f.unlink(missing_ok=True)
        if self.journal is not None:
            with self.journal.open("a") as fh:
                fh.write(json.dumps(report, separators=(",", ":")) + "\n")
        return report

    def drain(self, deadline: float) -> int:
        """Send spooled reports oldest first until empty, a failure, or ``deadline``; return sent count."""
        sent = 0
        boot_id, _ = self.probe.boot()
        while len(self.spool) and self.clock.mono() < deadline and not self._stop:
            if self.clock.mono() < self._retry_at:
                break
            reports = self.spool.oldest(self.batch_size)
            if not reports:
                break
            batch = make_batch(
                self.agent_id, reports, sent_at=self.clock.wall(), sent_mono=self.clock.mono(), boot_id=boot_id
            )
            result = self.sender.send(batch)
            if result.ok:
                self.spool.remove(result.acked)
                sent += len(result.acked)
                if self.backoff.failures:
                    log.info("NOC reachable again; %d report(s) still spooled", len(self.spool))
                self.backoff.reset()
                self._warned_auth = False
                continue
            if result.permanent and len(reports) > 1:
                # Find the bad report by sending smaller batches.
                self.batch_size = max(1, len(reports) // 2)
                continue
            if result.permanent:
                seq = int(reports[0]["seq"])
                log.error(
                    "the NOC refused report seq %d for good (HTTP %d: %s); kept it in %s for inspection "
                    "and carried on",
                    seq, result.status, result.message, self.spool.rejected_dir,
                )
                self.spool.reject(seq)
                continue
            delay = self.backoff.next_delay()
            if result.retry_after:
                delay = max(delay, result.retry_after)
            self._retry_at = self.clock.mono() + delay
            if result.status in (401, 403):
                if not self._warned_auth:
                    log.error(
                        "the NOC refused agent %r's credentials (HTTP %d: %s); reports stay spooled. "
                        "Check the token file, or ask the NOC for a new token (pantau agents add).",
                        self.agent_id, result.status, result.message,
                    )
                    self._warned_auth = True
            else:
                log.warning(
                    "report delivery failed (%s); %d report(s) spooled, retrying in %.1fs",
                    result.message or f"HTTP {result.status}", len(self.spool), delay,
                )
            break
        return sent

    def run(self, cycles: int | None = None, duration: float | None = None) -> None:
        """Run until stopped, or for ``cycles`` collections / ``duration`` seconds (then drain once)."""
        start = self.clock.mono()
        next_collect = start
        done = 0
        while not self._stop:
            now = self.clock.mono()
            if duration is not None and now - start >= duration:
                break
            if cycles is not None and done >= cycles:
                break
            if now >= next_collect:
                try:
                    self.collect_once()
                except Exception as exc:  # a probe failure must not kill the agent
                    log.error("collection failed: %s", exc)
                done += 1
                next_collect += self.interval
                if next_collect < now:  # we fell behind (suspend, slow disk): skip, don't burst
                    next_collect = now + self.interval
            self.drain(deadline=next_collect)
            wake = next_collect
            if len(self.spool) and self._retry_at > self.clock.mono():
                wake = min(wake, self._retry_at)
            pause = max(0.0, wake - self.clock.mono())
            if pause:
                self.clock.sleep(min(pause, 1.0))
        # One last attempt so a bounded run leaves as little as possible behind.
        self._retry_at = 0.0
        self.drain(deadline=self.clock.mono() + 5.0)

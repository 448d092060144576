"""The time-series sink: drains the NOC's durable outbox to VictoriaMetrics or InfluxDB.

Ingest never waits on the store. Each accepted report's lines are put in the outbox in the same
SQLite transaction that records the report, so they survive a crash; this module sends them in
batches through influxdb-client's v2 write API and deletes them only after the store confirmed
the write. While the store is down the outbox grows (bounded by the state store) and is
backfilled in order once it is back. A write that succeeded just before a crash may be repeated:
the points carry the same timestamps and values, which the store deduplicates
(InfluxDB overwrites; start VictoriaMetrics with ``-dedup.minScrapeInterval=1ms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from core.errors import StoreError

log = logging.getLogger("pantau.tsdb")


class Outbox(Protocol):
    """Where pending lines wait: the NOC state store implements this."""

    def outbox_peek(self, limit: int) -> list[tuple[int, str]]: ...

    def outbox_delete(self, upto_id: int) -> None: ...

    def outbox_count(self) -> int: ...


@dataclass(frozen=True)
class TsdbConfig:
    """Where to write: an InfluxDB v2 API (VictoriaMetrics serves one too)."""

    url: str
    bucket: str = "pantau"
    org: str = "pantau"
    token: str = ""
    timeout_s: float = 10.0
    verify_ssl: bool = True


class InfluxWriter:
    """Writes line-protocol batches with influxdb-client (synchronous; run it off the event loop)."""

    def __init__(self, cfg: TsdbConfig) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.cfg = cfg
        self._client = InfluxDBClient(
            url=cfg.url, token=cfg.token or "none", org=cfg.org,
            timeout=int(cfg.timeout_s * 1000), verify_ssl=cfg.verify_ssl,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision

        try:
            self._api.write(bucket=self.cfg.bucket, org=self.cfg.org, record=lines, write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except Exception as exc:  # urllib3 / ApiException / socket errors all mean "not written"
            status = getattr(exc, "status", None)
            reason = f"HTTP {status}: {getattr(exc, 'body', '') or exc}" if status else str(exc).splitlines()[0]
            raise StoreError(f"the time-series store at {self.cfg.url} did not take the write ({reason})") from exc

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


class LineWriter(Protocol):
    def write(self, lines: list[str]) -> None: ...


class OutboxDrainer:
    """Moves lines from the outbox to the store; backs off while the store is down."""

    def __init__(
        self, outbox: Outbox, writer: LineWriter, *, batch: int = 5000, idle_s: float = 0.5, max_backoff_s: float = 30.0
    ) -> None:
        self.outbox = outbox
        self.writer = writer
        self.batch = batch
        self.idle_s = idle_s
        self.max_backoff_s = max_backoff_s
        self.written = 0
        self.failures = 0
        self.down_since: float | None = None

    def drain_once(self) -> int:
        """Send one batch; return how many lines were written (0 when empty). Raises StoreError."""
        rows = self.outbox.outbox_peek(self.batch)
        if not rows:
            return 0
        self.writer.write([r[1] for r in rows])
        self.outbox.outbox_delete(rows[-1][0])
        self.written += len(rows)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set."""
        delay = 1.0
        while not stop.is_set():
            try:
                n = await asyncio.to_thread(self.drain_once)
            except StoreError as exc:
                self.failures += 1
                if self.down_since is None:
                    self.down_since = time.time()
                    log.warning("%s; metrics are kept in the NOC outbox and will be backfilled", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                delay = min(self.max_backoff_s, delay * 2)
                continue
            if self.down_since is not None:
                log.info(
                    "time-series store is back after %.0fs; backfilling %d pending line(s)",
                    time.time() - self.down_since, await asyncio.to_thread(self.outbox.outbox_count),
                )
                self.down_since = None
            delay = 1.0
            if n < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.idle_s)

"""Polling devices over SNMP: one poll as data, and a scheduler where no device delays another.

A poll reads sysUpTime/sysName/sysDescr with one GET and the interface columns of ifTable and
ifXTable with multi-column GETBULK walks. 64-bit ifHC counters are used where the device has
ifXTable; otherwise the 32-bit ifTable counters (the rate maths handles their wraps). A device
that does not answer yields a poll with ``ok=False`` and the error, never zero traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from collectors.snmp import oids
from collectors.snmp.client import SnmpClient, SnmpTarget
from core.errors import DeviceError

log = logging.getLogger("pantau.snmp")


@dataclass(frozen=True)
class InterfaceRow:
    """One row of the device's interface table, counters as the device reports them."""

    index: int
    name: str
    descr: str
    alias: str
    up: bool | None
    speed_bps: int | None
    in_octets: int
    out_octets: int
    bits: int  # 64 from ifXTable, 32 from ifTable
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None
    out_discards: int | None = None


@dataclass(frozen=True)
class DevicePoll:
    """The outcome of polling one device once."""

    device: str
    ok: bool
    started_at: float  # wall clock (NOC)
    duration_s: float
    error: str = ""
    error_kind: str = ""  # "unreachable" | "auth" | "error"
    sys_uptime_ticks: int | None = None
    sys_name: str = ""
    sys_descr: str = ""
    interfaces: tuple[InterfaceRow, ...] = field(default_factory=tuple)


def _int(v: int | str | None) -> int | None:
    return v if isinstance(v, int) else None


def build_interfaces(cols: dict[str, dict[int, int | str | None]]) -> list[InterfaceRow]:
    """Assemble interface rows from walked columns (pure)."""
    c = {k: cols.get(oid, {}) for k, oid in oids.COLUMNS.items()}
    indexes = sorted(set(c["descr"]) | set(c["name"]) | set(c["in_octets"]) | set(c["hc_in_octets"]))
    rows: list[InterfaceRow] = []
    seen: set[str] = set()
    for i in indexes:
        hc_in, hc_out = _int(c["hc_in_octets"].get(i)), _int(c["hc_out_octets"].get(i))
        if hc_in is not None and hc_out is not None:
            rx, tx, bits = hc_in, hc_out, 64
        else:
            lo_in, lo_out = _int(c["in_octets"].get(i)), _int(c["out_octets"].get(i))
            if lo_in is None or lo_out is None:
                continue  # a row without counters (e.g. a stacked sub-layer) carries nothing to measure
            rx, tx, bits = lo_in, lo_out, 32
        descr = str(c["descr"].get(i) or "")
        name = str(c["name"].get(i) or descr or f"if{i}")
        if name in seen:  # names must be unique per device: they are the interface's identity
            name = f"{name}#{i}"
        seen.add(name)
        high = _int(c["high_speed"].get(i))
        speed = high * 1_000_000 if high else _int(c["speed"].get(i))
        oper = _int(c["oper"].get(i))
        rows.append(InterfaceRow(
            i, name, descr, str(c["alias"].get(i) or ""), None if oper is None else oper == 1, speed or None,
            rx, tx, bits, _int(c["in_errors"].get(i)), _int(c["out_errors"].get(i)),
            _int(c["in_discards"].get(i)), _int(c["out_discards"].get(i)),
        ))
    return rows


async def poll_device(client: SnmpClient, t: SnmpTarget, *, max_repetitions: int = 20) -> DevicePoll:
    """Poll one device; errors are returned in the result, never raised."""
    started, t0 = time.time(), time.monotonic()
    try:
        sysvals, cols = await client.walk_columns(t, [oids.COLUMNS[k] for k in oids.WALKED], max_repetitions,
                                                  scalars=oids.SYS_SCALARS)
    except DeviceError as exc:
        kind = {"DeviceUnreachable": "unreachable", "DeviceAuthError": "auth"}.get(type(exc).__name__, "error")
        return DevicePoll(t.name, False, started, time.monotonic() - t0, str(exc), kind)
    uptime, name, descr = (sysvals.get(o) for o in oids.SYS_SCALARS)
    return DevicePoll(
        t.name, True, started, time.monotonic() - t0, sys_uptime_ticks=uptime if isinstance(uptime, int) else None,
        sys_name=str(name or ""), sys_descr=str(descr or ""),
        interfaces=tuple(build_interfaces(cols)),
    )


@dataclass(frozen=True)
class Schedule:
    """How often to poll a device and how long one poll may take in all."""

    target: SnmpTarget
    interval_s: float = 60.0
    deadline_s: float | None = None  # default: 80% of the interval

    @property
    def budget(self) -> float:
        return self.deadline_s or max(1.0, 0.8 * self.interval_s)


class SnmpScheduler:
    """Polls every device on its own interval with bounded concurrency.

    Each device has its own task; a poll that runs past its budget is abandoned and reported as
    unreachable, so one slow or dead device holds at most one concurrency slot for at most its
    budget and never shifts the others' schedules. Start times are spread over the interval by a
    hash of the device name so a city's polls do not all fire at once.
    """

    def __init__(self, schedules: Sequence[Schedule], on_result: Callable[[DevicePoll], Awaitable[None]], *,
                 client: SnmpClient | None = None, concurrency: int = 64, max_repetitions: int = 20) -> None:
        self.schedules = list(schedules)
        self.on_result = on_result
        self.client = client or SnmpClient()
        self.sem = asyncio.Semaphore(concurrency)
        self.max_repetitions = max_repetitions

    async def poll_once(self, s: Schedule) -> DevicePoll:
        started, t0 = time.time(), time.monotonic()
        async with self.sem:
            try:
                return await asyncio.wait_for(poll_device(self.client, s.target,
                                                          max_repetitions=self.max_repetitions), s.budget)
            except TimeoutError:
                return DevicePoll(s.target.name, False, started, time.monotonic() - t0,
                                  f"{s.target.where}: the poll did not finish within {s.budget:g}s; the device "
                                  "answers too slowly for its interval", "unreachable")

    async def _device_loop(self, s: Schedule, stop: asyncio.Event, rounds: int | None) -> None:
        offset = (zlib.crc32(s.target.name.encode()) % 1000) / 1000 * min(s.interval_s, 10.0)
        due = time.monotonic() + offset
        done = 0
        while not stop.is_set() and (rounds is None or done < rounds):
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    return
                except TimeoutError:
                    pass
            result = await self.poll_once(s)
            done += 1
            try:
                await self.on_result(result)
            except Exception:
                log.exception("%s: could not record a poll result", s.target.name)
            due += s.interval_s
            now = time.monotonic()
            if due < now:
                missed = int((now - due) // s.interval_s) + 1
                log.warning("%s: %d poll(s) skipped: polling took longer than the %gs interval",
                            s.target.name, missed, s.interval_s)
                due += missed * s.interval_s

    async def run(self, stop: asyncio.Event, rounds: int | None = None) -> None:
        """Poll until ``stop`` is set (or each device ``rounds`` times)."""
        await asyncio.gather(*(self._device_loop(s, stop, rounds) for s in self.schedules))

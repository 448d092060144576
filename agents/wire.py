"""The report wire schema (version 1), shared by the agent and the collector.

An agent POSTs a *batch* to ``/api/v1/reports``: an envelope naming the agent and its clock at
send time, holding 1..``MAX_BATCH`` reports in ascending sequence order. Each report carries
**raw cumulative counters** and a per-agent monotonic sequence number; the NOC computes rates,
so a lost, late or re-sent report never corrupts a rate.

Timing: ``mono`` is the agent's CLOCK_MONOTONIC at collection and ``sent_mono`` at sending, both
within the boot named by ``boot_id``. The NOC dates a report as ``received - (sent_mono - mono)``
on its own clock, so an agent whose wall clock is wrong still lands its samples at the right time.

Bounds: every number is finite (the NOC parses strictly: no ``NaN``/``Infinity``, no duplicate
keys, nesting at most ``MAX_DEPTH``) and within the ``minimum``/``maximum`` given here; free text
carries no control characters. Rules that relate two fields, or a field to the NOC's clock, cannot
be written in JSON Schema; :func:`clock_problem` and :func:`plausibility_problems` hold them and
the schema's ``description`` states them, so the OpenAPI document tells agent authors:

* ``sent_at`` is within ``MAX_WALL_CLOCK_SKEW_S`` (5 years) of the NOC's clock (else 409, and the
  agent keeps its reports until its clock is set);
* a report was collected before its batch was sent and at most ``MAX_REPORT_AGE_S`` before it:
  ``mono <= sent_mono`` in the batch's boot, ``collected_at <= sent_at + CLOCK_STEP_S`` for a
  report of an earlier boot (which only its wall clock can date);
* a host booted before it collected (``boot_time <= collected_at + CLOCK_STEP_S``);
* a backup run ended before the batch was sent and at most a year before it;
* a report names each interface once, and uses no more memory or disk than it has.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

SCHEMA_VERSION = 1
MAX_BATCH = 500
MAX_INTERFACES = 256
MAX_DISKS = 64
MAX_BODY_BYTES = 4 * 1024 * 1024
# Every integer on the wire: a signed 64-bit integer, as SQL and the line protocol keep it. A byte
# counter reaches it after 9.2 EB; past it, a TSDB field would change type and InfluxDB refuse it.
I64 = 2**63 - 1
MAX_DEPTH = 32  # a batch nests 5 levels deep (batch, reports, report, host, disks, disk); deeper is hostile
MAX_KEYS = 32  # no object in a batch has more keys than this

# Time bounds. Wall clocks are seconds since the Unix epoch, monotonic clocks seconds since boot.
WALL_MAX = 4_102_444_800.0  # 2100-01-01: no pantau agent reports from later
MONO_MAX = 20 * 365.25 * 86400  # twenty years of uptime
MAX_WALL_CLOCK_SKEW_S = 5 * 365.25 * 86400
MAX_REPORT_AGE_S = 366 * 86400  # the spool holds far less; older is not a report from this agent's spool
CLOCK_STEP_S = 86400.0  # how far an NTP step may move a wall clock between collecting and sending
MAX_BACKUP_SECONDS = 31 * 86400
MAX_LOAD = 1e6
MAX_COUNT = 2**62

# Free text carries no C0/C1 control character and no lone UTF-16 surrogate (which no database can
# store); messages may span lines (restic's stderr). Written as the characters *refused*, under
# "not", because a pattern's "$" would let a trailing newline through.
FORBIDDEN_IN_TEXT = "[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff]"
FORBIDDEN_IN_MESSAGE = "[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\ud800-\\udfff]"

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}$"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"

_counter = {"type": "integer", "minimum": 0, "maximum": I64}
_count = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}


def _wall(description: str) -> dict[str, Any]:
    """A time on the agent's wall clock (seconds since the Unix epoch)."""
    return {"type": "number", "minimum": 0, "maximum": WALL_MAX, "description": description}


def _mono(description: str) -> dict[str, Any]:
    """A time on the agent's CLOCK_MONOTONIC (seconds since boot)."""
    return {"type": "number", "minimum": 0, "maximum": MONO_MAX, "description": description}


def _named(pattern: str) -> dict[str, Any]:
    # Python's re lets "$" match before a trailing newline: refuse control characters explicitly.
    return {"type": "string", "pattern": pattern, "not": {"pattern": FORBIDDEN_IN_TEXT}}


def _text(max_length: int, min_length: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length,
            "not": {"pattern": FORBIDDEN_IN_TEXT}, "description": "text without control characters"}


def _message(max_length: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "not": {"pattern": FORBIDDEN_IN_MESSAGE},
            "description": "text without control characters other than newline and tab"}

INTERFACE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "rx_bytes", "tx_bytes"],
    "properties": {
        "name": _named(NAME_PATTERN),
        "rx_bytes": _counter,
        "tx_bytes": _counter,
        "rx_packets": _counter,
        "tx_packets": _counter,
        "rx_errors": _counter,
        "tx_errors": _counter,
        "rx_drops": _counter,
        "tx_drops": _counter,
        "counter_bits": {"enum": [32, 64]},
        "speed_bps": {"type": "integer", "minimum": 0, "maximum": 10**13},
        "up": {"type": "boolean"},
    },
}

DISK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["mount", "total", "used"],
    "properties": {
        "mount": _text(256, 1),
        "total": _counter,
        "used": _counter,
    },
}

BACKUP_RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "ok", "repo", "snapshot_id", "files", "bytes", "added", "duration_s", "warnings", "error"],
    "properties": {
        "at": _wall(f"when the run ended, on the agent's wall clock: not after the batch's sent_at + "
                    f"{CLOCK_STEP_S:.0f} s, not more than {MAX_REPORT_AGE_S:.0f} s before it"),
        "ok": {"type": "boolean"},
        "repo": _text(500),
        "snapshot_id": {"anyOf": [{"type": "null"}, _named("^[0-9a-f]{8,64}$")]},
        "files": _counter,
        "bytes": _counter,
        "added": _counter,
        "duration_s": {"type": "number", "minimum": 0, "maximum": MAX_BACKUP_SECONDS},
        "warnings": {"type": "array", "maxItems": 20, "items": _message(500)},
        "error": {"anyOf": [{"type": "null"}, _message(2000)]},
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["seq", "collected_at", "mono", "boot_id", "boot_time", "host", "interfaces"],
    "properties": {
        "seq": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        "collected_at": _wall("when the report was collected, on the agent's wall clock; for a report of an "
                              f"earlier boot, not after the batch's sent_at + {CLOCK_STEP_S:.0f} s and not more "
                              f"than {MAX_REPORT_AGE_S:.0f} s before it"),
        "mono": _mono("when the report was collected, on the agent's CLOCK_MONOTONIC; in the batch's boot, not "
                      f"after its sent_mono and not more than {MAX_REPORT_AGE_S:.0f} s before it"),
        "boot_id": _text(64, 1),
        "boot_time": _wall(f"when the host booted, on its wall clock: not after collected_at + {CLOCK_STEP_S:.0f} s"),
        "spool_dropped": _count,
        "host": {
            "type": "object",
            "additionalProperties": False,
            "required": ["cpu_percent", "mem_total", "mem_used"],
            "properties": {
                "cpu_percent": {"type": "number", "minimum": 0, "maximum": 100},
                "load1": {"type": "number", "minimum": 0, "maximum": MAX_LOAD},
                "mem_total": _counter,
                "mem_used": _counter,
                "disks": {"type": "array", "maxItems": MAX_DISKS, "items": DISK_SCHEMA},
            },
        },
        "interfaces": {"type": "array", "maxItems": MAX_INTERFACES, "items": INTERFACE_SCHEMA},
        "backups": {"type": "array", "maxItems": 20, "items": BACKUP_RUN_SCHEMA},
    },
}

BATCH_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pantau report batch v1",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "agent", "sent_at", "sent_mono", "boot_id", "reports"],
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "agent": _named(ID_PATTERN),
        "sent_at": _wall("when the batch was sent, on the agent's wall clock: within "
                         f"{MAX_WALL_CLOCK_SKEW_S:.0f} s of the NOC's clock (keep agents on NTP)"),
        "sent_mono": _mono("when the batch was sent, on the agent's CLOCK_MONOTONIC"),
        "boot_id": _text(64, 1),
        "reports": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": REPORT_SCHEMA},
    },
}


def make_batch(
    agent: str, reports: list[dict[str, Any]], *, sent_at: float, sent_mono: float, boot_id: str
) -> dict[str, Any]:
    """Wrap spooled reports into the envelope the collector expects."""
    return {
        "schema": SCHEMA_VERSION,
        "agent": agent,
        "sent_at": sent_at,
        "sent_mono": sent_mono,
        "boot_id": boot_id,
        "reports": reports,
    }


def clock_problem(batch: dict[str, Any], now: float) -> str | None:
    """``sent_at: why`` when the agent's wall clock is too far from the NOC's (``now``), else None.

    Not the report's fault, and nothing is lost by waiting: the NOC answers 409 and the agent keeps
    the batch until its clock is set (its next batch carries the new ``sent_at``)."""
    skew = float(batch["sent_at"]) - now
    if abs(skew) <= MAX_WALL_CLOCK_SKEW_S:
        return None
    return (f"sent_at: the agent's clock is {abs(skew) / 86400:.0f} days {'ahead of' if skew > 0 else 'behind'} "
            f"the NOC's (at most {MAX_WALL_CLOCK_SKEW_S / 86400:.0f} allowed); set the host's clock (NTP) and "
            "the spooled reports will be taken")


def plausibility_problems(batch: dict[str, Any]) -> list[str]:
    """What a schema-valid batch claims that cannot be true, as ``field: why`` (empty when none).

    These are the cross-field rules of the module docstring; an honest agent never breaks them,
    whatever its wall clock says. A report of the batch's boot is dated by its monotonic clock, so
    only that clock is judged; a report of an earlier boot is dated by its wall clock.
    """
    problems: list[str] = []
    sent_at, sent_mono = float(batch["sent_at"]), float(batch["sent_mono"])
    for i, r in enumerate(batch["reports"]):
        where = f"reports[{i}]"
        collected_at = float(r["collected_at"])
        if r["boot_id"] == batch["boot_id"]:
            age = sent_mono - float(r["mono"])
            if age < 0:
                problems.append(f"{where}.mono: {r['mono']} is after the batch's sent_mono {sent_mono} in the "
                                "same boot; a report is collected before it is sent")
            elif age > MAX_REPORT_AGE_S:
                problems.append(f"{where}.mono: the report is {age / 86400:.0f} days older than its batch "
                                f"(at most {MAX_REPORT_AGE_S / 86400:.0f})")
        elif collected_at > sent_at + CLOCK_STEP_S:
            problems.append(f"{where}.collected_at: {collected_at - sent_at:.0f} s after the batch's sent_at")
        elif sent_at - collected_at > MAX_REPORT_AGE_S:
            problems.append(f"{where}.collected_at: the report is {(sent_at - collected_at) / 86400:.0f} days "
                            f"older than its batch (at most {MAX_REPORT_AGE_S / 86400:.0f})")
        if float(r["boot_time"]) > collected_at + CLOCK_STEP_S:
            problems.append(f"{where}.boot_time: {r['boot_time']} is {float(r['boot_time']) - collected_at:.0f} s "
                            "after collected_at: the host booted after the report was collected")
        problems += _same_name_twice(f"{where}.interfaces", "name", [it["name"] for it in r["interfaces"]])
        host = r["host"]
        if host["mem_used"] > host["mem_total"]:
            problems.append(f"{where}.host.mem_used: more than mem_total")
        problems += [f"{where}.host.disks[{j}].used: more than its total" for j, d in enumerate(host.get("disks", []))
                     if d["used"] > d["total"]]
        for j, run in enumerate(r.get("backups", ())):
            at = float(run["at"])
            if at > sent_at + CLOCK_STEP_S:
                problems.append(f"{where}.backups[{j}].at: the run is dated {at - sent_at:.0f} s after the batch "
                                "was sent")
            elif sent_at - at > MAX_REPORT_AGE_S:
                problems.append(f"{where}.backups[{j}].at: the run is {(sent_at - at) / 86400:.0f} days older "
                                f"than its batch (at most {MAX_REPORT_AGE_S / 86400:.0f})")
    return problems[:20]


def _same_name_twice(where: str, key: str, names: list[str]) -> list[str]:
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    return [f"{where}: the {key} {n!r} appears more than once; report each once" for n in twice[:3]]

"""The report wire schema (version 1), shared by the agent and the collector.

An agent POSTs a *batch* to ``/api/v1/reports``: an envelope naming the agent and its clock at
send time, holding 1..``MAX_BATCH`` reports in ascending sequence order. Each report carries
**raw cumulative counters** and a per-agent monotonic sequence number; the NOC computes rates,
so a lost, late or re-sent report never corrupts a rate.

Timing: ``mono`` is the agent's CLOCK_MONOTONIC at collection and ``sent_mono`` at sending, both
within the boot named by ``boot_id``. The NOC dates a report as ``received - (sent_mono - mono)``
on its own clock, so an agent whose wall clock is wrong still lands its samples at the right time.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1
MAX_BATCH = 500
MAX_INTERFACES = 256
MAX_DISKS = 64
MAX_BODY_BYTES = 4 * 1024 * 1024
U64 = 2**64 - 1

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}$"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"

_counter = {"type": "integer", "minimum": 0, "maximum": U64}
_nonneg = {"type": "number", "minimum": 0}

INTERFACE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "rx_bytes", "tx_bytes"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
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
        "mount": {"type": "string", "minLength": 1, "maxLength": 256},
        "total": _counter,
        "used": _counter,
    },
}

BACKUP_RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "ok", "repo", "snapshot_id", "files", "bytes", "added", "duration_s", "warnings", "error"],
    "properties": {
        "at": {"type": "number", "minimum": 0},
        "ok": {"type": "boolean"},
        "repo": {"type": "string", "maxLength": 500},
        "snapshot_id": {"type": ["string", "null"], "pattern": "^[0-9a-f]{8,64}$"},
        "files": _counter,
        "bytes": _counter,
        "added": _counter,
        "duration_s": _nonneg,
        "warnings": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 500}},
        "error": {"type": ["string", "null"], "maxLength": 2000},
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["seq", "collected_at", "mono", "boot_id", "boot_time", "host", "interfaces"],
    "properties": {
        "seq": {"type": "integer", "minimum": 1, "maximum": 2**62},
        "collected_at": {"type": "number", "minimum": 0},
        "mono": _nonneg,
        "boot_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "boot_time": {"type": "number", "minimum": 0},
        "spool_dropped": {"type": "integer", "minimum": 0},
        "host": {
            "type": "object",
            "additionalProperties": False,
            "required": ["cpu_percent", "mem_total", "mem_used"],
            "properties": {
                "cpu_percent": {"type": "number", "minimum": 0, "maximum": 100},
                "load1": _nonneg,
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
        "agent": {"type": "string", "pattern": ID_PATTERN},
        "sent_at": {"type": "number", "minimum": 0},
        "sent_mono": _nonneg,
        "boot_id": {"type": "string", "minLength": 1, "maxLength": 64},
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

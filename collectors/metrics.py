"""The metric-name schema: every series pantau writes to the time-series store, in one place.

The TSDB writer and the Grafana dashboards are both built from this table, so a renamed metric
cannot leave a panel silently empty. Names follow InfluxDB's measurement/field model; on
VictoriaMetrics/Prometheus a series is ``{measurement}_{field}`` with the tags as labels.
String values are never fields (VictoriaMetrics would store them as 0): they are tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """One measurement: its tags (labels) and fields (numeric values), with help text."""

    name: str
    tags: tuple[str, ...]
    fields: Mapping[str, str]  # field -> help text

    def series(self, field: str) -> str:
        """The Prometheus-style series name VictoriaMetrics gives this field."""
        if field not in self.fields:
            raise KeyError(f"{self.name} has no field {field!r}")
        return f"{self.name}_{field}"


IFACE = Measurement(
    "pantau_iface",
    ("agency", "device", "iface", "source"),
    {
        "rx_bytes": "received bytes, cumulative counter as the device reports it",
        "tx_bytes": "sent bytes, cumulative counter as the device reports it",
        "rx_packets": "received packets, cumulative",
        "tx_packets": "sent packets, cumulative",
        "rx_errors": "receive errors, cumulative",
        "tx_errors": "send errors, cumulative",
        "rx_drops": "received packets dropped, cumulative",
        "tx_drops": "sent packets dropped, cumulative",
        "rx_bps": "receive rate over the interval ending at this sample, bit/s",
        "tx_bps": "send rate over the interval ending at this sample, bit/s",
        "up": "1 when the interface is up, 0 when down",
    },
)

HOST = Measurement(
    "pantau_host",
    ("agency", "device", "source"),
    {
        "uptime_seconds": "seconds since the host booted",
        "cpu_percent": "CPU busy since the previous sample, percent",
        "load1": "1-minute load average",
        "mem_total_bytes": "physical memory",
        "mem_used_bytes": "memory in use (total - available)",
        "clock_skew_seconds": "host wall clock minus NOC clock when the report was sent",
        "spool_dropped": "reports the agent dropped from a full spool, cumulative",
    },
)

DISK = Measurement(
    "pantau_disk",
    ("agency", "device", "mount"),
    {
        "total_bytes": "size of the filesystem",
        "used_bytes": "bytes in use on the filesystem",
    },
)

SNMP = Measurement(
    "pantau_snmp",
    ("agency", "device", "source"),
    {
        "up": "1 when the device answered the poll, 0 when it did not (unreachable, refused credentials)",
        "poll_seconds": "how long the poll took",
    },
)

AGENCY = Measurement(
    "pantau_agency",
    ("agency", "device", "source"),
    {
        "down_bps": "the agency's download measured on one device (toward the agency), bit/s",
        "up_bps": "the agency's upload measured on one device (from the agency), bit/s",
    },
)

ALLOC = Measurement(
    "pantau_alloc",
    ("agency", "uplink"),
    {
        "guaranteed_down_bps": "download rate guaranteed to the agency (desired state)",
        "ceiling_down_bps": "download rate the agency may borrow up to (desired state)",
        "guaranteed_up_bps": "upload rate guaranteed to the agency (desired state)",
        "ceiling_up_bps": "upload rate the agency may borrow up to (desired state)",
    },
)

UPLINK = Measurement(
    "pantau_uplink",
    ("uplink",),
    {
        "capacity_down_bps": "the uplink's download capacity",
        "capacity_up_bps": "the uplink's upload capacity",
    },
)

SHAPING = Measurement(
    "pantau_shaping",
    ("device", "mode"),
    {
        "in_sync": "1 when the router holds the desired queues, 0 when it drifted, -1 when it could not be read",
        "drift_items": "how many queues or rates differ from the division",
        "seconds": "how long reading (and repairing) the router took",
    },
)

BREACH = Measurement(
    "pantau_breach",
    ("agency", "direction"),
    {
        "over_ceiling": "1 while the agency's measured traffic stays above its ceiling (an enforcement breach)",
        "measured_bps": "the agency's measured rate when the watchdog looked",
    },
)

BACKUP = Measurement(
    "pantau_backup",
    ("agency", "site"),
    {
        "verdict_code": "the NOC's verdict: 0 ok, 1 suspect, 2 incomplete, 3 late, 4 missing, 5 restore_failed, "
                        "6 corrupt, 7 unknown (repository unreadable)",
        "age_seconds": "age of the newest snapshot at the site, as read by the NOC",
        "rpo_seconds": "the policy's recovery point objective (maximum age)",
        "snapshots": "snapshots in the site's repository",
        "dr_lag_seconds": "how far the DR site trails the Pusat Data (DR rows only)",
        "missing_copies": "Pusat Data snapshots not yet at the DR site (DR rows only)",
        "latest_duration_seconds": "how long the newest snapshot's backup ran, from the repository's own files "
                                   "(Pusat Data rows only, local and sftp: repositories)",
    },
)

BACKUP_CHECK = Measurement(
    "pantau_backup_check",
    ("agency", "site"),
    {
        "ok": "1 when restic check found no damage, 0 when it did",
        "packs_read": "pack files whose data this check read",
        "packs_total": "pack files in the repository",
        "seconds": "how long the check took",
    },
)

BACKUP_DRILL = Measurement(
    "pantau_backup_drill",
    ("agency", "site"),
    {
        "ok": "1 when the sample files were restored and verified, 0 when not",
        "restore_seconds": "time to restore the sample files (measured RTO of the sample)",
        "rto_estimate_seconds": "the whole snapshot's restore time at the sample's measured throughput",
        "bytes": "bytes restored by the drill",
    },
)

BACKUP_RUN = Measurement(
    "pantau_backup_run",
    ("agency", "reported_by"),
    {
        "ok": "1 when the backup run produced a snapshot, 0 when it failed (as reported by its runner)",
        "files": "files in the snapshot",
        "bytes": "bytes processed",
        "seconds": "duration of the run",
    },
)

DEVICE = Measurement(
    "pantau_device",
    ("device", "agency", "kind"),
    {
        "up": "1 while the device reports (agent) or answers (SNMP), 0 while it is down",
        "in_maintenance": "1 inside a planned maintenance window",
        "sla_up": "1 when up or inside planned maintenance (what the SLA counts as available), else 0",
    },
)

INCIDENTS = Measurement(
    "pantau_incidents",
    ("category", "agency"),
    {
        "open": "open root incidents (what the service desk works on)",
        "attached": "open consequences attached to a root incident",
    },
)

ALL: tuple[Measurement, ...] = (IFACE, HOST, DISK, SNMP, AGENCY, ALLOC, UPLINK, SHAPING, BREACH, BACKUP,
                                BACKUP_CHECK, BACKUP_DRILL, BACKUP_RUN, DEVICE, INCIDENTS)


def _esc_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ").replace(
        "\n", "\\n"
    )


def _fmt_field(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # line protocol integers are signed 64-bit; larger counters travel as floats
        return f"{value}i" if value < 2**63 else repr(float(value))
    return repr(float(value))


def line(m: Measurement, tags: Mapping[str, str], fields: Mapping[str, float | int | bool | None], ts_ns: int) -> str:
    """One InfluxDB line-protocol line; fields whose value is ``None`` are left out.

    Unknown tags or fields raise ``KeyError``: only what the schema names may be written.
    """
    for t in tags:
        if t not in m.tags:
            raise KeyError(f"{m.name} has no tag {t!r}")
    parts = [_esc_tag(m.name)]
    parts += [f"{_esc_tag(k)}={_esc_tag(v)}" for k, v in sorted(tags.items()) if v != ""]
    body = []
    for k, v in sorted(fields.items()):
        if k not in m.fields:
            raise KeyError(f"{m.name} has no field {k!r}")
        if v is not None:
            body.append(f"{_esc_tag(k)}={_fmt_field(v)}")
    if not body:
        raise ValueError(f"{m.name}: a line needs at least one field")
    return f"{','.join(parts)} {','.join(body)} {ts_ns}"

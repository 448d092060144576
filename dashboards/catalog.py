"""The dashboards pantau ships, as grafanalib objects (PromQL for VictoriaMetrics/Prometheus).

Each panel is described as data (:class:`PanelSpec`): its queries and the labels its legend uses,
which the tests check against the real store. Built so far: *NOC overview* (uplink use, agencies
against their allocations, devices down, shaping routers and breaches, backup verdicts), *Devices*
(per router, switch or server: interface traffic, errors, drops, reachability), *Agency* (traffic,
allocation history, uptime, backups at both sites) and *Backups* (age against the RPO, DR lag,
checks, drills and RTO, runs reported by agents) and *Uptime/SLA* (availability per agency and
device over the dashboard's time range, maintenance not charged; devices down; open incidents).
``$__range`` is Grafana's own variable (the selected time range); the tests substitute it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grafanalib import core as g

from collectors import metrics

DATASOURCE_UID = "pantau-vm"
_DS = {"type": "prometheus", "uid": DATASOURCE_UID}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str

    @property
    def legend_labels(self) -> set[str]:
        return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", self.legend))


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    variable: str  # the one template variable, e.g. "device"
    variable_query: str
    panels: tuple[PanelSpec, ...]
    description: str


def _s(m: metrics.Measurement, field: str) -> str:
    return m.series(field)


IFACE, HOST, SNMP = metrics.IFACE, metrics.HOST, metrics.SNMP
AGENCY_M, ALLOC, UPLINK = metrics.AGENCY, metrics.ALLOC, metrics.UPLINK
SHAPING, BREACH = metrics.SHAPING, metrics.BREACH
BACKUP, CHECK, DRILL, RUN = metrics.BACKUP, metrics.BACKUP_CHECK, metrics.BACKUP_DRILL, metrics.BACKUP_RUN
DEVICE, INCIDENTS = metrics.DEVICE, metrics.INCIDENTS
NEAR_CEILING = 0.9  # an agency at this share of its ceiling is held there
VERDICT_HELP = ("0 ok, 1 suspect (far smaller or faster than usual), 2 incomplete (copies missing at DR), "
                "3 late (past the RPO), 4 missing, 5 restore drill failed, 6 corrupt, "
                "7 unknown (repository unreadable)")


def _agency(m: metrics.Measurement, field: str, legend: str, how: str = "max") -> Query:
    """One agency's series (the $agency variable), e.g. its ceiling or its measured use."""
    return Query(f'{how} by (agency) ({_s(m, field)}{{agency="$agency"}})', legend)


def _against_allocation(direction: str) -> tuple[Query, ...]:
    return (_agency(AGENCY_M, f"{direction}_bps", "{{agency}} using", "sum"),
            _agency(ALLOC, f"guaranteed_{direction}_bps", "{{agency}} guaranteed"),
            _agency(ALLOC, f"ceiling_{direction}_bps", "{{agency}} ceiling"))


def _iface(field: str, legend: str, per_second: bool = False) -> Query:
    """One device's (the $device variable) interface series; counters as a per-second rate."""
    series = f'{_s(IFACE, field)}{{device="$device"}}'
    return Query(f"sum by (iface) ({f'rate({series}[5m])' if per_second else series})", legend)


def _vs_ceiling(direction: str) -> Query:
    return Query(f"sum by (agency) ({_s(AGENCY_M, f'{direction}_bps')}) / on (agency) "
                 f"sum by (agency) ({_s(ALLOC, f'ceiling_{direction}_bps')})", "{{agency}}")


OVERVIEW = DashboardSpec(
    uid="pantau-overview",
    title="pantau — NOC overview",
    variable="agency",
    variable_query=f"label_values({_s(ALLOC, 'ceiling_down_bps')}, agency)",
    description="The city at a glance: the uplink's use, every agency against its allocation, devices down, "
                "open incidents, shaping and backups.",
    panels=(
        PanelSpec("City traffic vs uplink capacity", "percentunit", (
            Query(f"sum({_s(AGENCY_M, 'down_bps')}) / scalar(sum({_s(UPLINK, 'capacity_down_bps')}))", "download"),
            Query(f"sum({_s(AGENCY_M, 'up_bps')}) / scalar(sum({_s(UPLINK, 'capacity_up_bps')}))", "upload"),
        ), "Measured agency traffic over the uplinks' total capacity."),
        PanelSpec("Devices down", "none", (
            Query(f"count(max by (device) ({_s(DEVICE, 'up')}) == 0) or vector(0)", "down (heartbeat or SNMP)"),
            Query(f"count({_s(SNMP, 'up')} == 0) or vector(0)", "not answering SNMP"),
        ), "A server is down when its agent stops reporting, a router or switch when it stops answering SNMP."),
        PanelSpec("Agencies at 90% of a ceiling or over", "none", tuple(
            Query(f"count(({_vs_ceiling(d).expr}) >= {NEAR_CEILING}) or vector(0)", f"{d}load")
            for d in ("down", "up")), "How many agencies are held at (or above) their download or upload ceiling."),
        PanelSpec("Open incidents", "none", (Query(f"sum({_s(INCIDENTS, 'open')}) or vector(0)", "open"),
                                             Query(f"sum({_s(INCIDENTS, 'attached')}) or vector(0)",
                                                   "consequences attached")),
                  "Root incidents the service desk works on; `pantau incidents list` names them."),
        PanelSpec("Agency download as share of its ceiling", "percentunit", (_vs_ceiling("down"),),
                  "Near 100% an agency is held at its ceiling; above it, enforcement is missing or bypassed."),
        PanelSpec("Agency upload as share of its ceiling", "percentunit", (_vs_ceiling("up"),)),
        PanelSpec("Download: $agency against its allocation", "bps", _against_allocation("down")),
        PanelSpec("Upload: $agency against its allocation", "bps", _against_allocation("up")),
        PanelSpec("Shaping routers: holding the division", "none", (Query(
            f"max by (device, mode) ({_s(SHAPING, 'in_sync')})", "{{device}} ({{mode}})"),),
                  "1 in sync, 0 drifted (repaired in enforce mode, reported in observe mode), -1 unreadable."),
        PanelSpec("Enforcement breaches (traffic above the ceiling)", "bps", (Query(
            f"max by (agency, direction) ({_s(BREACH, 'measured_bps')})", "{{agency}} {{direction}}"),),
                  "An agency measured above its ceiling for several checks: a missing queue or a bypass."),
        PanelSpec("Backup verdicts: worst site per agency", "none", (Query(
            f"max by (agency) ({_s(BACKUP, 'verdict_code')})", "{{agency}}"),), VERDICT_HELP),
        PanelSpec("Backups past their RPO", "none", (Query(
            f"count(({_s(BACKUP, 'age_seconds')} > on (agency, site) {_s(BACKUP, 'rpo_seconds')})) or vector(0)",
            "sites past the RPO"),)),
    ),
)

DEVICES = DashboardSpec(
    uid="pantau-devices",
    title="pantau — Devices",
    variable="device",
    # every device that reported interfaces or was polled (an unreachable one has only pantau_snmp_up)
    variable_query=f'label_values({{__name__=~"{_s(IFACE, "rx_bytes")}|{_s(SNMP, "up")}"}}, device)',
    description="One router, switch or server: traffic, errors and drops per interface, and reachability.",
    panels=(
        PanelSpec("Receive rate by interface", "bps", (_iface("rx_bps", "{{iface}} in"),)),
        PanelSpec("Send rate by interface", "bps", (_iface("tx_bps", "{{iface}} out"),)),
        PanelSpec("Interface errors per second", "pps", tuple(
            _iface(f"{d}_errors", f"{{{{iface}}}} {d} errors", per_second=True) for d in ("rx", "tx"))),
        PanelSpec("Dropped packets per second", "pps", tuple(
            _iface(f"{d}_drops", f"{{{{iface}}}} {d} drops", per_second=True) for d in ("rx", "tx"))),
        PanelSpec("Uptime", "s", (Query(f'max by (device) ({_s(HOST, "uptime_seconds")}{{device="$device"}})',
                                        "{{device}}"),),
                  "Seconds since boot (agent) or since the SNMP agent started (sysUpTime); a drop is a reboot."),
        PanelSpec("SNMP reachability", "none", (Query(f'max by (device) ({_s(SNMP, "up")}{{device="$device"}})',
                                                      "{{device}} answered"),),
                  "1 when the device answered its SNMP poll, 0 when it did not. Only for polled devices."),
    ),
)

AGENCY = DashboardSpec(
    uid="pantau-agency",
    title="pantau — Agency traffic",
    variable="agency",
    variable_query=f'label_values({_s(IFACE, "rx_bps")}{{agency!=""}}, agency)',
    description="One agency: the traffic of every interface counted for it, on servers and routers.",
    panels=(
        PanelSpec("Received, by device and interface", "bps", (Query(
            f'sum by (device, iface) ({_s(IFACE, "rx_bps")}{{agency="$agency"}})', "{{device}} {{iface}}"),)),
        PanelSpec("Sent, by device and interface", "bps", (Query(
            f'sum by (device, iface) ({_s(IFACE, "tx_bps")}{{agency="$agency"}})', "{{device}} {{iface}}"),)),
        PanelSpec("Agency download and upload, with ceilings", "bps", (
            _agency(AGENCY_M, "down_bps", "{{agency}} download", "sum"),
            _agency(AGENCY_M, "up_bps", "{{agency}} upload", "sum"),
            _agency(ALLOC, "ceiling_down_bps", "{{agency}} download ceiling"),
            _agency(ALLOC, "ceiling_up_bps", "{{agency}} upload ceiling"),
        ), "Seen from the agency: a server's receive and a router port's send are its download."),
        PanelSpec("Allocation history", "bps", tuple(
            _agency(ALLOC, f"{kind}_{d}_bps", f"{kind} {d}")
            for d in ("down", "up") for kind in ("guaranteed", "ceiling")
        ), "The allocation in force over time: every reallocation shows as a step."),
        PanelSpec("Uptime of the agency's devices", "s", (Query(
            f'max by (device) ({_s(HOST, "uptime_seconds")}{{agency="$agency"}})', "{{device}}"),),
                  "Seconds since boot; a drop to zero is a reboot."),
        PanelSpec("Server memory in use", "bytes", (Query(
            f'max by (device) ({_s(HOST, "mem_used_bytes")}{{agency="$agency"}})', "{{device}}"),)),
        PanelSpec("Backups at both sites: age of the newest snapshot", "s", (
            Query(f'max by (site) ({_s(BACKUP, "age_seconds")}{{agency="$agency"}})', "{{site}}"),
            Query(f'max by (agency) ({_s(BACKUP, "rpo_seconds")}{{agency="$agency", site="pusat_data"}})',
                  "RPO"),
        ), "As the NOC read the repositories itself; above the RPO line the backup is late."),
        PanelSpec("Backup verdict at both sites", "none", (Query(
            f'max by (site) ({_s(BACKUP, "verdict_code")}{{agency="$agency"}})', "{{site}}"),), VERDICT_HELP),
    ),
)

BACKUPS = DashboardSpec(
    uid="pantau-backups",
    title="pantau — Backups",
    variable="agency",
    variable_query=f"label_values({_s(BACKUP, 'verdict_code')}, agency)",
    description="Every agency's backups at the Pusat Data and the DR site, as the NOC verified them itself.",
    panels=(
        PanelSpec("Verdict per agency and site", "none", (Query(
            f"max by (agency, site) ({_s(BACKUP, 'verdict_code')})", "{{agency}} {{site}}"),), VERDICT_HELP),
        PanelSpec("Age of the newest snapshot as share of the RPO", "percentunit", (Query(
            f"max by (agency, site) ({_s(BACKUP, 'age_seconds')}) / on (agency, site) "
            f"max by (agency, site) ({_s(BACKUP, 'rpo_seconds')})", "{{agency}} {{site}}"),),
                  "Above 100% the site's newest snapshot is older than the agency's RPO."),
        PanelSpec("DR site lag behind the Pusat Data", "s", (Query(
            f"max by (agency) ({_s(BACKUP, 'dr_lag_seconds')})", "{{agency}}"),)),
        PanelSpec("Snapshots missing at the DR site", "none", (Query(
            f"max by (agency) ({_s(BACKUP, 'missing_copies')})", "{{agency}}"),)),
        PanelSpec("Backup duration of the newest snapshot", "s", (Query(
            f"max by (agency) ({_s(BACKUP, 'latest_duration_seconds')})", "{{agency}}"),),
                  "Measured by the NOC at the Pusat Data (the snapshot file's write time minus the backup's start); "
                  "a backup far faster than usual is flagged suspect."),
        PanelSpec("Integrity checks: result", "none", (Query(
            f"max by (agency, site) ({_s(CHECK, 'ok')})", "{{agency}} {{site}}"),),
                  "1 when restic check found no damage in the packs it read, 0 when it found some."),
        PanelSpec("Integrity checks: share of pack data read", "percentunit", (Query(
            f"max by (agency, site) ({_s(CHECK, 'packs_read')}) / on (agency, site) "
            f"max by (agency, site) ({_s(CHECK, 'packs_total')})", "{{agency}} {{site}}"),),
                  "Each check reads one subset; every pack is read once per check cycle."),
        PanelSpec("Restore drills: measured RTO of the sample", "s", (Query(
            f"max by (agency, site) ({_s(DRILL, 'restore_seconds')})", "{{agency}} {{site}}"),)),
        PanelSpec("Restore drills: estimated whole-snapshot restore time", "s", (Query(
            f"max by (agency, site) ({_s(DRILL, 'rto_estimate_seconds')})", "{{agency}} {{site}}"),)),
        PanelSpec("$agency: snapshots at each site", "none", (Query(
            f'max by (site) ({_s(BACKUP, "snapshots")}{{agency="$agency"}})', "{{site}}"),)),
        PanelSpec("$agency: backup runs as reported (not verified)", "none", (Query(
            f'max by (reported_by) ({_s(RUN, "ok")}{{agency="$agency"}})', "{{reported_by}}"),),
                  "1 a run that made a snapshot, 0 a failed run — the runner's own word; the verdicts above "
                  "are the NOC's."),
    ),
)

UPTIME = DashboardSpec(
    uid="pantau-uptime",
    title="pantau — Uptime and SLA",
    variable="agency",
    variable_query=f"label_values({_s(DEVICE, 'sla_up')}{{agency!=\"\"}}, agency)",
    description="Availability per agency and device over the selected range, planned maintenance not charged, "
                "and the incidents the service desk is working on. The monthly figure of record is "
                "`pantau uptime report`.",
    panels=(
        PanelSpec("Agency availability over the range (SLA): its least available device", "percentunit", (Query(
            f"min by (agency) (avg_over_time({_s(DEVICE, 'sla_up')}{{agency!=\"\"}}[$__range]))", "{{agency}}"),),
                  "Planned maintenance is not charged. `pantau uptime report` gives the figure of record, where "
                  "an agency is down while any of its devices is."),
        PanelSpec("Device availability over the range (SLA)", "percentunit", (Query(
            f"max by (device) (avg_over_time({_s(DEVICE, 'sla_up')}[$__range]))", "{{device}}"),)),
        PanelSpec("Devices down now", "none", (Query(
            f"count(max by (device) ({_s(DEVICE, 'up')}) == 0) or vector(0)", "devices down"),)),
        PanelSpec("Open incidents by category", "none", (Query(
            f"sum by (category) ({_s(INCIDENTS, 'open')})", "{{category}}"),),
                  "Root incidents only; consequences attached to them are counted apart."),
        PanelSpec("Consequences attached to root incidents", "none", (Query(
            f"sum by (category) ({_s(INCIDENTS, 'attached')})", "{{category}}"),)),
        PanelSpec("$agency: devices up (1) or down (0)", "none", (Query(
            f'max by (device) ({_s(DEVICE, "up")}{{agency="$agency"}})', "{{device}}"),)),
        PanelSpec("$agency: planned maintenance", "none", (Query(
            f'max by (device) ({_s(DEVICE, "in_maintenance")}{{agency="$agency"}})', "{{device}}"),)),
    ),
)

ALL: tuple[DashboardSpec, ...] = (OVERVIEW, DEVICES, AGENCY, BACKUPS, UPTIME)


def build(spec: DashboardSpec) -> g.Dashboard:
    """The grafanalib dashboard for a spec: panels two per row, 12 columns wide, 8 high."""
    panels = []
    for i, p in enumerate(spec.panels):
        panels.append(g.TimeSeries(
            title=p.title, description=p.description, dataSource=_DS, unit=p.unit, id=i + 1,
            gridPos=g.GridPos(h=8, w=12, x=(i % 2) * 12, y=(i // 2) * 8),
            targets=[g.Target(expr=q.expr, legendFormat=q.legend, refId=chr(ord("A") + j), datasource=_DS)
                     for j, q in enumerate(p.queries)],
        ))
    variable = g.Template(name=spec.variable, label=spec.variable.capitalize(), query=spec.variable_query,
                          dataSource=_DS, refresh=2, type="query")
    return g.Dashboard(title=spec.title, uid=spec.uid, description=spec.description, panels=panels,
                       templating=g.Templating(list=[variable]), tags=["pantau"], timezone="browser",
                       refresh="1m", time=g.Time("now-6h", "now"), schemaVersion=39).auto_panel_ids()

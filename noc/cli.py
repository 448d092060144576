"""The `pantau` command line (click). The only place errors become exit codes.

NOC commands import the NOC's dependencies lazily, so an agency server with pantau's minimal
install can still run `pantau agent run`.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import click

from agents.cli import agent_group
from core.errors import PantauError

if TYPE_CHECKING:
    from noc.state import StateStore

DEFAULT_DB = Path(os.environ.get("PANTAU_DB", "var/noc.sqlite"))


class _Cli(click.Group):
    """Turns PantauError into a one-paragraph message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PantauError as exc:
            click.echo(f"pantau: {exc}", err=True)
            sys.exit(exc.exit_code)


def operator_name(explicit: str | None) -> str:
    """Who is acting: --operator, else the human behind sudo, else the OS user."""
    return explicit or os.environ.get("SUDO_USER") or getpass.getuser()


def _open_state(db: Path, inventory: Path | None) -> StateStore:
    from noc.inventory import load_inventory
    from noc.state import StateStore

    store = StateStore(db)
    if inventory is not None:
        store.sync_inventory(load_inventory(inventory))
    return store


db_option = click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True,
                         envvar="PANTAU_DB", help="NOC state database")
inventory_option = click.option("--inventory", type=click.Path(path_type=Path, exists=True), default=None,
                                envvar="PANTAU_INVENTORY", help="city inventory (TOML); synced into the state first")
# Read-only commands take --inventory too, so a script can pass the same options to every command
# that reads the same store; they check the file and never write it into the state.
def _check_inventory(_ctx: click.Context, _param: click.Parameter, path: Path | None) -> None:
    if path is not None:
        from noc.inventory import load_inventory

        load_inventory(path)


inventory_read_option = click.option("--inventory", type=click.Path(path_type=Path, exists=True), default=None,
                                     envvar="PANTAU_INVENTORY", expose_value=False, callback=_check_inventory,
                                     help="city inventory (TOML); checked, not written into the state")
operator_option = click.option("--operator", default=None, help="who is acting (default: your OS user)")


@click.group(cls=_Cli)
@click.version_option(package_name="pantau")
def main() -> None:
    """pantau: watch and run a city's shared network and data centre."""


main.add_command(agent_group)


class _Lazy(click.Group):
    """A command group whose module (and its heavy imports: pysnmp, netmiko) loads only when a command runs."""

    module = ""
    commands_map: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands_map)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import importlib

        if cmd_name not in self.commands_map:
            return None
        try:
            mod = importlib.import_module(self.module)
        except ImportError as exc:
            raise click.ClickException(
                f"`pantau {self.name}` needs the NOC install (pip install 'pantau[noc]'): {exc}") from exc
        cmd = getattr(mod, self.commands_map[cmd_name])
        assert isinstance(cmd, click.Command)
        return cmd


class _LazySnmp(_Lazy):
    module = "noc.snmp_cli"
    commands_map: ClassVar[dict[str, str]] = {"discover": "discover", "poll": "poll_cmd"}


class _LazyBw(_Lazy):
    module = "noc.bw_cli"
    commands_map: ClassVar[dict[str, str]] = {
        name: f"bw_{name}" for name in ("show", "set", "move", "plan", "apply", "history", "analyze")}


class _LazyBackup(_Lazy):
    module = "noc.backup_cli"
    commands_map: ClassVar[dict[str, str]] = {
        name: f"backup_{name}" for name in ("status", "run", "replicate", "verify", "drill")}


@main.group("backup", cls=_LazyBackup)
def backup_group() -> None:
    """Run, replicate and verify every agency's restic backups at the Pusat Data and the DR site."""


class _LazyIncidents(_Lazy):
    module = "noc.incidents_cli"
    commands_map: ClassVar[dict[str, str]] = {n: f"incidents_{n}" for n in ("list", "show", "ack", "resolve")}


class _LazyUptime(_Lazy):
    module = "noc.incidents_cli"
    commands_map: ClassVar[dict[str, str]] = {"report": "uptime_report"}


class _LazyMaintenance(_Lazy):
    module = "noc.incidents_cli"
    commands_map: ClassVar[dict[str, str]] = {"add": "maintenance_add", "list": "maintenance_list"}


@main.group("incidents", cls=_LazyIncidents)
def incidents_group() -> None:
    """Incidents for the service desk: list, show, acknowledge, resolve."""


@main.group("uptime", cls=_LazyUptime)
def uptime_group() -> None:
    """Availability per agency and device (SLA), maintenance excluded."""


@main.group("maintenance", cls=_LazyMaintenance)
def maintenance_group() -> None:
    """Planned maintenance windows: downtime inside them is not charged to the SLA and opens no incident."""


@main.group("snmp", cls=_LazySnmp)
def snmp_group() -> None:
    """Ask routers and switches over SNMP."""


@main.group("bw", cls=_LazyBw)
def bw_group() -> None:
    """Divide the uplinks among agencies, push the division to the routers, and reallocate."""


# -- noc ------------------------------------------------------------------------------------
@main.group("noc")
def noc_group() -> None:
    """The NOC service."""


@noc_group.command("serve")
@inventory_option
@db_option
@click.option("--listen", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8470, show_default=True)
@click.option("--tsdb-url", default=None, envvar="PANTAU_TSDB_URL",
              help="InfluxDB v2 write API base URL (VictoriaMetrics: http://host:8428)")
@click.option("--tsdb-bucket", default="pantau", show_default=True)
@click.option("--tsdb-org", default="pantau", show_default=True)
@click.option("--tsdb-token-env", default="PANTAU_TSDB_TOKEN", show_default=True,
              help="environment variable holding the TSDB token")
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--rate-per-agent", type=float, default=5.0, show_default=True, help="requests/s per agent")
@click.option("--reconcile-every", default="5m", show_default=True,
              help="how often the shaping routers are checked against the division (also after every change)")
@click.option("--watch-every", default="1m", show_default=True,
              help="how often measured usage is checked against the ceilings (a breach needs 3 checks in a row)")
@click.option("--backup-every", default="15m", show_default=True,
              help="how often the DR copy runs and both sites of every backup policy are verified (0: never)")
@click.option("--uptime-every", default="10s", show_default=True,
              help="how often devices are checked up/down and notifications are sent")
@click.option("--notify-hold", default="60s", show_default=True,
              help="an incident is announced once it has been open this long (blips page nobody)")
@click.option("--dist-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="serve the package files (wheels) in this directory at /dist/ for agency servers' pip")
@click.option("--log-level", default="INFO", show_default=True)
def noc_serve(inventory: Path | None, db: Path, listen: str, port: int, tsdb_url: str | None, tsdb_bucket: str,
              tsdb_org: str, tsdb_token_env: str, tls_cert: Path | None, tls_key: Path | None,
              rate_per_agent: float, reconcile_every: str, watch_every: str, backup_every: str,
              uptime_every: str, notify_hold: str, dist_dir: Path | None, log_level: str) -> None:
    """Run the collector: ingest API, state, TSDB writer."""
    import asyncio

    from collectors.tsdb import TsdbConfig
    from noc.service import ServiceConfig, serve

    if inventory is None:
        raise click.UsageError("--inventory (or PANTAU_INVENTORY) is required")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("paramiko").setLevel(logging.WARNING)  # one line per SSH login is noise
    tsdb = None
    if tsdb_url:
        tsdb = TsdbConfig(tsdb_url, tsdb_bucket, tsdb_org, os.environ.get(tsdb_token_env, ""))
    from core.units import parse_duration

    every: dict[str, float] = {}
    for hint, value in (("--reconcile-every", reconcile_every), ("--watch-every", watch_every),
                        ("--backup-every", backup_every), ("--uptime-every", uptime_every),
                        ("--notify-hold", notify_hold)):
        try:
            every[hint] = parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from None
    cfg = ServiceConfig(inventory, db, listen, port, tsdb, tls_cert, tls_key, rate_per_agent,
                        burst_per_agent=max(20.0, rate_per_agent * 4), reconcile_every_s=every["--reconcile-every"],
                        watch_every_s=every["--watch-every"], backup_every_s=every["--backup-every"],
                        uptime_every_s=max(1.0, every["--uptime-every"]), notify_hold_s=every["--notify-hold"],
                        dist_dir=dist_dir)
    asyncio.run(serve(cfg))


# -- inventory ------------------------------------------------------------------------------
@main.group("inventory")
def inventory_group() -> None:
    """The city inventory."""


@inventory_group.command("check")
@click.argument("path", type=click.Path(path_type=Path))
def inventory_check(path: Path) -> None:
    """Validate an inventory file and summarise it."""
    from noc.inventory import load_inventory

    inv = load_inventory(path)
    click.echo(f"{path}: OK — {inv.city or '(unnamed city)'}: {len(inv.uplinks)} uplink(s), "
               f"{len(inv.agencies)} agencies, {len(inv.devices)} devices, {len(inv.allocations)} allocations, "
               f"{len(inv.backup_policies)} backup policies")


# -- ansible --------------------------------------------------------------------------------
@main.group("ansible")
def ansible_group() -> None:
    """Deployment with Ansible (roles in ansible/)."""


@ansible_group.command("inventory")
@click.option("--inventory", "city", type=click.Path(path_type=Path, exists=True), required=True,
              envvar="PANTAU_INVENTORY", help="the city inventory (TOML)")
@click.option("--noc-url", required=True, help="where agents report, e.g. https://noc.kota.go.id:8470")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="write here instead of stdout")
def ansible_inventory_cmd(city: Path, noc_url: str, out: Path | None) -> None:
    """Write an Ansible inventory (YAML) from the city inventory: agents, their backup jobs, routers.

    Secrets stay out: tokens and passwords are references to Ansible Vault variables."""
    from noc.ansible_inventory import ansible_inventory, to_yaml
    from noc.inventory import load_inventory

    text = "---\n# written by `pantau ansible inventory` from " + str(city) + "; do not edit by hand\n"
    text += to_yaml(ansible_inventory(load_inventory(city), noc_url)) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)


# -- agents ---------------------------------------------------------------------------------
@main.group("agents")
def agents_group() -> None:
    """Agent credentials (per-agent tokens)."""


@agents_group.command("add")
@click.argument("device")
@inventory_option
@db_option
@operator_option
@click.option("--reason", default="", help="why (kept in the audit log)")
@click.option("--rotate", is_flag=True, help="replace an existing token (the old one stops working)")
@click.option("--token-file", type=click.Path(path_type=Path), default=None,
              help="write the token to this file (mode 600) instead of showing it")
def agents_add(device: str, inventory: Path | None, db: Path, operator: str | None, reason: str, rotate: bool,
               token_file: Path | None) -> None:
    """Issue a token for DEVICE's agent. The token is shown once; only its hash is kept."""
    store = _open_state(db, inventory)
    token = store.add_agent(device, operator_name(operator), reason, rotate=rotate)
    if token_file is not None:
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        click.echo(f"token for agent {device!r} written to {token_file} (mode 600)")
    else:
        click.echo(f"token for agent {device!r} (shown once; put it in the agent's token file, mode 600):")
        click.echo(token)


@agents_group.command("list")
@inventory_option
@db_option
@click.option("--json", "as_json", is_flag=True)
def agents_list(inventory: Path | None, db: Path, as_json: bool) -> None:
    """Agents in the inventory, their token state and when they last reported."""
    import time

    from noc.views import ago, table, when

    store = _open_state(db, inventory)
    agents = store.list_agents()
    if as_json:
        click.echo(json.dumps([a.__dict__ for a in agents], indent=2))
        return
    now = time.time()
    rows = [[a.agency or "-", a.agent, "active" if a.active else ("revoked" if a.revoked_at else "no token"),
             when(a.created_at), a.created_by or "-", ago(None if a.last_seen is None else now - a.last_seen)]
            for a in agents]
    click.echo(table(["AGENCY", "AGENT", "TOKEN", "ISSUED", "BY", "LAST REPORT"], rows))


@agents_group.command("revoke")
@click.argument("device")
@inventory_option
@db_option
@operator_option
@click.option("--reason", default="", help="why (kept in the audit log)")
def agents_revoke(device: str, inventory: Path | None, db: Path, operator: str | None, reason: str) -> None:
    """Revoke DEVICE's agent token at once; its reports are refused from now on."""
    store = _open_state(db, inventory)
    store.revoke_agent(device, operator_name(operator), reason)
    click.echo(f"agent {device!r}: token revoked; its reports are refused from now on")


# -- status / audit ---------------------------------------------------------------------------
@main.command("status")
@inventory_option
@db_option
@click.option("--json", "as_json", is_flag=True)
def status(inventory: Path | None, db: Path, as_json: bool) -> None:
    """Agencies and devices: last seen, current in/out rate, uptime."""
    from noc.views import status_table

    if not db.exists() and inventory is None:
        raise click.UsageError(f"no NOC state at {db}: start the NOC first (pantau noc serve) or pass --db")
    store = _open_state(db, inventory)
    rows = store.status_rows()
    click.echo(json.dumps(rows, indent=2) if as_json else status_table(rows))


@main.group("audit")
def audit_group() -> None:
    """The audit trail of operator actions."""


@audit_group.command("list")
@db_option
@inventory_read_option
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def audit_list(db: Path, limit: int, as_json: bool) -> None:
    """The latest operator actions: who, when, what, why."""
    from noc.views import table, when

    entries = _open_state(db, None).audit_entries(limit)
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in entries], indent=2))
        return
    click.echo(table(["#", "WHEN", "WHO", "ACTION", "TARGET", "REASON"],
                     [[str(e.id), when(e.at), e.actor, e.action, e.target, e.reason] for e in entries]))


@audit_group.command("verify")
@db_option
@inventory_read_option
def audit_verify(db: Path) -> None:
    """Check the audit log's hash chain: any edited or removed entry breaks it."""
    n, bad = _open_state(db, None).verify_audit()
    if bad is not None:
        click.echo(f"audit log BROKEN at entry #{bad} (of {n} checked): it was altered after it was written", err=True)
        sys.exit(8)
    click.echo(f"audit log intact: {n} entries, hash chain verified")


# -- dashboards -----------------------------------------------------------------------------
@main.group("dashboards")
def dashboards_group() -> None:
    """Grafana dashboards built from pantau's metric schema."""


@dashboards_group.command("build")
@click.option("--out", type=click.Path(path_type=Path), default=Path("var/grafana"), show_default=True)
@click.option("--datasource-url", default="http://127.0.0.1:8428", show_default=True,
              help="VictoriaMetrics (Prometheus API) URL as Grafana reaches it")
def dashboards_build(out: Path, datasource_url: str) -> None:
    """Write dashboard JSON and Grafana provisioning files (data source, dashboard provider)."""
    from dashboards.output import write_provisioning

    for path in write_provisioning(out, datasource_url):
        click.echo(f"wrote {path}")
    click.echo(f"point Grafana's provisioning directory at {out / 'provisioning'} (see README)")


@dashboards_group.command("push")
@click.option("--url", required=True, help="Grafana base URL, e.g. https://grafana.kota.go.id")
@click.option("--token-env", default="GRAFANA_TOKEN", show_default=True,
              help="environment variable holding a Grafana service-account token")
@click.option("--folder-uid", default=None, help="Grafana folder to put the dashboards in")
@click.option("--datasource-url", default=None,
              help="create or update pantau's data source with this VictoriaMetrics URL (as Grafana reaches it); "
                   "without it the data source must already exist")
def dashboards_push(url: str, token_env: str, folder_uid: str | None, datasource_url: str | None) -> None:
    """Create or replace the dashboards (and the data source they query) through Grafana's HTTP API."""
    from dashboards.output import push

    token = os.environ.get(token_env, "")
    if not token:
        raise click.UsageError(f"set {token_env} to a Grafana service-account token (never on the command line)")
    for what in push(url, token, folder_uid=folder_uid, datasource_url=datasource_url):
        click.echo(f"pushed {what}")


# -- demo -----------------------------------------------------------------------------------
@main.command("demo")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path("var/demo"), show_default=True)
@click.option("--port", type=int, default=8470, show_default=True)
@click.option("--interval", type=float, default=5.0, show_default=True, help="agent collection interval")
@click.option("--duration", type=float, default=None, help="stop by itself after this many seconds")
@click.option("--no-tsdb", is_flag=True, help="do not start VictoriaMetrics even if installed")
@click.option("--inventory", type=click.Path(path_type=Path, exists=True), default=None,
              help="use this city instead of the embedded demo city")
@click.option("--outage-at", type=float, default=12.0, show_default=True,
              help="seconds until the embedded city's core router loses power")
@click.option("--outage-for", type=float, default=70.0, show_default=True, help="seconds until it is back")
def demo(state_dir: Path, port: int, interval: float, duration: float | None, no_tsdb: bool,
         inventory: Path | None, outage_at: float, outage_for: float) -> None:
    """Start a working NOC on embedded defaults with the demo city's agents running on this host."""
    from noc.demo import DemoOptions, run_demo

    run_demo(DemoOptions(state_dir, port, interval, duration, not no_tsdb, inventory, outage_at, outage_for))

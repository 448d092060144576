"""`pantau snmp discover|poll`: ask one device what it has, with errors an operator can act on."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict
from pathlib import Path

import click

from collectors.snmp.client import SnmpClient, SnmpTarget
from collectors.snmp.poller import DevicePoll, poll_device
from core.errors import ConfigError, DeviceAuthError, DeviceError, DeviceUnreachable
from core.units import format_duration, format_rate
from noc.inventory import Secrets, load_inventory, secrets_path
from noc.model import Device, DeviceKind
from noc.snmp import interface_agency, target_for
from noc.views import table


def _env(name: str | None, what: str) -> str:
    if not name:
        raise click.UsageError(f"{what} is needed: pass --{what.replace(' ', '-')}-env VARIABLE "
                               "(secrets are never taken on the command line)")
    value = os.environ.get(name, "")
    if not value:
        raise click.UsageError(f"the environment variable {name} ({what}) is not set")
    return value


def resolve_target(host: str | None, device: str | None, inventory: Path | None, version: str, port: int,
                   community_env: str | None, user: str | None, auth_key_env: str | None,
                   priv_key_env: str | None, auth_protocol: str, priv_protocol: str, timeout: float,
                   retries: int) -> tuple[SnmpTarget, Device | None, set[str]]:
    if device:
        if inventory is None:
            raise click.UsageError("--device needs --inventory (or PANTAU_INVENTORY)")
        inv = load_inventory(inventory)
        dev = inv.device(device)
        if dev is None:
            raise ConfigError(f"device {device!r} is not in {inventory}")
        return target_for(dev, Secrets(secrets_path(inventory, inv)), host), dev, {a.id for a in inv.agencies}
    if not host:
        raise click.UsageError("give a HOST, or --device ID with --inventory")
    if version == "2c":
        t = SnmpTarget(host, host, port, "2c", community=_env(community_env, "community"), timeout=timeout,
                       retries=retries)
    else:
        if not user:
            raise click.UsageError("SNMPv3 needs --user")
        t = SnmpTarget(host, host, port, "3", user=user, auth_key=_env(auth_key_env, "auth key"),
                       priv_key=_env(priv_key_env, "priv key"), auth_protocol=auth_protocol,
                       priv_protocol=priv_protocol, timeout=timeout, retries=retries)
    return t, None, set()


def _uptime_s(poll: DevicePoll) -> float | None:
    return None if poll.sys_uptime_ticks is None else poll.sys_uptime_ticks / 100


def _uptime_text(poll: DevicePoll) -> str:
    """``up 3d 4h``, or that the device did not say (no sysUpTime in its answer)."""
    uptime = _uptime_s(poll)
    return "uptime unknown (no sysUpTime in the answer)" if uptime is None else f"up {format_duration(uptime)}"


def _oper(up: bool | None) -> str:
    return "?" if up is None else ("up" if up else "down")


def _run(t: SnmpTarget) -> DevicePoll:
    poll = asyncio.run(poll_device(SnmpClient(), t))
    if not poll.ok:
        cls = {"unreachable": DeviceUnreachable, "auth": DeviceAuthError}.get(poll.error_kind, DeviceError)
        raise cls(poll.error)
    return poll


def target_options(f: click.decorators.FC) -> click.decorators.FC:
    for opt in reversed([
        click.argument("host", required=False),
        click.option("--device", default=None, help="use this inventory device's address and credentials"),
        click.option("--inventory", type=click.Path(path_type=Path, exists=True), envvar="PANTAU_INVENTORY"),
        click.option("--version", "version", type=click.Choice(["2c", "3"]), default="2c", show_default=True),
        click.option("--port", type=int, default=161, show_default=True),
        click.option("--community-env", default=None, help="environment variable holding the community"),
        click.option("--user", default=None, help="SNMPv3 user (authPriv)"),
        click.option("--auth-key-env", default=None, help="environment variable holding the v3 auth key"),
        click.option("--priv-key-env", default=None, help="environment variable holding the v3 priv key"),
        click.option("--auth-protocol", default="SHA", show_default=True),
        click.option("--priv-protocol", default="AES", show_default=True),
        click.option("--timeout", type=float, default=2.0, show_default=True),
        click.option("--retries", type=int, default=1, show_default=True),
        click.option("--json", "as_json", is_flag=True),
    ]):
        f = opt(f)
    return f


@click.command("discover")
@target_options
def discover(as_json: bool, **kw: object) -> None:
    """What a device has: its interfaces and the agency each one maps to."""
    t, dev, agencies = resolve_target(**kw)  # type: ignore[arg-type]
    poll = _run(t)
    probe = dev or Device(t.name, DeviceKind.ROUTER, t.host)
    rows: list[dict[str, object]] = []
    body: list[list[str]] = []
    for i in poll.interfaces:
        agency = interface_agency(probe, i.name, i.alias, agencies) if agencies else None
        how = ("inventory" if probe.agency_of_interface(i.name) else "ifAlias") if agency else "-"
        rows.append({"if_index": i.index, "name": i.name, "descr": i.descr, "alias": i.alias,
                     "up": i.up, "speed_bps": i.speed_bps, "counters": f"{i.bits}-bit",
                     "agency": agency, "mapped_by": how})
        body.append([str(i.index), i.name, i.alias[:30], _oper(i.up), format_rate(i.speed_bps), f"{i.bits}-bit",
                     f"{agency} ({how})" if agency else "-"])
    if as_json:
        click.echo(json.dumps({"device": t.name, "sys_name": poll.sys_name, "sys_descr": poll.sys_descr,
                               "uptime_s": _uptime_s(poll), "interfaces": rows}, indent=2))
        return
    click.echo(f"{t.where}: {poll.sys_name or '(no sysName)'} — {poll.sys_descr[:80]}")
    click.echo(f"{_uptime_text(poll)}; {len(rows)} interfaces; "
               f"answered in {poll.duration_s * 1000:.0f} ms")
    click.echo(table(["IFINDEX", "NAME", "ALIAS", "OPER", "SPEED", "COUNTERS", "AGENCY"], body))


@click.command("poll")
@target_options
def poll_cmd(as_json: bool, **kw: object) -> None:
    """Poll a device once and print its counters."""
    t, _dev, _ = resolve_target(**kw)  # type: ignore[arg-type]
    poll = _run(t)
    if as_json:
        click.echo(json.dumps(asdict(poll), indent=2))
        return
    click.echo(f"{t.where}: {_uptime_text(poll)}, "
               f"poll took {poll.duration_s * 1000:.0f} ms")
    click.echo(table(["IFINDEX", "NAME", "IN OCTETS", "OUT OCTETS", "BITS", "IN ERR", "OUT ERR", "OPER"], [
        [str(i.index), i.name, str(i.in_octets), str(i.out_octets), str(i.bits), str(i.in_errors or 0),
         str(i.out_errors or 0), _oper(i.up)] for i in poll.interfaces]))

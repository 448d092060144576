"""`pantau demo`: a working NOC on embedded defaults, with the demo city's agents on this host.

Starts VictoriaMetrics when it is installed, the NOC collector with SQLite state, and one real
agent per demo server (as an unprivileged user where possible); prints the status table as
reports arrive; stops everything it started on Ctrl-C or after ``--duration``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
import tomllib
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click

from core.units import format_duration, format_rate
from noc import procs
from noc.backup_cli import status_table as backup_status_table
from noc.backups import BackupService
from noc.bandwidth.ledger import Ledger
from noc.bw_cli import router_table, show_rows, show_table
from noc.demo_backups import agent_job, demo_backup_secrets, prepare
from noc.incidents import get, listing
from noc.inventory import Secrets, load_inventory, secrets_path
from noc.lab import can_build_labs, router_lab
from noc.model import Inventory
from noc.state import StateStore
from noc.views import status_table, table


@dataclass(frozen=True)
class DemoOptions:
    state_dir: Path
    port: int
    interval: float
    duration: float | None
    tsdb: bool
    inventory: Path | None
    outage_at_s: float = 12.0  # when the embedded city's core router loses power
    outage_for_s: float = 70.0  # and how long until it is back


EDGE_ROUTER = """
# The edge router that enforces the division: Linux with tc, in network namespaces the demo built
# (sshd inside, reached over a private veth). The NOC's reconciler pushes the queues to it.
[[devices]]
id = "edge-rtr"
kind = "router"
vendor = "linux"
address = "{address}"
site = "pusat-data"
ssh = {{ username = "root", key_file = "{key}" }}
shaping = {{ uplink = "isp-utama", lan = "{lan}" }}
"""
LAB_SUBNET = 200  # 10.99.200.0/30 management, .201 the ISP side, .202.0/24 the agencies (see city.toml)


def _reallocate(store: StateStore, inv: Inventory) -> None:
    """The demo's reallocation: a temporary move for a live-streamed city event, audited like any other."""
    ledger = Ledger(store, inv)
    change = ledger.move(50_000_000, "bappeda", "dinkes", "down", "pantau-demo",
                         "demo: live stream of the city anniversary from the hospital", until=time.time() + 900)
    for agency in change.after:
        b, a = change.before[agency], change.after[agency]
        click.echo(f"  {agency}: guaranteed down {format_rate(b.g_down)} -> {format_rate(a.g_down)}")
    click.echo("  (temporary: reverts by itself in 15 minutes; `pantau bw history` shows who, when and why)")


class _Outage:
    """The demo's scripted outage: the core router loses power (its snmpd stops) and bappeda-srv1,
    reached through it, goes silent; both return ``outage_s`` later. One root incident, the
    server's missed heartbeat attached to it; the router comes back on its own address with its
    own SNMPv3 engine (its boots up by one) and the incident resolves with its consequence."""

    def __init__(self, snmpd: subprocess.Popen[bytes], agent: subprocess.Popen[bytes] | None,
                 children: list[subprocess.Popen[bytes]], start_s: float, outage_s: float) -> None:
        self.snmpd, self.agent, self.children, self.phase = snmpd, agent, children, 0
        self.start_s, self.outage_s = start_s, outage_s

    def step(self, elapsed: float, start_snmpd: Any, start_agent: Any) -> None:
        if self.phase == 0 and elapsed >= self.start_s:
            self.phase = 1
            click.echo("\n== outage: the core router (core-rtr) loses power; bappeda-srv1 behind it goes silent "
                       f"(back in {self.outage_s:.0f} s) — watch one incident, with its consequence attached")
            for p in (self.snmpd, self.agent):
                if p is not None:
                    self.children.remove(p)
                    procs.stop(p)
        elif self.phase == 1 and elapsed >= self.start_s + self.outage_s:
            self.phase = 2
            click.echo("\n== the core router is back; bappeda-srv1 reports again")
            self.snmpd = start_snmpd()
            self.children.append(self.snmpd)
            if self.agent is not None:
                self.agent = start_agent()
                self.children.append(self.agent)


def incidents_table(store: StateStore) -> str:
    rows = listing(store.conn)
    if not rows:
        return "no open incidents"
    now = time.time()
    out = []
    for i in rows:
        attached = get(store.conn, i["id"])["attached"] if i["attached_count"] else []
        out.append([f"#{i['id']}", i["category"], i["agency"] or "-", i["device"] or "-",
                    format_duration(now - i["opened_at"]), i["summary"][:80]])
        out += [[f"  #{a['id']} ->#{i['id']}", a["category"], a["agency"] or "-", a["device"] or "-",
                 format_duration(now - a["opened_at"]), "attached: " + a["summary"][:70]] for a in attached
                if a["resolved_at"] is None]
    return table(["id", "category", "agency", "device", "open for", "summary"], out)


def _write_demo_secrets(path: Path) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f'core-rtr-snmp-auth = "{secrets.token_hex(12)}"\n'
                 f'core-rtr-snmp-priv = "{secrets.token_hex(12)}"\n'
                 f'disdik-sw1-community = "{secrets.token_hex(8)}"\n' + demo_backup_secrets())


def _start_demo_snmpd(state: Path, port: int, logs: Path, *, restart: bool = False) -> subprocess.Popen[bytes]:
    """snmpd as the core router. A ``restart`` keeps its persistent state, as a router's reboot keeps
    its SNMPv3 engine ID (its engineBoots goes up by one)."""
    keys = tomllib.loads((state / "secrets.toml").read_text())
    conf = state / "snmpd.conf"
    persist = state / "snmp"
    persist.mkdir(exist_ok=True)
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"agentAddress udp:127.0.0.1:{port}\n"
                 f"createUser pantau SHA {keys['core-rtr-snmp-auth']} AES {keys['core-rtr-snmp-priv']}\n"
                 "rouser pantau priv\n")
    for stale in [] if restart else persist.glob("*.conf"):
        stale.unlink()  # keys change every demo run: forget the previous run's users
    return subprocess.Popen(["snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(logs / "snmpd.log"),
                             "-p", str(state / "snmpd.pid")], env={**os.environ, "SNMP_PERSISTENT_DIR": str(persist)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _scheduled_backup(state: Path, home: Path) -> None:
    """dinkes-srv1's backup timer fires once: `pantau agent backup`, as root like its systemd unit.
    The result waits beside the agent's spool for its next report; the NOC still reads the
    repository itself."""
    job = agent_job(state, tomllib.loads((state / "secrets.toml").read_text()), "dinkes", home)
    out = subprocess.run([*procs.PANTAU, "agent", "backup", "--job", str(job), "--id", "dinkes-srv1",
                          "--results", str(home / "backup-results")], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        click.echo(f"dinkes-srv1's scheduled backup FAILED (exit {out.returncode}): {out.stderr.strip()}")
        return
    click.echo(f"dinkes-srv1's backup timer fired (pantau agent backup): {out.stdout.strip()}; its agent reports "
               "the run, the NOC verifies the repository itself")


def run_demo(opt: DemoOptions) -> None:
    state = opt.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    snmp_port = None
    stack = contextlib.ExitStack()
    if opt.inventory is not None:
        inv_path = opt.inventory.resolve()
    else:
        inv_path = state / "city.toml"
        snmp_port = procs.free_udp_port()
        text = resources.files("noc").joinpath("demo/city.toml").read_text()
        text = text.replace("port = 16161", f"port = {snmp_port}")
        why_not = can_build_labs()
        if why_not is None:
            lab_dir = state / "edge-rtr"
            shutil.rmtree(lab_dir, ignore_errors=True)
            lab_dir.mkdir()
            lab = stack.enter_context(router_lab(lab_dir, LAB_SUBNET))
            text += EDGE_ROUTER.format(address=lab.mgmt_ip, key=lab.key_file, lan=lab.lan_if)
            click.echo(f"built the edge router edge-rtr (Linux, sshd + tc) in network namespace {lab.rtr}")
        else:
            click.echo(f"no shaping router in this demo: {why_not}")
        _write_demo_secrets(state / "secrets.toml")
        if shutil.which("restic"):
            click.echo("building the demo's restic repositories (Pusat Data and DR site) with good, late and "
                       "broken backups …")
            text += prepare(state, tomllib.loads((state / "secrets.toml").read_text()))
        else:
            click.echo("no backups in this demo: restic is not installed (scripts/setup installs it)")
        inv_path.write_text(text)
    inv = load_inventory(inv_path)
    db = state / "noc.sqlite"
    store = StateStore(db)
    store.sync_inventory(inv)
    Ledger(store, inv).seed()
    backups = BackupService(store, inv, Secrets(secrets_path(inv_path, inv)))
    children: list[subprocess.Popen[bytes]] = []
    vm = None
    reallocated = opt.inventory is not None  # only the embedded demo city reallocates by itself
    try:
        tsdb_url = None
        if opt.tsdb and procs.victoria_metrics_binary():
            vm_port = procs.free_port()
            click.echo(f"starting VictoriaMetrics on 127.0.0.1:{vm_port} (data in {state / 'vm'})")
            vm = procs.start_victoria_metrics(state / "vm", vm_port, logs / "victoria-metrics.log")
            tsdb_url = f"http://127.0.0.1:{vm_port}"
        elif opt.tsdb:
            click.echo("VictoriaMetrics is not installed: metrics wait in the NOC outbox (scripts/setup installs it)")
        snmpd = None
        if snmp_port is not None and shutil.which("snmpd"):
            snmpd = _start_demo_snmpd(state, snmp_port, logs)
            children.append(snmpd)
            click.echo(f"starting snmpd on 127.0.0.1:{snmp_port} as the demo's core router (SNMPv3 authPriv)")
        click.echo(f"starting the NOC collector on 127.0.0.1:{opt.port} (state {db}, log {logs / 'noc.log'})")
        children.append(procs.start_noc(inv_path, db, opt.port, logs / "noc.log", tsdb_url=tsdb_url,
                                        extra=["--reconcile-every", "30s", "--backup-every", "60s",
                                               "--uptime-every", "2s", "--notify-hold", "20s"]))
        noc_url = f"http://127.0.0.1:{opt.port}"
        agents = [d for d in inv.devices if d.agent]
        agent_procs: dict[str, subprocess.Popen[bytes]] = {}
        for d in agents:
            home = state / "agents" / d.id
            home.mkdir(parents=True, exist_ok=True)
            token_file = home / "token"
            token = store.add_agent(d.id, "pantau-demo", "demo start", rotate=True)
            token_file.unlink(missing_ok=True)
            token_file.touch(mode=0o600)
            token_file.write_text(token + "\n")
            agent_procs[d.id] = procs.start_agent(d.id, noc_url, token_file, home / "spool",
                                                  logs / f"agent-{d.id}.log", interval=opt.interval)
            children.append(agent_procs[d.id])
        if opt.inventory is None and inv.backup_policies and "dinkes-srv1" in agent_procs:
            _scheduled_backup(state, state / "agents" / "dinkes-srv1")
        who = procs.agent_user_args()
        click.echo(f"started {len(agents)} agent(s) every {opt.interval:.0f}s "
                   f"({'as user nobody' if who[:1] == ['--user'] else 'as the current user'}); Ctrl-C stops the demo")
        started = time.monotonic()
        outage = (_Outage(snmpd, agent_procs.get("bappeda-srv1"), children, opt.outage_at_s, opt.outage_for_s)
                  if opt.inventory is None and snmpd else None)
        every = max(10.0, 2 * opt.interval)
        next_print = started + min(every, 2 * opt.interval + 1)
        while opt.duration is None or time.monotonic() - started < opt.duration:
            time.sleep(0.5)
            for p in children:
                if p.poll() is not None:
                    raise click.ClickException(f"a demo process exited early (code {p.returncode}): "
                                               f"{p.args!s:.200}; see {logs}")
            if outage is not None:
                outage.step(time.monotonic() - started,
                            lambda: _start_demo_snmpd(state, snmp_port or 0, logs, restart=True),
                            lambda: procs.start_agent("bappeda-srv1", noc_url, state / "agents" / "bappeda-srv1" /
                                                      "token", state / "agents" / "bappeda-srv1" / "spool",
                                                      logs / "agent-bappeda-srv1.log", interval=opt.interval))
            if time.monotonic() >= next_print:
                next_print += every
                click.echo(f"\n== {inv.city} — status at {time.strftime('%H:%M:%S')}")
                click.echo(status_table(store.status_rows()))
                click.echo("\n== the division of the uplink: allocations and current use (pantau bw show)")
                click.echo(show_table(*show_rows(store, Ledger(store, inv), 86400.0), "24h"))
                if any(d.shaping for d in inv.devices):
                    click.echo("\n== shaping routers: the division pushed and read back (pantau bw plan)")
                    click.echo(router_table(store))
                click.echo("\n== incidents for the service desk (pantau incidents list)")
                click.echo(incidents_table(store))
                if inv.backup_policies:
                    click.echo("\n== backups, verified by the NOC at both sites (pantau backup status)")
                    click.echo(backup_status_table(backups.status()))
                if not reallocated:
                    reallocated = True
                    click.echo("\n== reallocating: 50 Mbit/s of guaranteed download from bappeda to dinkes")
                    _reallocate(store, inv)
        if vm is not None and tsdb_url:
            q = urllib.parse.quote("count(pantau_iface_rx_bytes)")
            with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                res = procs.http_json(f"{tsdb_url}/api/v1/query?query={q}")
                n = res["data"]["result"][0]["value"][1]  # type: ignore[index]
                click.echo(f"\nVictoriaMetrics at {tsdb_url} holds {n} interface series from the demo agents")
    except KeyboardInterrupt:
        click.echo("\nstopping the demo")
    finally:
        for p in reversed(children):
            procs.stop(p)
        procs.stop(vm)
        store.close()
        stack.close()

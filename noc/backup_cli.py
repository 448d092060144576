"""`pantau backup …`: status, run, replicate, verify and drill every agency's restic backups.

``status`` reads the NOC's last verdicts; ``verify`` and ``drill`` open the repositories themselves
(the NOC trusts no agent); ``run`` backs up an agency's paths from this host to the Pusat Data;
``replicate`` copies the Pusat Data snapshots the DR site lacks. ``--json`` everywhere. ``verify``
exits 10 when any site's verdict is not ok, so a cron job or a monitoring check can alert on it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from backup.policy import SITE_NAMES
from backup.restic import Restic
from core.units import format_duration
from noc.backups import BackupService
from noc.bw_cli import inventory_required, json_option
from noc.cli import db_option, operator_name, operator_option
from noc.inventory import Secrets, load_inventory, secrets_path
from noc.state import StateStore
from noc.views import ago, table

PROBLEMS_EXIT = 10

workdir_option = click.option("--workdir", type=click.Path(path_type=Path), default=Path("var/backup-drills"),
                              show_default=True, help="where drills restore their sample files (mode 700)")


def _service(inventory: Path, db: Path, workdir: Path = Path("var/backup-drills")) -> BackupService:
    inv = load_inventory(inventory)
    store = StateStore(db)
    store.sync_inventory(inv)
    return BackupService(store, inv, Secrets(secrets_path(inventory, inv)), restic=Restic(), workdir=workdir)


def _progress(as_json: bool) -> Any:
    return None if as_json else (lambda line: click.echo(f"  {line}", err=True))


def status_table(rows: list[dict[str, Any]]) -> str:
    now = time.time()
    body = []
    for r in rows:
        age = "-" if r["age_s"] is None else f"{format_duration(r['age_s'])} / {format_duration(r['rpo_s'])}"
        ck = r["check"]
        check = "never" if ck is None else (f"{'ok' if ck['ok'] else 'DAMAGE'} {ago(now - ck['at'])}"
                                            + (f" ({ck['subset']})" if ck["subset"] else ""))
        dr = r["drill"]
        drill = "never" if dr is None else (f"{'ok' if dr['ok'] else 'FAILED'} {ago(now - dr['at'])}"
                                            + (f", RTO {dr['restore_s']:.1f}s" if dr["ok"] else ""))
        lag = ""
        if r["site"] == "dr" and r["dr_lag_s"] is not None:
            lag = f"lag {format_duration(r['dr_lag_s'])}" + (f", {len(r['missing_copies'])} missing"
                                                              if r["missing_copies"] else "")
        body.append([r["agency"], SITE_NAMES[r["site"]], r["verdict"].upper() if r["verdict"] != "ok" else "ok",
                     r["latest"] or "-", age, check, drill, lag])
    out = table(["agency", "site", "verdict", "latest", "age / RPO", "last check", "last drill", "DR"], body)
    notes = [f"  {f['message']}" for r in rows for f in r["findings"]]
    return out + ("\n\n" + "\n".join(notes) if notes else "")


@click.command("status")
@click.argument("agency", required=False)
@inventory_required
@db_option
@json_option
def backup_status(agency: str | None, inventory: Path, db: Path, as_json: bool) -> None:
    """Per agency and site: last snapshot, age against the RPO, last check and drill, the verdict.

    Shows the NOC's last verification; `pantau backup verify` reads the repositories afresh."""
    svc = _service(inventory, db)
    rows = svc.status(agency)
    click.echo(json.dumps(rows, indent=2) if as_json else status_table(rows))


@click.command("verify")
@click.argument("agency", required=False)
@click.option("--check/--no-check", "check", default=None,
              help="run the integrity check now / never (default: when due by the policy's verify_every)")
@click.option("--drill/--no-drill", "drill", default=None,
              help="run a restore drill now / never (default: when due by the policy's drill_every)")
@inventory_required
@db_option
@workdir_option
@json_option
def backup_verify(agency: str | None, check: bool | None, drill: bool | None, inventory: Path, db: Path,
                  workdir: Path, as_json: bool) -> None:
    """Read every repository (both sites) and judge: fresh, copied, intact, restorable."""
    svc = _service(inventory, db, workdir)
    pols = svc.policies(agency)
    if not as_json:
        click.echo(f"verifying {len(pols)} agenc{'y' if len(pols) == 1 else 'ies'} at 2 sites …", err=True)
    verdicts = svc.verify(pols, check=check, drill=drill, progress=_progress(as_json))
    rows = svc.status(agency)
    click.echo(json.dumps(rows, indent=2) if as_json else status_table(rows))
    if any(v.verdict != "ok" for v in verdicts):
        sys.exit(PROBLEMS_EXIT)


@click.command("drill")
@click.argument("agency")
@inventory_required
@db_option
@workdir_option
@json_option
def backup_drill(agency: str, inventory: Path, db: Path, workdir: Path, as_json: bool) -> None:
    """Restore sample files of the newest snapshot at both sites, verify them, and time it (RTO)."""
    svc = _service(inventory, db, workdir)
    svc.verify(svc.policies(agency), check=False, drill=True, progress=_progress(as_json))
    rows = svc.status(agency)
    if as_json:
        click.echo(json.dumps([{"agency": r["agency"], "site": r["site"], "drill": r["drill"], "verdict": r["verdict"]}
                               for r in rows], indent=2))
        return
    for r in rows:
        d = r["drill"]
        if d is None:
            click.echo(f"{agency} at the {SITE_NAMES[r['site']]}: no drill ({r['verdict']})")
            continue
        rto = f"; whole snapshot ≈ {format_duration(d['rto_estimate_s'])}" if d["rto_estimate_s"] else ""
        click.echo(f"{agency} at the {SITE_NAMES[r['site']]}: {'ok' if d['ok'] else 'FAILED'} — {d['detail']}{rto}")
    if any(r["drill"] is None or not r["drill"]["ok"] for r in rows):
        sys.exit(PROBLEMS_EXIT)


@click.command("run")
@click.argument("agency")
@inventory_required
@db_option
@operator_option
@json_option
def backup_run(agency: str, inventory: Path, db: Path, operator: str | None, as_json: bool) -> None:
    """Back up AGENCY's paths from this host to its Pusat Data repository now (then its retention)."""
    svc = _service(inventory, db)
    [policy] = svc.policies(agency)
    actor = operator_name(operator)
    res = svc.run(policy, actor)
    svc.store.audit(actor, "backup.run", agency, None, res.to_json(), "pantau backup run")
    if as_json:
        click.echo(json.dumps(res.to_json(), indent=2))
    elif res.ok:
        click.echo(f"{agency}: snapshot {res.snapshot_id} saved to {policy.pusat_data_repo}: {res.files} files, "
                   f"{res.bytes} bytes ({res.added} new) in {res.duration_s:.1f} s")
        for w in res.warnings:
            click.echo(f"  warning: {w}")
    if not res.ok:
        click.echo(f"pantau: backup of {agency} FAILED: {res.error}", err=True)
        sys.exit(9)


@click.command("replicate")
@click.argument("agency", required=False)
@inventory_required
@db_option
@operator_option
@json_option
def backup_replicate(agency: str | None, inventory: Path, db: Path, operator: str | None, as_json: bool) -> None:
    """Copy the Pusat Data snapshots the DR site lacks (restic copy), then apply retention at DR."""
    svc = _service(inventory, db)
    actor = operator_name(operator)
    out = []
    for p in svc.policies(agency):
        copied, error = svc.replicate(p)
        svc.store.audit(actor, "backup.replicate", p.agency, None, {"copied": copied, "error": error},
                        "pantau backup replicate")
        out.append({"agency": p.agency, "copied": copied, "error": error})
        if not as_json:
            done = f"FAILED: {error}" if error else f"{copied} snapshot(s) copied to the DR site"
            click.echo(f"{p.agency}: {done}")
    if as_json:
        click.echo(json.dumps(out, indent=2))
    if any(o["error"] for o in out):
        sys.exit(9)

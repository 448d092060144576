"""`pantau agent …`: the agent's own commands. Needs only click and psutil."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from agents.loop import Agent
from agents.privileges import drop_to
from agents.probes import PsutilProbe
from agents.sender import Sender
from agents.spool import Spool
from core.errors import PantauError


def _read_token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise click.UsageError(f"cannot read the token file {token_file}: {exc.strerror}") from exc
        if token_file.stat().st_mode & 0o077:
            logging.getLogger("pantau.agent").warning(
                "the token file %s is readable by other users; run: chmod 600 %s", token_file, token_file)
    else:
        token = os.environ.get("PANTAU_AGENT_TOKEN", "").strip()
    if not token:
        raise click.UsageError("no agent token: pass --token-file PATH or set PANTAU_AGENT_TOKEN "
                               "(tokens are never accepted on the command line, where `ps` would show them)")
    return token


@click.group("agent")
def agent_group() -> None:
    """The host agent that runs on agency servers."""


@agent_group.command("run")
@click.option("--noc", "noc_url", required=True, envvar="PANTAU_NOC_URL", help="NOC collector URL, e.g. https://noc:8470")
@click.option("--id", "agent_id", required=True, envvar="PANTAU_AGENT_ID", help="this agent's device id")
@click.option("--token-file", type=click.Path(path_type=Path), envvar="PANTAU_AGENT_TOKEN_FILE")
@click.option("--spool", "spool_dir", type=click.Path(path_type=Path), default=Path("/var/lib/pantau-agent/spool"),
              show_default=True, envvar="PANTAU_AGENT_SPOOL")
@click.option("--interval", type=float, default=60.0, show_default=True, help="seconds between collections")
@click.option("--ca-file", type=click.Path(exists=True), default=None, help="CA bundle to verify the NOC's TLS")
@click.option("--interfaces", default="*", show_default=True, help="comma-separated interface name patterns")
@click.option("--spool-max-reports", type=int, default=20000, show_default=True)
@click.option("--spool-max-bytes", type=int, default=64 * 1024 * 1024, show_default=True)
@click.option("--user", default=None, help="when started as root, drop to this user (e.g. pantau-agent)")
@click.option("--allow-root", is_flag=True, help="run as root anyway (not recommended)")
@click.option("--count", type=int, default=None, help="stop after this many collections")
@click.option("--duration", type=float, default=None, help="stop after this many seconds")
@click.option("--journal", type=click.Path(path_type=Path), default=None,
              help="also append every report to this JSON-lines file (for debugging)")
@click.option("--backup-results", type=click.Path(path_type=Path),
              default=Path("/var/lib/pantau-agent/backup-results"), show_default=True,
              help="where `pantau agent backup` leaves its results for the next report")
@click.option("--log-level", default="INFO", show_default=True)
def run_agent(noc_url: str, agent_id: str, token_file: Path | None, spool_dir: Path, interval: float,
              ca_file: str | None, interfaces: str, spool_max_reports: int, spool_max_bytes: int, user: str | None,
              allow_root: bool, count: int | None, duration: float | None, journal: Path | None,
              backup_results: Path, log_level: str) -> None:
    """Measure this host and report to the NOC, spooling to disk while the NOC is unreachable."""
    logging.basicConfig(level=log_level.upper(), format=f"%(asctime)s %(levelname)s agent[{agent_id}] %(message)s")
    token = _read_token(token_file)
    if interval < 1:
        raise click.UsageError("--interval must be at least 1 second")
    if os.geteuid() == 0:
        if user:
            spool_dir.mkdir(parents=True, exist_ok=True)
            backup_results.mkdir(parents=True, exist_ok=True)
            own = [spool_dir, backup_results] + ([journal] if journal else [])
            if journal:
                journal.touch()
            drop_to(user, own)
        elif not allow_root:
            raise click.UsageError("the agent should not run as root: pass --user pantau-agent "
                                   "(the Ansible role creates it) or --allow-root")
    try:
        spool = Spool(spool_dir, spool_max_reports, spool_max_bytes)
        probe = PsutilProbe([p.strip() for p in interfaces.split(",") if p.strip()])
    except PantauError as exc:
        raise click.ClickException(str(exc)) from exc
    agent = Agent(agent_id, probe, spool, Sender(noc_url, token, ca_file=ca_file), interval=interval,
                  journal=journal, backup_results=backup_results)

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log = logging.getLogger("pantau.agent")
    log.info("reporting to %s every %.0fs as uid %d; %d report(s) waiting in %s",
             noc_url, interval, os.geteuid(), len(spool), spool_dir)
    agent.run(cycles=count, duration=duration)
    log.info("stopped; %d report(s) left in the spool for next time", len(spool))
    sys.stdout.flush()


@agent_group.command("backup")
@click.option("--job", "job_file", type=click.Path(path_type=Path), default=Path("/etc/pantau/backup.toml"),
              show_default=True, help="the backup job file (repository, password file, paths, retention)")
@click.option("--id", "agent_id", required=True, envvar="PANTAU_AGENT_ID", help="this device id (restic --host)")
@click.option("--results", "results_dir", type=click.Path(path_type=Path),
              default=Path("/var/lib/pantau-agent/backup-results"), show_default=True,
              help="where the result waits for the agent's next report")
@click.option("--json", "as_json", is_flag=True)
def backup_cmd(job_file: Path, agent_id: str, results_dir: Path, as_json: bool) -> None:
    """Run this server's scheduled backup to the Pusat Data now (systemd timer or cron runs this)."""
    import json

    from agents.backup_job import leave_result, load_job, run_job, wire_result

    try:
        job = load_job(job_file)
        res = run_job(job, agent_id)
    except PantauError as exc:
        click.echo(f"pantau: {exc}", err=True)
        sys.exit(exc.exit_code)
    leave_result(results_dir, res, job.repo)
    if as_json:
        click.echo(json.dumps(wire_result(res, job.repo), indent=2))
    elif res.ok:
        click.echo(f"{agent_id}: snapshot {res.snapshot_id} saved to {job.repo}: {res.files} files, {res.bytes} bytes "
                   f"({res.added} new) in {res.duration_s:.1f} s")
    if not res.ok:
        click.echo(f"pantau: backup of {agent_id} to {job.repo} FAILED: {res.error}", err=True)
        sys.exit(9)

"""The agency server's scheduled backup: read the job file, run restic, leave the result for the agent.

The job file (TOML, written by the Ansible role from the agency's policy) names the Pusat Data
repository, the paths, the retention and the password *file* (mode 600; never the password):

    repo = "sftp:backup@pusat-data.kota.go.id:/srv/restic/dinkes"
    password_file = "/etc/pantau/backup.pass"
    paths = ["/srv/simpus", "/var/backups/postgres"]
    retention = { daily = 7, weekly = 4, monthly = 6 }
    ssh_key = "/etc/pantau/backup_id_ed25519"      # sftp only
    known_hosts = "/etc/pantau/backup_known_hosts" # sftp only

The result goes to the results directory as one JSON file; the running agent attaches it to its
next report and deletes it once the report is safely spooled, so a result is delivered once, even
across NOC outages. The NOC records it as the agent's claim and still verifies the repositories
itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup.restic import Repo, Restic
from backup.runner import BackupRun, run_backup
from core.errors import ConfigError

MAX_RESULTS = 20  # per report; older results wait for the next one
_KEYS = {"repo", "password_file", "paths", "retention", "ssh_key", "known_hosts", "tags"}


@dataclass(frozen=True)
class BackupJob:
    repo: str
    password_file: Path
    paths: tuple[str, ...]
    retention: dict[str, int]
    ssh_key: str | None = None
    known_hosts: str | None = None


def load_job(path: Path) -> BackupJob:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the backup job file {path}: {exc}") from exc
    problems = [f"unknown key {k!r}" for k in doc if k not in _KEYS]
    for k in ("repo", "password_file", "paths"):
        if k not in doc:
            problems.append(f"{k!r} is required")
    paths = doc.get("paths", [])
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        problems.append("'paths' must be a non-empty list of paths")
    retention = doc.get("retention", {})
    if not isinstance(retention, dict) or not all(isinstance(v, int) and v >= 0 for v in retention.values()):
        problems.append("'retention' must be a table like { daily = 7, weekly = 4 }")
    if problems:
        raise ConfigError(f"the backup job file {path} is not valid", problems)
    return BackupJob(str(doc["repo"]), Path(doc["password_file"]), tuple(paths), dict(retention),
                     doc.get("ssh_key"), doc.get("known_hosts"))


def read_password(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigError(f"the backup password file {path} is readable by other users; run: chmod 600 {path}")
        pw = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the backup password file {path}: {exc.strerror}") from exc
    if not pw:
        raise ConfigError(f"the backup password file {path} is empty")
    return pw


def run_job(job: BackupJob, host: str, restic: Restic | None = None) -> BackupRun:
    repo = Repo(job.repo, read_password(job.password_file), job.ssh_key, job.known_hosts)
    return run_backup(restic or Restic(), repo, job.paths, host=host, keep=job.retention or None)


def leave_result(results_dir: Path, res: BackupRun, repo: str) -> Path:
    """Write the result atomically for the agent to pick up (readable by the agent's user)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    final = results_dir / f"backup-{res.at:.6f}.json"
    tmp = final.with_suffix(".tmp")
    tmp.write_text(json.dumps(wire_result(res, repo)))
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)
    return final


def wire_result(res: BackupRun, repo: str) -> dict[str, Any]:
    """The result as the report carries it (see ``agents.wire.BACKUP_RUN_SCHEMA``)."""
    return {"at": res.at, "ok": res.ok, "repo": repo[:500], "snapshot_id": res.snapshot_id, "files": res.files,
            "bytes": res.bytes, "added": res.added, "duration_s": round(res.duration_s, 3),
            "warnings": [w[:500] for w in res.warnings[:20]], "error": (res.error or "")[:2000] or None}


def pending_results(results_dir: Path | None) -> list[tuple[Path, dict[str, Any]]]:
    """Results waiting to be reported, oldest first; unreadable files are skipped (and kept)."""
    if results_dir is None or not results_dir.is_dir():
        return []
    out = []
    for f in sorted(results_dir.glob("backup-*.json"))[:MAX_RESULTS]:
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            d = None
        if not _well_formed(d):  # never let one bad file poison every report: set it aside
            with contextlib.suppress(OSError):
                f.rename(f.with_suffix(".bad"))
            continue
        out.append((f, d))
    return out


_TYPES: dict[str, tuple[type, ...]] = {
    "at": (int, float), "ok": (bool,), "repo": (str,), "snapshot_id": (str, type(None)), "files": (int,),
    "bytes": (int,), "added": (int,), "duration_s": (int, float), "warnings": (list,), "error": (str, type(None))}


def _well_formed(d: Any) -> bool:
    return (isinstance(d, dict) and set(d) == set(_TYPES)
            and all(isinstance(d[k], t) for k, t in _TYPES.items())
            and all(isinstance(w, str) for w in d["warnings"]))

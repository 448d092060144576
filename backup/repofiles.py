"""When restic finished writing each snapshot, read from the repository's own files.

restic 0.14's snapshots carry the time their backup *started* but no duration. A snapshot's file
(``snapshots/<id>``) is written once, when its backup finishes, so the file's modification time on
the repository host is the end: end − start is how long the backup ran, measured by the NOC from
the repository itself rather than taken from the runner's report. Local repositories are read with
``os.scandir``; sftp: repositories with paramiko's SFTP client under the policy's key and
known_hosts (an unknown host key is refused, as the ``ssh`` restic runs refuses it). Other
backends (rest:, s3:, …) give no times. A copy's file is written by ``restic copy``, so only
original snapshots are timed, at the site where the backup wrote them.
"""

from __future__ import annotations

import getpass
import os
import stat
from pathlib import Path
from typing import Any

from backup.restic import Repo, Snapshot, sftp_parts
from core.errors import RepoMissing, RepoUnreachable


def local_path(location: str) -> Path | None:
    """The directory of a local repository ("/srv/repo" or "local:/srv/repo"), None for other backends."""
    if location.startswith("local:"):
        return Path(location[len("local:"):])
    return Path(location) if location.startswith(("/", "./", "../")) or ":" not in location else None


def saved_times(repo: Repo, timeout_s: float = 30.0) -> dict[str, float]:
    """Snapshot id → when its file was written (unix seconds); {} for a backend that cannot be listed."""
    path = local_path(repo.location)
    if path is not None:
        try:
            with os.scandir(path / "snapshots") as entries:
                return {e.name: e.stat().st_mtime for e in entries if e.is_file()}
        except FileNotFoundError:
            raise RepoMissing(f"no restic repository at {repo.location} (no snapshots directory)") from None
    parts = sftp_parts(repo.location)
    if parts is None:
        return {}
    user, host, port, rel = parts
    return _sftp_times(repo, user, host, port or 22, rel, timeout_s=timeout_s)


def _sftp_times(repo: Repo, user: str | None, host: str, port: int, path: str, *, timeout_s: float) -> dict[str, float]:
    import paramiko  # the NOC's dependency (via netmiko); the agent never reads a repository's files

    where = f"repository {repo.location}"
    client = paramiko.SSHClient()
    if repo.known_hosts:
        client.load_host_keys(repo.known_hosts)
    else:
        client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(host, port=port, username=user or getpass.getuser(), key_filename=repo.ssh_key,
                       look_for_keys=repo.ssh_key is None, allow_agent=False, timeout=timeout_s,
                       banner_timeout=timeout_s, auth_timeout=timeout_s)
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(timeout_s)
        attrs: list[Any] = sftp.listdir_attr(f"{path.rstrip('/')}/snapshots" if path else "snapshots")
    except FileNotFoundError:
        raise RepoMissing(f"no restic repository at {repo.location} (no snapshots directory)") from None
    except (OSError, paramiko.SSHException) as exc:  # refused, timed out, host key, auth
        raise RepoUnreachable(f"{where}: its files could not be listed over sftp: {exc or type(exc).__name__}; "
                              "check the host, SSH key and known_hosts") from None
    finally:
        client.close()
    return {a.filename: float(a.st_mtime) for a in attrs
            if a.st_mode is not None and stat.S_ISREG(a.st_mode) and a.st_mtime is not None}


def durations(snaps: tuple[Snapshot, ...], saved: dict[str, float]) -> dict[str, float]:
    """Seconds each original snapshot's backup ran: its file's time minus its start (never negative).

    The start comes from the source host's clock and the end from the repository host's, so a
    skew between them shifts every duration alike; copies are left out (written by ``restic copy``)."""
    return {s.id: max(0.0, saved[s.id] - s.time) for s in snaps if s.original is None and s.id in saved}

"""The scheduled backup of one agency host: restic backup to the Pusat Data, retention, a typed result.

restic 0.14 exits 0 when a source path does not exist and saves an empty snapshot without
complaint; here both are failures. Retention (``forget --prune``) runs only after a good backup,
and a retention failure is a warning on a good run, not a lost backup.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from backup.restic import Repo, Restic
from core.errors import BackupError, BackupFailed


@dataclass(frozen=True)
class BackupRun:
    ok: bool
    at: float
    snapshot_id: str | None = None
    files: int = 0
    bytes: int = 0
    added: int = 0
    duration_s: float = 0.0
    warnings: tuple[str, ...] = ()
    error: str | None = None
    retention: str | None = None  # what forget --prune reported, when it ran
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


def run_backup(restic: Restic, repo: Repo, paths: Sequence[str], *, host: str, keep: dict[str, int] | None = None,
               tags: Sequence[str] = (), at: float | None = None, clock: Callable[[], float] = time.time,
               exists: Callable[[str], bool] = os.path.exists) -> BackupRun:
    """Back up ``paths`` to ``repo``; every failure is a result (``ok=False``) with the reason."""
    started = clock()
    t0 = time.monotonic()
    try:
        missing = [p for p in paths if not exists(p)]
        if missing:
            raise BackupFailed(f"source path(s) missing on {host}: {', '.join(missing)}; nothing was backed up "
                               "(fix the policy's paths or the mount)")
        s = restic.backup(repo, paths, host=host, tags=tags, at=at)
        vanished = [w for w in s.warnings if "does not exist" in w]
        if vanished:
            raise BackupFailed(f"restic skipped missing source path(s) on {host}: {'; '.join(vanished)}")
        if s.files_total == 0:
            raise BackupFailed(f"the snapshot {s.snapshot_id} from {host} holds no files: the source paths are "
                               "empty; treat this as a failed backup")
    except BackupError as exc:
        return BackupRun(False, started, duration_s=time.monotonic() - t0, error=str(exc))
    warnings = list(s.warnings)
    retention = None
    if keep:
        try:
            retention = restic.forget(repo, keep, host=host).strip().splitlines()[-1:] or [""]
        except BackupError as exc:
            warnings.append(f"retention (forget --prune) failed, snapshots are kept: {exc}")
    return BackupRun(True, started, s.snapshot_id, s.files_total, s.bytes_total, s.bytes_added,
                     time.monotonic() - t0, tuple(warnings), None, retention[0] if retention else None)

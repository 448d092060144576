"""Restore drills: restore sample files of a snapshot to a private temporary place, verify them, time it.

Verified three ways: restic's own ``restore --verify`` (content against the repository's hashes),
each file's size against the snapshot's listing, and — by the caller, across sites — the SHA-256
of the same file restored from the Pusat Data and from the DR copy of the same snapshot.
The time to restore the sample is the measured RTO of the sample; the whole snapshot's restore
time is estimated at the sample's throughput.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from backup.restic import Node, Repo, Restic, Snapshot
from core.errors import RepoError, RepoUnreachable


@dataclass(frozen=True)
class SampleFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DrillResult:
    snapshot_id: str
    ok: bool
    files: tuple[SampleFile, ...]
    bytes: int
    restore_s: float
    rto_estimate_s: float | None
    detail: str


def pick_samples(nodes: list[Node], k: int, seed: str) -> list[Node]:
    """Up to ``k`` regular files, non-empty ones first, chosen afresh for every seed."""
    files = sorted((n for n in nodes if n.type == "file"), key=lambda n: n.path)
    full = [n for n in files if n.size > 0]
    pool = full if len(full) >= k else files
    return sorted(random.Random(seed).sample(pool, min(k, len(pool))), key=lambda n: n.path)


def run_drill(restic: Restic, repo: Repo, snapshot: Snapshot, k: int, workdir: Path, seed: str,
              total_bytes: int | None = None) -> DrillResult:
    """Restore and verify ``k`` sample files of ``snapshot``. A repository that cannot be read raises
    (the verdict is then *unknown*); a restore that fails or restores wrong content is a failed drill."""
    try:
        samples = pick_samples(restic.ls(repo, snapshot.id), k, seed)
    except RepoUnreachable:
        raise
    except RepoError as exc:
        if exc.reason != "failed":
            raise
        return DrillResult(snapshot.id, False, (), 0, 0.0, None, f"could not list snapshot {snapshot.short_id}: {exc}")
    if not samples:
        return DrillResult(snapshot.id, False, (), 0, 0.0, None,
                           f"snapshot {snapshot.short_id} holds no file to restore")
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="drill-") as tmp:
        try:
            restore_s = restic.restore(repo, snapshot.id, Path(tmp), [n.path for n in samples])
        except RepoUnreachable:
            raise
        except RepoError as exc:
            if exc.reason != "failed":
                raise
            return DrillResult(snapshot.id, False, (), 0, 0.0, None,
                               f"restoring {len(samples)} file(s) of {snapshot.short_id} failed: {exc}")
        got: list[SampleFile] = []
        problems: list[str] = []
        for n in samples:
            f = Path(tmp) / n.path.lstrip("/")
            if not f.is_file():
                problems.append(f"{n.path} was not restored")
                continue
            size = f.stat().st_size
            if size != n.size:
                problems.append(f"{n.path} restored with {size} bytes, the snapshot lists {n.size}")
            got.append(SampleFile(n.path, size, _sha256(f)))
    total = sum(s.size for s in got)
    estimate = restore_s * total_bytes / total if total and total_bytes else None
    detail = "; ".join(problems) if problems else (f"{len(got)} file(s), {total} bytes restored and verified "
                                                   f"in {restore_s:.2f} s")
    return DrillResult(snapshot.id, not problems, tuple(got), total, restore_s, estimate, detail)


def compare_sites(a: DrillResult, b: DrillResult) -> list[str]:
    """Files restored at both sites whose content differs (the same snapshot must restore identically)."""
    other = {s.path: s.sha256 for s in b.files}
    return [f"{s.path} differs between the sites (sha256 {s.sha256[:12]} vs {other[s.path][:12]})"
            for s in a.files if s.path in other and other[s.path] != s.sha256]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""The NOC's side of backups: runs, DR replication, and verification that trusts no agent.

For every policy and both sites the NOC opens the repository itself, lists the snapshots, reads
their restore sizes once (and at the Pusat Data how long each backup ran, from the repository's own
files), runs the rotating integrity check and the restore drills when they are
due, and judges (:mod:`backup.verify`). Verdicts are kept with history, written as metrics, and
open or resolve incidents. restic calls run in a small thread pool; the store is written from the
calling thread only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from backup import repofiles
from backup.drill import DrillResult, compare_sites, run_drill
from backup.policy import SITE_NAMES, SITES, BackupPolicy
from backup.restic import CheckResult, Repo, Restic, Snapshot
from backup.runner import BackupRun, run_backup
from backup.verify import CheckFact, DrillFact, SiteFacts, SiteVerdict, judge, next_subset
from collectors import metrics
from core.errors import NotFoundError, PantauError, RepoError
from noc.incidents import open_incident, resolve_incident
from noc.inventory import Secrets
from noc.model import Inventory
from noc.state import StateStore

log = logging.getLogger("pantau.backup")

INCIDENT_KINDS = ("unknown", "corrupt", "restore_failed", "missing", "late", "incomplete", "suspect")
# what a cut-off source host explains (its backups stop arriving); damage never is
CONSEQUENCE_KINDS = ("late", "incomplete", "missing")
SIZE_HISTORY = 11  # restore sizes read for the newest snapshots only (the anomaly check uses 10 + 1)


@dataclass(frozen=True)
class SiteWork:
    """What one site's pass read and did (computed off the store's thread)."""

    facts: SiteFacts
    check: CheckResult | None = None
    drill: DrillResult | None = None
    new_sizes: tuple[tuple[str, int, int], ...] = ()
    new_durations: tuple[tuple[str, float], ...] = ()


class BackupService:
    def __init__(self, store: StateStore, inv: Inventory, secrets: Secrets, *, restic: Restic | None = None,
                 workdir: Path = Path("var/backup-drills"), clock: Callable[[], float] = time.time,
                 workers: int = 4) -> None:
        self.store, self.inv, self.secrets = store, inv, secrets
        self.restic = restic or Restic()
        self.workdir, self.clock, self.workers = workdir, clock, workers

    # -- policies and repositories -------------------------------------------------------------
    def policies(self, agency: str | None = None) -> list[BackupPolicy]:
        pols = [p for p in self.inv.backup_policies if agency is None or p.agency == agency]
        if agency is not None and not pols:
            known = ", ".join(sorted({p.agency for p in self.inv.backup_policies})) or "none"
            raise NotFoundError(f"agency {agency!r} has no backup policy in the inventory (policies exist for: "
                                f"{known})")
        return pols

    def repo(self, policy: BackupPolicy, site: str) -> Repo:
        pw = self.secrets.resolve(policy.password_for(site),
                                  f"the {SITE_NAMES[site]} repository of {policy.agency}")
        return Repo(policy.repo(site), pw, policy.ssh_key, policy.known_hosts)

    # -- runs and replication ---------------------------------------------------------------
    def run(self, policy: BackupPolicy, actor: str, at: float | None = None) -> BackupRun:
        """Back up the policy's paths from this host to the Pusat Data (what the agent's timer runs)."""
        res = run_backup(self.restic, self.repo(policy, "pusat_data"), policy.paths, host=policy.source,
                         keep=policy.retention or None, tags=[f"agency={policy.agency}"], at=at, clock=self.clock)
        self.record_run(policy.agency, res, actor)
        return res

    def record_run(self, agency: str, res: BackupRun, reported_by: str) -> None:
        with self.store.tx() as c:
            c.execute("INSERT INTO backup_runs (agency, site, at, ok, snapshot_id, files, bytes, added, duration_s, "
                      "warnings, error, reported_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                      (agency, "pusat_data", res.at, int(res.ok), res.snapshot_id, res.files, res.bytes, res.added,
                       res.duration_s, json.dumps(list(res.warnings)), res.error, reported_by))
            self.store.outbox_add(c, [metrics.line(metrics.BACKUP_RUN, {"agency": agency, "reported_by": reported_by},
                                                   {"ok": int(res.ok), "files": res.files, "bytes": res.bytes,
                                                    "seconds": res.duration_s}, int(res.at * 1e9))])

    def replicate(self, policy: BackupPolicy) -> tuple[int, str | None]:
        """Copy the Pusat Data snapshots the DR site lacks, then apply retention at DR; (copied, error)."""
        t0, at = time.monotonic(), self.clock()
        copied, error = 0, None
        try:
            dr = self.repo(policy, "dr")
            copied = self.restic.copy(self.repo(policy, "pusat_data"), dr)
            if policy.retention:
                self.restic.forget(dr, policy.retention, host=policy.source)
        except PantauError as exc:  # restic's errors, and a missing secret
            error = str(exc)
            log.error("DR copy for %s failed: %s", policy.agency, exc)
        with self.store.tx() as c:
            c.execute("INSERT INTO backup_copies (agency, at, copied, ok, error, duration_s) VALUES (?,?,?,?,?,?)",
                      (policy.agency, at, copied, int(error is None), error, time.monotonic() - t0))
        return copied, error

    # -- verification --------------------------------------------------------------------------
    def verify(self, policies: list[BackupPolicy], *, check: bool | None = None, drill: bool | None = None,
               progress: Callable[[str], None] | None = None) -> list[SiteVerdict]:
        """Judge every policy at both sites. ``check``/``drill``: True forces, False skips, None = when due."""
        now = self.clock()
        plans = []
        for p in policies:
            for site in SITES:
                last_check, last_drill = self._last_check(p.agency, site), self._last_drill(p.agency, site)
                do_check = check if check is not None else (last_check is None or now - last_check.at
                                                             >= p.verify_every_s)
                do_drill = drill if drill is not None else (last_drill is None or now - last_drill.at
                                                            >= p.drill_every_s)
                plans.append((p, site, last_check, last_drill, do_check, do_drill,
                              self._last_subset(p.agency, site), *self._known_sizes(p.repo(site)),
                              self._drill_count(p.agency)))
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            works = list(pool.map(lambda plan: self._read_site(*plan), plans))
        verdicts = []
        for i, p in enumerate(policies):
            pd, dr = works[2 * i], works[2 * i + 1]
            if pd.drill and dr.drill and pd.drill.ok and dr.drill.ok:
                pd, dr = _cross_check(pd, dr, p)
            pd_v = judge(p, pd.facts, now)
            dr_v = judge(p, dr.facts, now, pusat_data=pd.facts)
            for work, v in ((pd, pd_v), (dr, dr_v)):
                self._record(p, work, v, now)
                verdicts.append(v)
                if progress:
                    progress(f"{p.agency} at the {SITE_NAMES[v.site]}: {v.verdict}")
        return verdicts

    def _read_site(self, p: BackupPolicy, site: str, last_check: CheckFact | None, last_drill: DrillFact | None,
                   do_check: bool, do_drill: bool, last_subset: int | None, sizes: dict[str, tuple[int, int]],
                   durations: dict[str, float], drill_no: int) -> SiteWork:
        """restic only (no store access): runs in the pool."""
        now = self.clock()
        try:
            repo = self.repo(p, site)
            snaps = tuple(self.restic.snapshots(repo))
            new_sizes = []
            for s in snaps[-SIZE_HISTORY:]:
                if s.id not in sizes:
                    b, n = self.restic.stats(repo, s.id)
                    sizes = {**sizes, s.id: (b, n)}
                    new_sizes.append((s.id, b, n))
            new_durations = self._read_durations(repo, snaps, durations) if site == "pusat_data" else {}
            durations = {**durations, **new_durations}
            chk = self.restic.check(repo, next_subset(last_subset, p.check_cycle)) if do_check and snaps else None
            dr_res = None
            if do_drill and snaps:
                latest: Snapshot = snaps[-1]
                dr_res = run_drill(self.restic, repo, latest, p.drill_files, self.workdir / p.agency / site,
                                   seed=f"{latest.origin}:{drill_no}", total_bytes=sizes.get(latest.id, (0, 0))[0])
        except RepoError as exc:
            return SiteWork(SiteFacts(site, error=str(exc), error_reason=exc.reason))
        except PantauError as exc:  # e.g. a missing secret: the site cannot be read
            return SiteWork(SiteFacts(site, error=str(exc), error_reason="config"))
        facts = SiteFacts(site, snaps, sizes=sizes, durations=durations,
                          last_check=CheckFact(now, chk.ok, chk.errors) if chk else last_check,
                          last_drill=DrillFact(now, dr_res.ok, dr_res.restore_s, dr_res.detail) if dr_res
                          else last_drill)
        return SiteWork(facts, chk, dr_res, tuple(new_sizes), tuple(new_durations.items()))

    def _read_durations(self, repo: Repo, snaps: tuple[Snapshot, ...], known: dict[str, float]) -> dict[str, float]:
        """How long the newest original snapshots' backups ran, for those not timed yet; {} if unreadable."""
        if all(s.id in known for s in snaps[-SIZE_HISTORY:] if s.original is None):
            return {}
        try:
            saved = repofiles.saved_times(repo)
        except RepoError as exc:  # restic read the repository; only the timing is lost, and said so
            log.warning("%s; backup durations are not judged this pass", exc)
            return {}
        return {k: v for k, v in repofiles.durations(snaps[-SIZE_HISTORY:], saved).items() if k not in known}

    # -- the store ------------------------------------------------------------------------------
    def _record(self, p: BackupPolicy, w: SiteWork, v: SiteVerdict, now: float) -> None:
        ts = int(now * 1e9)
        tags = {"agency": p.agency, "site": w.facts.site}
        lines = [metrics.line(metrics.BACKUP, tags, {
            "verdict_code": v.code, "age_seconds": v.age_s, "rpo_seconds": p.rpo_s, "snapshots": v.snapshots,
            "dr_lag_seconds": v.lag_s, "missing_copies": len(v.missing_copies) if w.facts.site == "dr" else None,
            "latest_duration_seconds": w.facts.durations.get(v.latest.id) if v.latest else None,
        }, ts)]
        with self.store.tx() as c:
            repo = p.repo(w.facts.site)
            for sid, b, n in w.new_sizes:
                c.execute("INSERT OR IGNORE INTO backup_sizes (repo, snapshot_id, bytes, files) VALUES (?,?,?,?)",
                          (repo, sid, b, n))
            c.executemany("UPDATE backup_sizes SET duration_s=? WHERE repo=? AND snapshot_id=?",
                          [(d, repo, sid) for sid, d in w.new_durations])
            if w.check is not None:
                ck = w.check
                c.execute("INSERT INTO backup_checks (agency, site, repo, at, subset, ok, packs_read, packs_total, "
                          "errors, duration_s) VALUES (?,?,?,?,?,?,?,?,?,?)",
                          (p.agency, w.facts.site, repo, now, ck.subset, int(ck.ok), ck.packs_read, ck.packs_total,
                           json.dumps(list(ck.errors)), ck.duration_s))
                lines.append(metrics.line(metrics.BACKUP_CHECK, tags, {"ok": int(ck.ok), "packs_read": ck.packs_read,
                                                                       "packs_total": ck.packs_total,
                                                                       "seconds": ck.duration_s}, ts))
            if w.drill is not None:
                d = w.drill
                c.execute("INSERT INTO backup_drills (agency, site, at, snapshot_id, ok, files, bytes, restore_s, "
                          "rto_estimate_s, detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
                          (p.agency, w.facts.site, now, d.snapshot_id, int(d.ok), len(d.files), d.bytes, d.restore_s,
                           d.rto_estimate_s, d.detail))
                lines.append(metrics.line(metrics.BACKUP_DRILL, tags, {
                    "ok": int(d.ok), "restore_seconds": d.restore_s, "rto_estimate_seconds": d.rto_estimate_s,
                    "bytes": d.bytes}, ts))
            c.execute("INSERT INTO backup_verdicts (agency, site, at, verdict, latest_id, latest_at, age_s, snapshots, "
                      "lag_s, missing, findings) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (p.agency, v.site, now, v.verdict, v.latest.short_id if v.latest else None,
                       v.latest.time if v.latest else None, v.age_s, v.snapshots, v.lag_s,
                       json.dumps(list(v.missing_copies)), json.dumps([[f.kind, f.message] for f in v.findings])))
            self._incidents(c, p, v, now)
            self.store.outbox_add(c, lines)

    def _incidents(self, c: Any, p: BackupPolicy, v: SiteVerdict, now: float) -> None:
        found = {f.kind: f.message for f in v.findings if f.kind in INCIDENT_KINDS}
        for kind, message in found.items():
            open_incident(c, now, f"backup:{p.agency}:{v.site}:{kind}", "backup", message, agency=p.agency,
                          device=p.source, consequence=kind in CONSEQUENCE_KINDS)
        if v.verdict == "unknown":
            return  # nothing else can be judged while the repository is unreadable: keep what is open
        for kind in INCIDENT_KINDS:
            if kind not in found:
                resolve_incident(c, now, f"backup:{p.agency}:{v.site}:{kind}")

    def _last_check(self, agency: str, site: str) -> CheckFact | None:
        r = self.store.conn.execute("SELECT at, ok, errors FROM backup_checks WHERE agency=? AND site=? "
                                    "ORDER BY id DESC LIMIT 1", (agency, site)).fetchone()
        return CheckFact(r[0], bool(r[1]), tuple(json.loads(r[2]))) if r else None

    def _last_drill(self, agency: str, site: str) -> DrillFact | None:
        r = self.store.conn.execute("SELECT at, ok, restore_s, detail FROM backup_drills WHERE agency=? AND site=? "
                                    "ORDER BY id DESC LIMIT 1", (agency, site)).fetchone()
        return DrillFact(r[0], bool(r[1]), r[2] or 0.0, r[3]) if r else None

    def _last_subset(self, agency: str, site: str) -> int | None:
        r = self.store.conn.execute("SELECT subset FROM backup_checks WHERE agency=? AND site=? AND subset IS NOT NULL "
                                    "ORDER BY id DESC LIMIT 1", (agency, site)).fetchone()
        return int(r[0].split("/")[0]) if r else None

    def _known_sizes(self, repo: str) -> tuple[dict[str, tuple[int, int]], dict[str, float]]:
        """(restore sizes, backup durations) already read from this repository, by snapshot id."""
        rows = self.store.conn.execute("SELECT snapshot_id, bytes, files, duration_s FROM backup_sizes WHERE repo=?",
                                       (repo,)).fetchall()
        return {sid: (b, n) for sid, b, n, _ in rows}, {sid: d for sid, _, _, d in rows if d is not None}

    def _drill_count(self, agency: str) -> int:
        row = self.store.conn.execute("SELECT count(*) FROM backup_drills WHERE agency=?", (agency,)).fetchone()
        return int(row[0])

    # -- reading for the CLI ---------------------------------------------------------------------
    def status(self, agency: str | None = None) -> list[dict[str, Any]]:
        """The latest verdict per policy and site, with the last check, drill, copy and reported run."""
        rows, now = [], self.clock()
        for p in self.policies(agency):
            for site in SITES:
                v = self.store.conn.execute(
                    "SELECT at, verdict, latest_id, latest_at, age_s, snapshots, lag_s, missing, findings "
                    "FROM backup_verdicts WHERE agency=? AND site=? ORDER BY id DESC LIMIT 1",
                    (p.agency, site)).fetchone()
                ck = self.store.conn.execute(
                    "SELECT at, ok, subset, packs_read, packs_total FROM backup_checks WHERE agency=? AND site=? "
                    "ORDER BY id DESC LIMIT 1", (p.agency, site)).fetchone()
                dr = self.store.conn.execute(
                    "SELECT at, ok, restore_s, rto_estimate_s, detail FROM backup_drills WHERE agency=? AND site=? "
                    "ORDER BY id DESC LIMIT 1", (p.agency, site)).fetchone()
                rows.append({
                    "agency": p.agency, "site": site, "repo": p.repo(site), "rpo_s": p.rpo_s,
                    "verified_at": v[0] if v else None, "verdict": v[1] if v else "not verified yet",
                    "latest": v[2] if v else None, "latest_at": v[3] if v else None,
                    "age_s": max(0.0, now - v[3]) if v and v[3] is not None else None, "snapshots": v[5] if v else None,
                    "dr_lag_s": v[6] if v else None, "missing_copies": json.loads(v[7]) if v else [],
                    "findings": [{"kind": k, "message": m} for k, m in json.loads(v[8])] if v else [],
                    "check": {"at": ck[0], "ok": bool(ck[1]), "subset": ck[2], "packs_read": ck[3],
                              "packs_total": ck[4]} if ck else None,
                    "drill": {"at": dr[0], "ok": bool(dr[1]), "restore_s": dr[2], "rto_estimate_s": dr[3],
                              "detail": dr[4]} if dr else None,
                })
        return rows


def _cross_check(pd: SiteWork, dr: SiteWork, p: BackupPolicy) -> tuple[SiteWork, SiteWork]:
    """Both sites restored the same snapshot: its files must be identical. A mismatch fails both drills."""
    assert pd.drill is not None and dr.drill is not None
    pd_snap = next((s for s in pd.facts.snapshots if s.id == pd.drill.snapshot_id), None)
    dr_snap = next((s for s in dr.facts.snapshots if s.id == dr.drill.snapshot_id), None)
    if pd_snap is None or dr_snap is None or pd_snap.origin != dr_snap.origin:
        return pd, dr
    diffs = compare_sites(pd.drill, dr.drill)
    if not diffs:
        return pd, dr
    detail = f"{p.agency}: the sites restore different content for snapshot {pd_snap.short_id}: {diffs[0]}"
    return _failed_drill(pd, detail), _failed_drill(dr, detail)


def _failed_drill(w: SiteWork, detail: str) -> SiteWork:
    assert w.drill is not None and w.facts.last_drill is not None
    return replace(w, drill=replace(w.drill, ok=False, detail=detail),
                   facts=replace(w.facts, last_drill=replace(w.facts.last_drill, ok=False, detail=detail)))

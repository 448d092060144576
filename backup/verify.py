"""The NOC's verdict on an agency's backups at one site: a pure function of the policy and what the
NOC itself read from the repository — never of what an agent claimed.

Checks, in order of severity: the repository could not be read (*unknown*, never OK); the last
integrity check found damage (*corrupt*); the last restore drill failed (*restore_failed*); no
snapshot at all (*missing*); the newest snapshot is older than the RPO (*late*); snapshots of the
Pusat Data are missing at the DR site past the grace period (*incomplete*); the newest snapshot is
far smaller than the usual ones, or its backup ran far faster than theirs did (*suspect*). A check
or drill overdue is a warning on its own.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from backup.policy import SITE_NAMES, BackupPolicy
from backup.restic import Snapshot
from core.units import format_duration

# worst first; the code is what dashboards map to colours
VERDICTS = ("unknown", "corrupt", "restore_failed", "missing", "late", "incomplete", "suspect", "ok")
VERDICT_CODE = {v: i for i, v in enumerate(reversed(VERDICTS))}  # ok = 0 … unknown = 7


@dataclass(frozen=True)
class CheckFact:
    at: float
    ok: bool
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillFact:
    at: float
    ok: bool
    rto_s: float
    detail: str = ""


@dataclass(frozen=True)
class SiteFacts:
    """What the NOC read from one site's repository (``error``: why it could not, with a one-word reason)."""

    site: str
    snapshots: tuple[Snapshot, ...] = ()
    error: str | None = None
    error_reason: str | None = None
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # snapshot id -> (bytes, files)
    durations: dict[str, float] = field(default_factory=dict)  # snapshot id -> seconds its backup ran
    last_check: CheckFact | None = None
    last_drill: DrillFact | None = None


@dataclass(frozen=True)
class Finding:
    kind: str  # one of VERDICTS (minus ok), or a warning: check_overdue, drill_overdue
    message: str


@dataclass(frozen=True)
class SiteVerdict:
    agency: str
    site: str
    verdict: str
    findings: tuple[Finding, ...]
    latest: Snapshot | None
    age_s: float | None
    snapshots: int
    missing_copies: tuple[str, ...] = ()  # short ids of Pusat Data snapshots not at the DR site
    lag_s: float | None = None  # how far the DR site trails the Pusat Data (DR only)

    @property
    def code(self) -> int:
        return VERDICT_CODE[self.verdict]


SMALL_RATIO = 0.5  # a snapshot under half the usual size (or file count) is suspect
MIN_HISTORY = 3  # snapshots needed before "usual" means anything
FAST_RATIO = 0.2  # a backup that ran in under a fifth of the usual time is suspect …
FAST_MIN_USUAL_S = 60.0  # … when the usual one takes a minute or more (shorter ones vary with cache and clocks)


def judge(policy: BackupPolicy, facts: SiteFacts, now: float, pusat_data: SiteFacts | None = None) -> SiteVerdict:
    """The verdict for one site. For the DR site pass the Pusat Data's facts to judge parity."""
    where = f"{policy.agency} at the {SITE_NAMES[facts.site]}"
    if facts.error is not None:
        f = Finding("unknown", f"{where}: the repository could not be read ({facts.error_reason or 'failed'}): "
                               f"{facts.error}")
        return SiteVerdict(policy.agency, facts.site, "unknown", (f,), None, None, 0)
    findings: list[Finding] = []
    snaps = facts.snapshots
    latest = snaps[-1] if snaps else None
    age = None if latest is None else max(0.0, now - latest.time)
    if facts.last_check is not None and not facts.last_check.ok:
        first = facts.last_check.errors[0] if facts.last_check.errors else "restic check reported errors"
        findings.append(Finding("corrupt", f"{where}: the integrity check found damage: {first}; "
                                           "restore from the other site and run `restic check` by hand"))
    if facts.last_drill is not None and not facts.last_drill.ok:
        findings.append(Finding("restore_failed", f"{where}: the last restore drill failed: {facts.last_drill.detail}"))
    if latest is None:
        findings.append(Finding("missing", f"{where}: no snapshot at all in {policy.repo(facts.site)}"))
    elif age is not None and age > policy.rpo_s:
        findings.append(Finding("late", f"{where}: the newest snapshot ({latest.short_id}) is "
                                        f"{format_duration(age)} old, past the RPO of {format_duration(policy.rpo_s)}"))
    missing: tuple[str, ...] = ()
    lag = None
    if facts.site == "dr" and pusat_data is not None and pusat_data.error is None:
        missing, lag = parity(pusat_data.snapshots, snaps, now, policy.dr_within_s or policy.rpo_s,
                               policy.retention)
        if missing:
            findings.append(Finding("incomplete", f"{where}: {len(missing)} Pusat Data snapshot(s) not copied to the "
                                                  f"DR site ({', '.join(missing[:5])}); DR trails by "
                                                  f"{format_duration(lag or 0)}"))
    if latest is not None:
        odd = _smaller_than_usual(latest, snaps, facts.sizes) or _faster_than_usual(latest, snaps, facts.durations)
        if odd:
            findings.append(Finding("suspect", f"{where}: {odd}"))
    for kind, last, every in (("check_overdue", facts.last_check, policy.verify_every_s),
                              ("drill_overdue", facts.last_drill, policy.drill_every_s)):
        if latest is not None and (last is None or now - last.at > 2 * every):
            what = "integrity check" if kind == "check_overdue" else "restore drill"
            when = "never" if last is None else f"{format_duration(now - last.at)} ago"
            findings.append(Finding(kind, f"{where}: last {what} {when} (due every {format_duration(every)})"))
    verdict = next((v for v in VERDICTS if any(f.kind == v for f in findings)), "ok")
    return SiteVerdict(policy.agency, facts.site, verdict, tuple(findings), latest, age, len(snaps), missing, lag)


_BUCKETS = {"hourly": "%Y%m%d%H", "daily": "%Y%m%d", "weekly": "%G%V", "monthly": "%Y%m", "yearly": "%Y"}


def kept(snaps: tuple[Snapshot, ...], keep: dict[str, int]) -> set[str]:
    """Ids that ``restic forget`` with ``keep`` leaves in place (its bucket rules, local time); all without rules."""
    if not keep:
        return {s.id for s in snaps}
    newest_first = sorted(snaps, key=lambda s: s.time, reverse=True)
    out = {s.id for s in newest_first[:keep.get("last", 0)]}
    for bucket, fmt in _BUCKETS.items():
        n, last = keep.get(bucket, 0), None
        for s in newest_first:
            if n <= 0:
                break
            value = time.strftime(fmt, time.localtime(s.time))
            if value != last:
                out.add(s.id)
                last, n = value, n - 1
    return out


def parity(pd: tuple[Snapshot, ...], dr: tuple[Snapshot, ...], now: float, grace_s: float,
           keep: dict[str, int] | None = None) -> tuple[tuple[str, ...], float]:
    """(Pusat Data snapshots older than ``grace_s`` with no copy at DR, seconds DR trails the Pusat Data).

    Only snapshots the retention policy keeps are expected at DR: the DR site applies the same
    ``forget`` rules after each copy, so a snapshot the rules drop may rightly be gone there."""
    at_dr = {s.origin for s in dr}
    expected = kept(pd, keep or {})
    missing = tuple(s.short_id for s in pd if s.origin not in at_dr and now - s.time > grace_s and s.id in expected)
    newest_pd = max((s.time for s in pd), default=None)
    newest_copied = max((s.time for s in pd if s.origin in at_dr), default=None)
    if newest_pd is None:
        return missing, 0.0
    if newest_copied is None:
        return missing, max(0.0, now - min(s.time for s in pd))
    return missing, max(0.0, newest_pd - newest_copied)


def _smaller_than_usual(latest: Snapshot, snaps: tuple[Snapshot, ...], sizes: dict[str, tuple[int, int]]) -> str:
    if latest.id not in sizes:
        return ""
    prior = [sizes[s.id] for s in snaps[:-1] if s.id in sizes][-10:]
    if len(prior) < MIN_HISTORY:
        return ""
    b, n = sizes[latest.id]
    usual_b, usual_n = statistics.median(p[0] for p in prior), statistics.median(p[1] for p in prior)
    if usual_b and b < usual_b * SMALL_RATIO:
        return (f"the newest snapshot ({latest.short_id}) holds {_mib(b)}, under half the usual {_mib(usual_b)}; "
                "a source path may be missing or emptied")
    if usual_n and n < usual_n * SMALL_RATIO:
        return (f"the newest snapshot ({latest.short_id}) holds {n} files, under half the usual {usual_n:.0f}; "
                "a source path may be missing or emptied")
    return ""


def _faster_than_usual(latest: Snapshot, snaps: tuple[Snapshot, ...], durations: dict[str, float]) -> str:
    if latest.id not in durations:
        return ""
    prior = [durations[s.id] for s in snaps[:-1] if s.id in durations][-10:]
    if len(prior) < MIN_HISTORY:
        return ""
    took, usual = durations[latest.id], statistics.median(prior)
    if usual < FAST_MIN_USUAL_S or took >= usual * FAST_RATIO:
        return ""
    return (f"the newest snapshot's backup ({latest.short_id}) ran {format_duration(took)}, against a usual "
            f"{format_duration(usual)}; it may not have read the data (a source unmounted, emptied or left stale)")


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def next_subset(last: int | None, cycle: int) -> str:
    """The ``--read-data-subset`` for the next check: n/t rotating so every pack is read once per cycle."""
    n = 1 if last is None or last >= cycle else last + 1
    return f"{n}/{cycle}"

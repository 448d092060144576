"""Pure backup logic: verdicts, parity under retention, check rotation, drill sampling, restic output parsing."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backup.drill import DrillResult, SampleFile, compare_sites, pick_samples
from backup.policy import BackupPolicy
from backup.repofiles import durations, local_path
from backup.restic import (
    Node,
    Repo,
    Snapshot,
    classify,
    parse_backup_output,
    parse_check,
    parse_time,
    sftp_parts,
    sftp_target,
)
from backup.verify import CheckFact, DrillFact, SiteFacts, judge, kept, next_subset, parity
from core.errors import RepoAuthError, RepoLocked, RepoMissing, RepoUnreachable
from core.secrets import SecretRef

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
DAY = 86400.0


def policy(**kw: object) -> BackupPolicy:
    base: dict[str, object] = dict(agency="dinkes", source="srv-a", paths=("/srv",), schedule="daily", rpo_s=DAY,
                                   pusat_data_repo="/pd", dr_repo="/dr", password=SecretRef("secret", "pw"))
    base.update(kw)
    return BackupPolicy(**base)  # type: ignore[arg-type]


def snap(i: int, t: float, original: str | None = None) -> Snapshot:
    sid = f"{i:08x}" + "0" * 56
    return Snapshot(sid, sid[:8], t, "srv-a", ("/srv",), (), original)


def copy_of(s: Snapshot, i: int) -> Snapshot:
    return snap(1000 + i, s.time, original=s.id)


def fresh(site: str, snaps: tuple[Snapshot, ...], **kw: object) -> SiteFacts:
    return SiteFacts(site, snaps, last_check=CheckFact(NOW - 3600, True), last_drill=DrillFact(NOW - 3600, True, 1.0),
                     **kw)  # type: ignore[arg-type]


def test_fresh_snapshot_at_both_sites_is_ok() -> None:
    pd = (snap(1, NOW - 3600),)
    v = judge(policy(), fresh("pusat_data", pd), NOW)
    assert v.verdict == "ok" and v.age_s == 3600 and v.findings == ()
    dr = judge(policy(), fresh("dr", (copy_of(pd[0], 1),)), NOW, pusat_data=fresh("pusat_data", pd))
    assert dr.verdict == "ok" and dr.lag_s == 0 and dr.missing_copies == ()


def test_late_past_rpo_and_missing_and_unknown() -> None:
    v = judge(policy(), fresh("pusat_data", (snap(1, NOW - 1.5 * DAY),)), NOW)
    assert v.verdict == "late" and "past the RPO of 1d" in v.findings[0].message
    assert judge(policy(), fresh("pusat_data", ()), NOW).verdict == "missing"
    u = judge(policy(), SiteFacts("dr", error="wrong password", error_reason="auth"), NOW)
    assert u.verdict == "unknown" and u.code == 7 and "(auth)" in u.findings[0].message


def test_corrupt_outranks_late_and_overdue_check_is_only_a_warning() -> None:
    facts = SiteFacts("pusat_data", (snap(1, NOW - 2 * DAY),), last_check=CheckFact(NOW, False, ("Pack ID does not",)))
    v = judge(policy(), facts, NOW)
    assert v.verdict == "corrupt" and {f.kind for f in v.findings} >= {"corrupt", "late", "drill_overdue"}
    old_check = SiteFacts("pusat_data", (snap(1, NOW - 60),), last_check=CheckFact(NOW - 3 * DAY, True),
                          last_drill=DrillFact(NOW, True, 1.0))
    v = judge(policy(), old_check, NOW)
    assert v.verdict == "ok" and [f.kind for f in v.findings] == ["check_overdue"]


def test_dr_missing_copy_after_grace_with_lag() -> None:
    a, b = snap(1, NOW - 10 * 3600), snap(2, NOW - 3 * 3600)
    pd = fresh("pusat_data", (a, b))
    v = judge(policy(dr_within_s=3600.0), fresh("dr", (copy_of(a, 1),)), NOW, pusat_data=pd)
    assert v.verdict == "incomplete" and v.missing_copies == (b.short_id,) and v.lag_s == 7 * 3600
    # inside the grace period a missing copy is not (yet) a finding, but the lag shows
    v = judge(policy(dr_within_s=4 * 3600.0), fresh("dr", (copy_of(a, 1),)), NOW, pusat_data=pd)
    assert v.verdict == "ok" and v.lag_s == 7 * 3600


def test_parity_ignores_snapshots_the_retention_drops() -> None:
    t = time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, -1))
    morning, evening = snap(1, t - 4 * 3600), snap(2, t + 4 * 3600)  # same local day
    assert kept((morning, evening), {"daily": 7}) == {evening.id}
    missing, _ = parity((morning, evening), (copy_of(evening, 1),), t + DAY, 0, {"daily": 7})
    assert missing == ()
    missing, _ = parity((morning, evening), (copy_of(evening, 1),), t + DAY, 0, {})
    assert missing == (morning.short_id,)


def test_smaller_than_usual_snapshot_is_suspect() -> None:
    snaps = tuple(snap(i, NOW - (5 - i) * 3600) for i in range(5))
    sizes = {s.id: (100_000_000, 1000) for s in snaps[:-1]} | {snaps[-1].id: (10_000_000, 950)}
    v = judge(policy(), fresh("pusat_data", snaps, sizes=sizes), NOW)
    assert v.verdict == "suspect" and "under half the usual" in v.findings[0].message


def test_backup_far_faster_than_usual_is_suspect_but_short_backups_are_not_judged() -> None:
    snaps = tuple(snap(i, NOW - (5 - i) * 3600) for i in range(5))
    usual = {s.id: 1200.0 + 10 * i for i, s in enumerate(snaps[:-1])}  # about 20 minutes each
    v = judge(policy(), fresh("pusat_data", snaps, durations=usual | {snaps[-1].id: 40.0}), NOW)
    assert v.verdict == "suspect"
    assert "ran 40s, against a usual 20m 15s" in v.findings[0].message and "may not have read" in v.findings[0].message
    # a fifth of the usual time or more is fine; so is anything when the usual backup takes under a minute
    assert judge(policy(), fresh("pusat_data", snaps, durations=usual | {snaps[-1].id: 250.0}), NOW).verdict == "ok"
    quick = {s.id: 30.0 for s in snaps[:-1]} | {snaps[-1].id: 1.0}
    assert judge(policy(), fresh("pusat_data", snaps, durations=quick), NOW).verdict == "ok"
    # too little history to know what is usual
    few = {snaps[-2].id: 1200.0, snaps[-3].id: 1200.0, snaps[-1].id: 1.0}
    assert judge(policy(), fresh("pusat_data", snaps, durations=few), NOW).verdict == "ok"


def test_durations_come_from_when_the_snapshot_file_was_written_originals_only() -> None:
    a, b = snap(1, NOW - 600), snap(2, NOW - 300)
    c = copy_of(a, 3)
    saved = {a.id: NOW - 300, b.id: NOW - 301, c.id: NOW}  # b: the repository host's clock runs behind
    assert durations((a, b, c), saved) == {a.id: 300.0, b.id: 0.0}
    assert durations((a,), {}) == {}


def test_repository_locations_by_backend() -> None:
    assert sftp_parts("sftp:backup@dr.kota.go.id:/srv/restic/dinkes") == ("backup", "dr.kota.go.id", None,
                                                                          "/srv/restic/dinkes")
    assert sftp_parts("sftp://dr:2222//srv/x") == (None, "dr", 2222, "/srv/x")
    assert sftp_parts("sftp://backup@dr/rel/x") == ("backup", "dr", None, "rel/x")
    assert sftp_parts("/srv/x") is None and sftp_parts("rest:http://dr:8000/") is None
    assert str(local_path("/srv/x")) == "/srv/x" and str(local_path("local:/srv/x")) == "/srv/x"
    assert local_path("sftp:h:/x") is None and local_path("s3:s3.amazonaws.com/bucket") is None


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=60))
def test_check_rotation_reads_every_subset_once_per_cycle(cycle: int, start: int) -> None:
    last = None if start == 0 else min(start, cycle)
    seen = []
    for _ in range(cycle):
        s = next_subset(last, cycle)
        n, t = map(int, s.split("/"))
        assert t == cycle and 1 <= n <= cycle
        seen.append(n)
        last = n
    assert sorted(seen) == list(range(1, cycle + 1))


def test_drill_samples_are_files_and_the_same_for_the_same_seed() -> None:
    nodes = [Node(f"/srv/f{i}", "file", i * 10) for i in range(10)] + [Node("/srv", "dir", 0)]
    a, b = pick_samples(nodes, 3, "x:1"), pick_samples(nodes, 3, "x:1")
    assert a == b and len(a) == 3 and all(n.type == "file" and n.size > 0 for n in a)
    assert pick_samples([Node("/srv", "dir", 0)], 3, "s") == []


def test_sites_that_restore_different_content_are_caught() -> None:
    one = DrillResult("a", True, (SampleFile("/x", 3, "aa" * 32),), 3, 0.1, None, "")
    two = DrillResult("b", True, (SampleFile("/x", 3, "bb" * 32),), 3, 0.1, None, "")
    assert compare_sites(one, two) and not compare_sites(one, one)


def test_restic_errors_are_classified_from_stderr() -> None:
    assert isinstance(classify("Fatal: wrong password or no key found\n", "/r", 1), RepoAuthError)
    assert isinstance(classify("Fatal: unable to open config file: stat /r/config: no such file or directory\n"
                               "Is there a repository at the following location?\n/r", "/r", 1), RepoMissing)
    locked = classify("unable to create lock in backend: repository is already locked by PID 7 on vm by root "
                      "(UID 0, GID 0)\n", "/r", 1)
    assert isinstance(locked, RepoLocked) and "PID 7 on vm by root" in str(locked)
    down = classify("Fatal: unable to open repository at sftp:u@h:/r: unable to start the sftp session, error: EOF",
                    "sftp:u@h:/r", 1)
    assert isinstance(down, RepoUnreachable) and down.reason == "unreachable"
    assert classify("Fatal: something else", "/r", 1) is None


def test_restic_output_parsing() -> None:
    out = ('{"message_type":"status","percent_done":0}\n{"message_type":"summary","files_new":1,"files_changed":0,'
           '"total_files_processed":1,"total_bytes_processed":6,"data_added":708,"total_duration":0.2,'
           '"snapshot_id":"de2451d6"}\n')
    s = parse_backup_output(out, "/nonexist does not exist, skipping\n")
    assert s.snapshot_id == "de2451d6" and s.files_total == 1 and s.warnings == ("/nonexist does not exist, skipping",)
    ck = parse_check("read group #1 of 2 data packs (out of total 6 packs in 3 groups)\n"
                     "Pack ID does not match, want aa, got bb\n", "Fatal: repository contains errors", False, "1/3",
                     1.0)
    assert not ck.ok and ck.packs_read == 2 and ck.packs_total == 6 and "Pack ID does not match" in ck.errors[0]
    ok = parse_check("no errors were found\n", "", True, None, 0.5)
    assert ok.ok and ok.errors == ()
    assert parse_time("2026-11-22T21:27:41.587594787Z") == pytest.approx(1795382861.587594, abs=1e-3)


def test_sftp_locations_get_a_batch_mode_ssh_command_and_the_password_never_shows() -> None:
    assert sftp_target("sftp:backup@dr.kota.go.id:/srv/restic/dinkes") == ("backup@dr.kota.go.id", None)
    assert sftp_target("sftp://backup@dr:2222//srv/x") == ("backup@dr", 2222)
    assert sftp_target("/srv/restic/dinkes") is None
    r = Repo("sftp://backup@dr:2222//srv/x", "rahasia", ssh_key="/etc/pantau/id", known_hosts="/etc/pantau/kh")
    cmd = r.ssh_command()
    assert cmd is not None and "-p 2222" in cmd and "BatchMode=yes" in cmd and "StrictHostKeyChecking=yes" in cmd
    assert "rahasia" not in repr(r) and "rahasia" not in cmd

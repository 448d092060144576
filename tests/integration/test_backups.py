"""Backups verified by the NOC against real restic repositories (local paths on this host).

Runs through the `pantau backup` CLI as an operator would: a good city verifies OK at both sites
with a check and a drill; a missing source path or an empty source is a failed run; a missed
schedule is *late* once the RPO passes; a snapshot not copied to DR is *incomplete*; a flipped byte
in a pack is found within one check cycle; a wrong password, a missing repository and a locked
one read as *unknown*, never OK.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backup import repofiles
from backup.restic import Restic
from core.errors import RepoUnreachable
from tests.backups import PASSWORDS, BackupCity, backup_city, write_files
from tests.conftest import pantau

pytestmark = pytest.mark.integration


@pytest.fixture
def city(tmp_path: Path) -> Iterator[BackupCity]:
    with backup_city(tmp_path) as c:
        yield c


def _args(city: BackupCity) -> list[str]:
    return ["--inventory", str(city.inventory), "--db", str(city.db)]


def _status(city: BackupCity) -> dict[tuple[str, str], dict]:
    rows = json.loads(pantau("backup", "status", *_args(city), "--json").stdout)
    return {(r["agency"], r["site"]): r for r in rows}


def _verify(city: BackupCity, *extra: str) -> tuple[int, dict[tuple[str, str], dict]]:
    out = pantau("backup", "verify", *_args(city), "--workdir", str(city.root / "drills"), "--json", *extra,
                 check=False)
    assert out.returncode in (0, 10), out.stderr
    return out.returncode, {(r["agency"], r["site"]): r for r in json.loads(out.stdout)}


def _open_incidents(city: BackupCity) -> list[str]:
    with sqlite3.connect(city.db) as c:
        return sorted(k for (k,) in c.execute("SELECT key FROM incidents WHERE resolved_at IS NULL"))


def _backup_all(city: BackupCity) -> None:
    for agency in ("dinkes", "disdik"):
        out = pantau("backup", "run", agency, *_args(city), "--operator", "budi")
        assert "saved to" in out.stdout
    out = pantau("backup", "replicate", *_args(city), "--operator", "budi")
    assert "dinkes: 1 snapshot(s) copied to the DR site" in out.stdout


def test_good_city_verifies_ok_at_both_sites_with_check_and_drill(city: BackupCity) -> None:
    _backup_all(city)
    rc, rows = _verify(city, "--check", "--drill")
    assert rc == 0, rows
    for (agency, site), r in rows.items():
        assert r["verdict"] == "ok", (agency, site, r["findings"])
        assert r["check"]["ok"] and r["check"]["subset"] == "1/7"
        assert r["drill"]["ok"] and r["drill"]["restore_s"] > 0, r["drill"]
        assert "3 file(s)" in r["drill"]["detail"] and r["drill"]["rto_estimate_s"] > 0
        assert r["age_s"] < 120 and r["snapshots"] == 1
    assert rows[("dinkes", "dr")]["dr_lag_s"] == 0 and rows[("dinkes", "dr")]["missing_copies"] == []
    assert _open_incidents(city) == []
    # the drills' restores are cleaned up; the human table names every agency and site
    assert not any((city.root / "drills").rglob("*.dat"))
    table = pantau("backup", "status", *_args(city)).stdout
    assert "dinkes  Pusat Data" in table and "disdik  DR site" in table
    audit = pantau("audit", "list", "--db", str(city.db)).stdout
    assert "backup.run" in audit and "backup.replicate" in audit


def test_missing_source_path_or_empty_source_is_a_failed_run(city: BackupCity, tmp_path: Path) -> None:
    text = city.inventory.read_text().replace(f'paths = ["{city.source("dinkes")}"]',
                                              f'paths = ["{city.source("dinkes")}", "/srv/not-mounted"]')
    city.inventory.write_text(text)
    out = pantau("backup", "run", "dinkes", *_args(city), check=False)
    assert out.returncode == 9
    assert "source path(s) missing on srv-a: /srv/not-mounted" in out.stderr
    assert Restic().snapshots(city.restic_repo("dinkes", "pusat_data")) == []  # nothing half-saved

    for f in city.source("disdik").rglob("*"):
        if f.is_file():
            f.unlink()
    out = pantau("backup", "run", "disdik", *_args(city), "--json", check=False)
    assert out.returncode == 9 and "holds no files" in out.stderr
    assert json.loads(out.stdout)["ok"] is False
    with sqlite3.connect(city.db) as c:
        runs = c.execute("SELECT agency, ok, error FROM backup_runs ORDER BY id").fetchall()
    assert [(a, ok) for a, ok, _ in runs] == [("dinkes", 0), ("disdik", 0)]


def test_missed_schedule_is_late_once_the_rpo_passes_and_resolves_with_a_fresh_backup(city: BackupCity) -> None:
    restic = Restic()
    two_days_ago = time.time() - 2 * 86400
    restic.backup(city.restic_repo("dinkes", "pusat_data"), [str(city.source("dinkes"))], host="srv-a",
                  at=two_days_ago)  # the last backup that ran, two days ago; then the schedule stopped
    pantau("backup", "replicate", "dinkes", *_args(city))
    _backup_all_but(city, "dinkes")
    rc, rows = _verify(city, "--no-check", "--no-drill")
    assert rc == 10
    pd = rows[("dinkes", "pusat_data")]
    assert pd["verdict"] == "late"
    assert any("old, past the RPO of 1d" in f["message"] for f in pd["findings"]), pd["findings"]
    assert rows[("dinkes", "dr")]["verdict"] == "late"  # the DR copy is as old
    assert rows[("disdik", "pusat_data")]["verdict"] == "ok"
    assert "backup:dinkes:pusat_data:late" in _open_incidents(city)

    pantau("backup", "run", "dinkes", *_args(city))
    pantau("backup", "replicate", "dinkes", *_args(city))
    rc, rows = _verify(city, "--no-check", "--no-drill")
    assert rows[("dinkes", "pusat_data")]["verdict"] == "ok" and rows[("dinkes", "dr")]["verdict"] == "ok"
    assert not any(k.startswith("backup:dinkes") for k in _open_incidents(city))


def test_a_backup_far_faster_than_usual_is_suspect_measured_from_the_repository(city: BackupCity) -> None:
    """The NOC times each backup from the repository's own files (snapshot file written − backup start)."""
    restic, pd = Restic(), city.restic_repo("dinkes", "pusat_data")
    for night in (3, 2, 1):  # the last three nightly backups; each took 15 minutes to save its snapshot
        write_files(city.source("dinkes") / "docs", 4, 4096, 10 + night)
        start = time.time() - night * 86400 + 3600
        sid = restic.backup(pd, [str(city.source("dinkes"))], host="srv-a", at=start).snapshot_id
        (saved,) = (city.repo("dinkes", "pusat_data") / "snapshots").glob(f"{sid}*")  # the summary has a short id
        os.utime(saved, (start + 900, start + 900))
    rc, rows = _verify(city, "dinkes", "--no-check", "--no-drill")
    assert rows[("dinkes", "pusat_data")]["verdict"] == "ok", rows[("dinkes", "pusat_data")]["findings"]

    pantau("backup", "run", "dinkes", *_args(city))  # tonight's ran in seconds: nothing read, or stale?
    rc, rows = _verify(city, "dinkes", "--no-check", "--no-drill")
    assert rc == 10
    pd_row = rows[("dinkes", "pusat_data")]
    assert pd_row["verdict"] == "suspect", pd_row
    msg = pd_row["findings"][0]["message"]
    assert "dinkes at the Pusat Data: the newest snapshot's backup" in msg and "against a usual 15m" in msg, msg
    assert "backup:dinkes:pusat_data:suspect" in _open_incidents(city)
    with sqlite3.connect(city.db) as c:
        timed = [d for (d,) in c.execute("SELECT duration_s FROM backup_sizes WHERE repo=? ORDER BY duration_s",
                                         (str(city.repo("dinkes", "pusat_data")),))]
        lines = [ln for (ln,) in c.execute("SELECT line FROM outbox WHERE line LIKE 'pantau_backup,%'")]
    assert len(timed) == 4 and timed[0] < 60 and all(899 < d < 960 for d in timed[1:]), timed
    latest = [ln for ln in lines if "site=pusat_data" in ln][-1]
    assert f"latest_duration_seconds={timed[0]}" in latest


def _backup_all_but(city: BackupCity, skip: str) -> None:
    for agency in ("dinkes", "disdik"):
        if agency != skip:
            pantau("backup", "run", agency, *_args(city))
            pantau("backup", "replicate", agency, *_args(city))


def test_snapshot_missing_at_dr_is_flagged_with_the_lag(tmp_path: Path) -> None:
    with backup_city(tmp_path, dinkes_extra='dr_within = "1h"\n') as city:
        restic, src = Restic(), [str(city.source("dinkes"))]
        restic.backup(city.restic_repo("dinkes", "pusat_data"), src, host="srv-a", at=time.time() - 5 * 3600)
        pantau("backup", "replicate", "dinkes", *_args(city))
        # the next backup, three hours ago, never reached DR (the copy job did not run)
        restic.backup(city.restic_repo("dinkes", "pusat_data"), src, host="srv-a", at=time.time() - 3 * 3600)
        _, rows = _verify(city, "--no-check", "--no-drill")
        dr = rows[("dinkes", "dr")]
        assert dr["verdict"] == "incomplete", dr
        assert len(dr["missing_copies"]) == 1
        assert any("not copied to the DR site" in f["message"] for f in dr["findings"])
        assert rows[("dinkes", "pusat_data")]["verdict"] == "ok"
        assert "backup:dinkes:dr:incomplete" in _open_incidents(city)
        pantau("backup", "replicate", "dinkes", *_args(city))
        _, rows = _verify(city, "--no-check", "--no-drill")
        assert rows[("dinkes", "dr")]["verdict"] == "ok" and rows[("dinkes", "dr")]["missing_copies"] == []
        assert "backup:dinkes:dr:incomplete" not in _open_incidents(city)


def test_a_flipped_byte_in_a_pack_is_found_within_one_check_cycle(tmp_path: Path) -> None:
    with backup_city(tmp_path, dinkes_extra="check_cycle = 3\n") as city:
        for _ in range(3):  # several snapshots, several packs
            (city.source("dinkes") / "data" / f"new{time.monotonic_ns()}.dat").write_bytes(
                __import__("os").urandom(300_000))
            pantau("backup", "run", "dinkes", *_args(city))
        pantau("backup", "replicate", "dinkes", *_args(city))
        packs = sorted((city.repo("dinkes", "pusat_data") / "data").rglob("*"))
        packs = [p for p in packs if p.is_file()]
        assert len(packs) >= 2
        victim = max(packs, key=lambda p: p.stat().st_size)
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.chmod(0o600)
        victim.write_bytes(bytes(data))

        found_in = None
        for i in range(3):  # one cycle of check_cycle = 3 checks reads every pack once
            _, rows = _verify(city, "--check", "--no-drill")
            pd = rows[("dinkes", "pusat_data")]
            assert pd["check"]["subset"] == f"{i + 1}/3"
            if pd["verdict"] == "corrupt":
                found_in = i + 1
                break
        assert found_in is not None, "the damaged pack was not read within one cycle"
        assert any("found damage" in f["message"] for f in pd["findings"])
        assert rows[("dinkes", "dr")]["verdict"] == "ok"  # the DR copy is intact
        assert "backup:dinkes:pusat_data:corrupt" in _open_incidents(city)


def test_wrong_password_missing_repo_and_lock_read_unknown_never_ok(tmp_path: Path) -> None:
    with backup_city(tmp_path) as city:
        _backup_all(city)
        secrets = city.root / "secrets.toml"
        secrets.write_text(secrets.read_text().replace(PASSWORDS["pw-dinkes-dr"], "salah"))
        moved = city.repo("disdik", "dr").rename(city.root / "disdik-dr-gone")
        rc, rows = _verify(city, "--no-check", "--no-drill")
        assert rc == 10
        dr = rows[("dinkes", "dr")]
        assert dr["verdict"] == "unknown" and "refused the password" in dr["findings"][0]["message"]
        assert "(auth)" in dr["findings"][0]["message"]
        dd = rows[("disdik", "dr")]
        assert dd["verdict"] == "unknown" and "no restic repository at" in dd["findings"][0]["message"]
        assert PASSWORDS["pw-dinkes"] not in json.dumps(list(rows.values()))
        moved.rename(city.repo("disdik", "dr"))

        # a secret missing from the secrets file: unknown, with what to fix
        secrets.write_text("\n".join(ln for ln in secrets.read_text().splitlines() if not ln.startswith("pw-disdik ")))
        _, rows = _verify(city, "--no-check", "--no-drill")
        for site in ("pusat_data", "dr"):
            msg = rows[("disdik", site)]["findings"][0]["message"]
            assert rows[("disdik", site)]["verdict"] == "unknown" and "needs secret 'pw-disdik'" in msg, msg
        out = pantau("backup", "replicate", "disdik", *_args(city), check=False)
        assert out.returncode == 9 and "needs secret 'pw-disdik'" in out.stdout
        secrets.write_text(secrets.read_text() + f'\npw-disdik = "{PASSWORDS["pw-disdik"]}"\n')

        # another restic process holds the Pusat Data repository: the check cannot run → unknown
        holder = subprocess.Popen(["restic", "-r", str(city.repo("disdik", "pusat_data")), "backup", "--stdin",
                                   "--stdin-filename", "held"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env={"RESTIC_PASSWORD": PASSWORDS["pw-disdik"],
                                                                  "PATH": "/usr/bin:/bin"})
        try:
            time.sleep(2)
            _, rows = _verify(city, "--check", "--no-drill")
            pd = rows[("disdik", "pusat_data")]
            assert pd["verdict"] == "unknown" and "locked by another restic process" in pd["findings"][0]["message"]
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=30)


def test_dr_over_sftp_replicates_checks_drills_and_reads_unknown_when_the_host_is_down(tmp_path: Path) -> None:
    from tests.backups import sftp_host

    with sftp_host(tmp_path, 190) as host:
        location = f"sftp:root@{host.address}:{tmp_path}/sftp-dr/dinkes"
        access = f'ssh_key = "{host.key_file}"\nknown_hosts = "{host.known_hosts}"\n'
        with backup_city(tmp_path / "city", dr_dinkes=location, dinkes_extra=access) as city:
            from backup.restic import Repo

            Restic().init(Repo(location, PASSWORDS["pw-dinkes-dr"], str(host.key_file), str(host.known_hosts)))
            pantau("backup", "run", "dinkes", *_args(city))
            out = pantau("backup", "replicate", "dinkes", *_args(city))
            assert "1 snapshot(s) copied to the DR site" in out.stdout
            assert (tmp_path / "sftp-dr" / "dinkes" / "config").exists()  # written through sshd's sftp

            rc, rows = _verify(city, "dinkes", "--check", "--drill")
            assert rc == 0, rows
            dr = rows[("dinkes", "dr")]
            assert dr["verdict"] == "ok" and dr["check"]["ok"] and dr["drill"]["ok"], dr
            assert dr["repo"] == location

            drill = pantau("backup", "drill", "dinkes", *_args(city), "--workdir", str(city.root / "drills"))
            assert "dinkes at the DR site: ok — 3 file(s)" in drill.stdout and "RTO" not in drill.stderr

            # when each snapshot was saved, listed over sftp (paramiko) as the host's own filesystem has it
            dr_repo = Repo(location, PASSWORDS["pw-dinkes-dr"], str(host.key_file), str(host.known_hosts))
            on_host = {f.name: f.stat().st_mtime for f in (tmp_path / "sftp-dr" / "dinkes" / "snapshots").iterdir()}
            listed = repofiles.saved_times(dr_repo)
            assert listed.keys() == on_host.keys() and len(listed) == 1
            assert all(abs(listed[k] - on_host[k]) < 1 for k in listed), (listed, on_host)
            stranger = tmp_path / "empty_known_hosts"
            stranger.write_text("")
            refused = r"could not be listed over sftp: Server .* not found in known_hosts"
            with pytest.raises(RepoUnreachable, match=refused):
                repofiles.saved_times(Repo(location, "-", str(host.key_file), str(stranger)))

            host.stop()
            with pytest.raises(RepoUnreachable, match=f"repository {location}: its files could not be listed"):
                repofiles.saved_times(dr_repo, timeout_s=5)
            rc, rows = _verify(city, "dinkes", "--no-check", "--no-drill")
            assert rc == 10
            dr = rows[("dinkes", "dr")]
            assert dr["verdict"] == "unknown" and "is unreachable" in dr["findings"][0]["message"], dr
            assert rows[("dinkes", "pusat_data")]["verdict"] == "ok"
            assert "backup:dinkes:dr:unknown" in _open_incidents(city)
            host.start()
            rc, rows = _verify(city, "dinkes", "--no-check", "--no-drill")
            assert rc == 0 and "backup:dinkes:dr:unknown" not in _open_incidents(city)


@pytest.mark.e2e
def test_the_noc_service_copies_to_dr_and_verifies_by_itself(city: BackupCity) -> None:
    from noc import procs
    from tests.conftest import wait_for

    pantau("backup", "run", "dinkes", *_args(city))  # disdik's backup never ran
    log = city.root / "noc.log"
    noc = procs.start_noc(city.inventory, city.db, procs.free_port(), log, extra=["--backup-every", "2s"])
    try:
        wait_for(lambda: "backups verified: 4 site(s), 2 not ok" in log.read_text(), 60, "the NOC's backup pass")
    finally:
        procs.stop(noc)
    text = log.read_text()
    assert "dinkes: 1 snapshot(s) copied to the DR site" in text
    rows = _status(city)
    assert rows[("dinkes", "pusat_data")]["verdict"] == "ok" and rows[("dinkes", "dr")]["verdict"] == "ok"
    assert rows[("dinkes", "dr")]["drill"]["ok"] and rows[("dinkes", "pusat_data")]["check"]["ok"]
    assert rows[("disdik", "pusat_data")]["verdict"] == "missing"
    assert {"backup:disdik:pusat_data:missing", "backup:disdik:dr:missing"} <= set(_open_incidents(city))
    with sqlite3.connect(city.db) as c:
        lines = [ln for (ln,) in c.execute("SELECT line FROM outbox")]
    assert any(ln.startswith("pantau_backup,agency=dinkes,site=dr ") and "verdict_code=0i" in ln for ln in lines)


@pytest.mark.e2e
def test_the_agent_runs_its_backup_and_reports_the_result_once(noc_factory: Any, world_tmp: Path) -> None:
    """`pantau agent backup` (the agency server's timer) → result file → the agent's next report → the NOC."""
    import os

    from tests.backups import write_files
    from tests.conftest import wait_for

    noc = noc_factory()
    src = world_tmp / "simpus"
    write_files(src, 5, 20_000, 3)
    repo = world_tmp / "pd-dinkes"
    pw = world_tmp / "backup.pass"
    fd = os.open(pw, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"kata sandi agen\n")
    os.close(fd)
    from backup.restic import Repo

    Restic().init(Repo(str(repo), "kata sandi agen"))
    job = world_tmp / "backup.toml"
    job.write_text(f'repo = "{repo}"\npassword_file = "{pw}"\npaths = ["{src}"]\nretention = {{ daily = 7 }}\n')
    results = world_tmp / "results"
    out = pantau("agent", "backup", "--job", str(job), "--id", "srv-a", "--results", str(results))
    assert "snapshot" in out.stdout and "5 files" in out.stdout
    bad_job = world_tmp / "bad.toml"
    bad_job.write_text(job.read_text().replace(str(src), "/srv/not-there"))
    out = pantau("agent", "backup", "--job", str(bad_job), "--id", "srv-a", "--results", str(results), check=False)
    assert out.returncode == 9 and "source path(s) missing on srv-a: /srv/not-there" in out.stderr
    (results / "backup-0.000001.json").write_text('{"ok": "yes", "hostile": true}')  # set aside, never sent

    noc.start_agent("srv-a", extra=["--backup-results", str(results)])

    def runs() -> list[tuple[Any, ...]]:
        with sqlite3.connect(noc.db) as c:
            return c.execute("SELECT agency, ok, files, error, reported_by FROM backup_runs ORDER BY at").fetchall()

    wait_for(lambda: len(runs()) == 2, 30, "both backup results at the NOC")
    time.sleep(3)  # more reports go by: each result was delivered once
    got = runs()
    assert [(a, ok, by) for a, ok, _, _, by in got] == [("dinkes", 1, "agent:srv-a"), ("dinkes", 0, "agent:srv-a")]
    assert got[0][2] == 5 and "not-there" in got[1][3]
    assert sorted(p.name for p in results.iterdir()) == ["backup-0.000001.bad"]
    # the password went to restic through a pipe: not in the job file, the result, or the NOC
    assert "kata sandi" not in json.dumps(got) and "kata sandi" not in job.read_text()

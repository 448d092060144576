"""The demo city's backups: real restic repositories on this host with one good, one late and one broken agency.

* dinkes — backed up now, copied to the DR site: *ok* once the NOC has checked and drilled it;
* disdik — its last backup ran three days ago (the schedule stopped): *late* at both sites;
* bappeda — backed up and copied, then one byte of a Pusat Data pack file flips: *corrupt* at the
  Pusat Data after the NOC's first integrity check, while its DR copy stays *ok*.

dinkes-srv1 also gets the job file its backup timer runs (:func:`agent_job`), so the demo can run one
scheduled backup the way an agency server does and its agent can report it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import textwrap
import time
from pathlib import Path

from backup.restic import Repo, Restic
from backup.runner import run_backup

AGENCIES = {"dinkes": "dinkes-srv1", "disdik": "disdik-srv1", "bappeda": "bappeda-srv1"}


def demo_backup_secrets() -> str:
    """Secrets-file lines: one fresh restic password per agency."""
    return "".join(f'backup-{a} = "{secrets.token_hex(16)}"\n' for a in AGENCIES)


def prepare(state: Path, passwords: dict[str, str], restic: Restic | None = None) -> str:
    """Build the repositories and the snapshots; the inventory's ``[[backup_policies]]`` for them."""
    restic = restic or Restic()
    root = state / "backup"
    shutil.rmtree(root, ignore_errors=True)
    toml = ""
    for agency, server in AGENCIES.items():
        src = root / "source" / agency
        _sample_files(src, agency)
        pd, dr = root / "pusat-data" / agency, root / "dr" / agency
        repos = [Repo(str(p), passwords[f"backup-{agency}"]) for p in (pd, dr)]
        for r in repos:
            restic.init(r)
        at = time.time() - 3 * 86400 if agency == "disdik" else None
        res = run_backup(restic, repos[0], [str(src)], host=server, tags=[f"agency={agency}"], at=at)
        if not res.ok:
            raise RuntimeError(f"demo backup of {agency} failed: {res.error}")
        restic.copy(repos[0], repos[1])
        if agency == "bappeda":
            _flip_a_byte(pd)
        toml += textwrap.dedent(f"""
            [[backup_policies]]
            agency = "{agency}"
            source = "{server}"
            paths = ["{src}"]
            schedule = "*-*-* 01:30"
            rpo = "1d"
            pusat_data_repo = "{pd}"
            dr_repo = "{dr}"
            password = "secret:backup-{agency}"
            retention = {{ daily = 7, weekly = 4, monthly = 6 }}
            check_cycle = 1
            """)
    return toml


def agent_job(state: Path, passwords: dict[str, str], agency: str, home: Path) -> Path:
    """The backup job file (and its mode-600 password file) of ``agency``'s server, as the Ansible
    role writes them; for `pantau agent backup --job`."""
    home.mkdir(parents=True, exist_ok=True)
    pw = home / "backup.pass"
    pw.unlink(missing_ok=True)
    fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(passwords[f"backup-{agency}"] + "\n")
    job = home / "backup.toml"
    root = state / "backup"
    job.write_text(f'repo = "{root / "pusat-data" / agency}"\npassword_file = "{pw}"\n'
                   f'paths = ["{root / "source" / agency}"]\nretention = {{ daily = 7, weekly = 4, monthly = 6 }}\n')
    return job


def _sample_files(where: Path, agency: str) -> None:
    (where / "arsip").mkdir(parents=True, exist_ok=True)
    (where / "basisdata").mkdir(exist_ok=True)
    for i in range(12):
        (where / "arsip" / f"surat-{i:03d}.txt").write_text(f"Surat dinas {agency} nomor {i}/2026\n" * 40)
    (where / "basisdata" / f"{agency}.dump").write_bytes(os.urandom(2 * 1024 * 1024))


def _flip_a_byte(repo: Path) -> None:
    packs = [p for p in (repo / "data").rglob("*") if p.is_file()]
    victim = max(packs, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.chmod(0o600)
    victim.write_bytes(bytes(data))

"""An agency's backup policy (the desired state of its backups), as the inventory declares it.

What is backed up (source host, paths), how often (schedule, RPO), how long snapshots are kept
(retention), where the copies live (the Pusat Data repository and the DR repository), and how often
the NOC proves them (integrity check cadence and cycle, restore drills).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.secrets import SecretRef

SITES = ("pusat_data", "dr")
SITE_NAMES = {"pusat_data": "Pusat Data", "dr": "DR site"}


@dataclass(frozen=True)
class BackupPolicy:
    agency: str
    source: str  # the device (agency server) whose paths are backed up
    paths: tuple[str, ...]
    schedule: str  # systemd OnCalendar expression on the agent, e.g. "*-*-* 01:30"
    rpo_s: float  # maximum age of the newest snapshot at each site
    pusat_data_repo: str
    dr_repo: str
    password: SecretRef
    retention: dict[str, int] = field(default_factory=dict)  # daily/weekly/monthly/yearly/last
    verify_every_s: float = 86400.0
    drill_every_s: float = 7 * 86400.0
    dr_password: SecretRef | None = None  # the DR repository's own password (default: the same)
    ssh_key: str | None = None  # private key for sftp: repositories
    known_hosts: str | None = None  # known_hosts file for sftp: repositories
    check_cycle: int = 7  # every pack is read once per this many integrity checks
    drill_files: int = 3  # sample files restored per drill
    dr_within_s: float | None = None  # a Pusat Data snapshot must reach DR within this (default: the RPO)

    def repo(self, site: str) -> str:
        return self.pusat_data_repo if site == "pusat_data" else self.dr_repo

    def password_for(self, site: str) -> SecretRef:
        return self.dr_password if site == "dr" and self.dr_password else self.password

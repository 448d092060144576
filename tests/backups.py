"""A small city with real restic repositories for the backup tests, and an sftp host in a namespace.

Each agency has source files on this host, a Pusat Data repository and a DR repository; passwords
live in a mode-600 secrets file the inventory names. The sftp host is OpenSSH (internal-sftp, key
login only) inside a network namespace the test owns.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backup.restic import Repo, Restic
from tests.conftest import CITY_HEADER
from tests.netns import NetNs, netns

PASSWORDS = {"pw-dinkes": "kata sandi dinkes 2026", "pw-disdik": "kata sandi disdik 2026",
             "pw-dinkes-dr": "dr dinkes 2026"}


@dataclass
class BackupCity:
    root: Path
    inventory: Path
    db: Path

    def source(self, agency: str) -> Path:
        return self.root / "src" / agency

    def repo(self, agency: str, site: str) -> Path:
        return self.root / site / agency

    def restic_repo(self, agency: str, site: str) -> Repo:
        key = "pw-dinkes-dr" if (agency, site) == ("dinkes", "dr") else f"pw-{agency}"
        return Repo(str(self.repo(agency, site)), PASSWORDS[key])


def write_files(where: Path, n: int, size: int, seed: int) -> None:
    """``n`` files of incompressible content (restic deduplicates, so content must differ by seed)."""
    where.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (where / f"file{i:03d}.dat").write_bytes(os.urandom(size) if seed < 0 else
                                                 (f"{seed}:{i}:".encode() * (size // 8 + 1))[:size])


def policy_toml(agency: str, source: str, paths: list[str], pd: str, dr: str, *, rpo: str = "1d",
                extra: str = "") -> str:
    dr_pw = 'dr_password = "secret:pw-dinkes-dr"\n' if agency == "dinkes" else ""
    return textwrap.dedent(f"""
        [[backup_policies]]
        agency = "{agency}"
        source = "{source}"
        paths = {paths!r}
        schedule = "*-*-* 01:30"
        rpo = "{rpo}"
        pusat_data_repo = "{pd}"
        dr_repo = "{dr}"
        password = "secret:pw-{agency}"
        retention = {{ daily = 7, weekly = 4 }}
        """).replace("'", '"') + dr_pw + extra


@contextmanager
def backup_city(root: Path, *, dinkes_extra: str = "", disdik_extra: str = "", dr_dinkes: str | None = None,
                rpo: str = "1d", init: bool = True) -> Iterator[BackupCity]:
    city = BackupCity(root, root / "city.toml", root / "noc.sqlite")
    restic = Restic()
    for agency, seed in (("dinkes", 1), ("disdik", 2)):
        write_files(city.source(agency) / "data", 8, 64 * 1024, -1)
        write_files(city.source(agency) / "docs", 4, 4096, seed)
        if init:
            for site in ("pusat_data", "dr"):
                if site == "dr" and agency == "dinkes" and dr_dinkes:
                    continue
                restic.init(city.restic_repo(agency, site))
    secrets = root / "secrets.toml"
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, "".join(f'{k} = "{v}"\n' for k, v in PASSWORDS.items()).encode())
    os.close(fd)
    text = CITY_HEADER.replace('name = "Kota Uji"', 'name = "Kota Uji"\nsecrets_file = "secrets.toml"')
    for dev, agency in (("srv-a", "dinkes"), ("srv-b", "disdik")):
        text += textwrap.dedent(f"""
            [[devices]]
            id = "{dev}"
            agency = "{agency}"
            kind = "server"
            address = "127.0.0.1"
            agent = true
            """)
    text += policy_toml("dinkes", "srv-a", [str(city.source("dinkes"))], str(city.repo("dinkes", "pusat_data")),
                        dr_dinkes or str(city.repo("dinkes", "dr")), rpo=rpo, extra=dinkes_extra)
    text += policy_toml("disdik", "srv-b", [str(city.source("disdik"))], str(city.repo("disdik", "pusat_data")),
                        str(city.repo("disdik", "dr")), rpo=rpo, extra=disdik_extra)
    city.inventory.write_text(text)
    yield city


@dataclass
class SftpHost:
    ns: NetNs
    key_file: Path
    known_hosts: Path
    proc: subprocess.Popen[bytes] | None = None
    conf: Path | None = None

    @property
    def address(self) -> str:
        return self.ns.ns_ip

    def start(self) -> None:
        assert self.conf is not None
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(self.ns.cmd("/usr/sbin/sshd", "-D", "-e", "-f", str(self.conf)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = subprocess.run(self.ns.cmd("ss", "-ltn"), capture_output=True, text=True).stdout
            if f"{self.address}:22" in out:
                return
            time.sleep(0.05)
        raise RuntimeError("sshd (sftp host) did not start listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def sftp_host(tmp: Path, subnet: int) -> Iterator[SftpHost]:
    """OpenSSH with internal-sftp in a namespace; root logs in with a key made here."""
    with netns(subnet) as ns:
        key, host_key = tmp / "sftp_id", tmp / "sftp_host_key"
        for k in (key, host_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
        (tmp / "sftp_authorized_keys").write_text(Path(f"{key}.pub").read_text())
        known = tmp / "sftp_known_hosts"
        known.write_text(f"{ns.ns_ip} {Path(f'{host_key}.pub').read_text().split(' ')[0]} "
                         f"{Path(f'{host_key}.pub').read_text().split(' ')[1]}\n")
        conf = tmp / "sftp_sshd_config"
        conf.write_text(textwrap.dedent(f"""\
            ListenAddress {ns.ns_ip}
            Port 22
            HostKey {host_key}
            PidFile {tmp}/sftp_sshd.pid
            AuthorizedKeysFile {tmp}/sftp_authorized_keys
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            Subsystem sftp internal-sftp
            """))
        host = SftpHost(ns, key, known, conf=conf)
        host.start()
        try:
            yield host
        finally:
            host.stop()

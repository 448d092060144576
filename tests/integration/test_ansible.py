"""The Ansible roles: lint (production profile), syntax, and real runs of the agent and NOC roles.

The agent role runs over SSH against OpenSSH in a network namespace, with every path under a
scratch root and systemd management off; the wheel is built from this checkout and its
dependencies come from a local wheel directory (the namespace has no other network). The token
comes from an Ansible Vault file. The deployed agent then starts — with the command line of the
unit file the role wrote — and reports to a NOC the test started; a second run changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from noc import procs
from noc.inventory import load_inventory
from noc.state import StateStore
from tests.backups import SftpHost, sftp_host
from tests.conftest import CITY, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
BACKUP_PW = "kata sandi cadangan yang rahasia"


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: scripts/setup dev installs it")
    return str(path)


def _env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": "/tmp/.ansible-local",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def test_roles_pass_ansible_lint_production_and_syntax_check() -> None:
    out = subprocess.run([_tool("ansible-lint"), "--offline", "--profile", "production", "playbooks/", "roles/"],
                         cwd=ANSIBLE, capture_output=True, text=True, env=_env(), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Profile 'production' was required, and it passed" in out.stdout + out.stderr
    for playbook in sorted((ANSIBLE / "playbooks").glob("*.yml")):
        out = subprocess.run([_tool("ansible-playbook"), "--syntax-check", "-i", "inventory/example.yml",
                              str(playbook)], cwd=ANSIBLE, capture_output=True, text=True, env=_env(), timeout=300)
        assert out.returncode == 0, f"{playbook.name}: {out.stdout}{out.stderr}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pantau's wheels from this checkout — as 0.1.0 and as the next release, 0.1.1 — and the agent's
    dependencies, in one directory (what the NOC serves at /dist/)."""
    d = tmp_path_factory.mktemp("wheels")
    src = tmp_path_factory.mktemp("src") / "pantau"  # a copy: the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "var", "*.egg-info",
                                                             "__pycache__", ".*_cache", ".hypothesis"))
    for version in ("0.1.0", "0.1.1"):
        meta = src / "pyproject.toml"
        meta.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', meta.read_text()))
        shutil.rmtree(src / "build", ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(d), str(src)],
                       check=True, capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(d), "click>=8.1", "psutil>=5.9"],
                   check=True, capture_output=True, timeout=600)
    return d


@pytest.fixture(scope="module")
def noc_wheels(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent's wheels plus everything the NOC's extra (``pantau[noc]``) pulls in."""
    d = tmp_path_factory.mktemp("noc-wheels")
    for w in wheels.iterdir():
        if not w.name.startswith("pantau-0.1.1-"):
            shutil.copy(w, d)
    wheel = next(d.glob("pantau-0.1.0-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(d), f"{wheel}[noc]"],
                   check=True, capture_output=True, timeout=900)
    return d


@pytest.fixture
def accounts() -> Iterator[Callable[[str], str]]:
    """Service accounts a role creates on the test host, which shares this machine's /etc/passwd: a
    name only the tests use, cleared before (a killed run's leftover) and removed afterwards."""
    made: list[str] = []

    def account(name: str) -> str:
        _remove_account(name)
        made.append(name)
        return name

    yield account
    for name in made:
        _remove_account(name)


def _remove_account(name: str) -> None:
    import grp
    import pwd

    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        subprocess.run(["userdel", name], check=True, capture_output=True, timeout=30)
    with contextlib.suppress(KeyError):
        grp.getgrnam(name)
        subprocess.run(["groupdel", name], check=True, capture_output=True, timeout=30)


@pytest.fixture
def host(world_tmp: Path) -> Iterator[SftpHost]:
    with sftp_host(world_tmp, 195) as h:
        yield h


def _run_playbook(inv: Path, vault_pw: Path, *extra: str, playbook: str = "agent.yml"
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("ansible-playbook"), "-i", str(inv), "--vault-password-file", str(vault_pw),
                           str(ANSIBLE / "playbooks" / playbook), *extra],
                          capture_output=True, text=True, env=_env(), timeout=900)


def _recap(out: str) -> dict[str, int]:
    m = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    assert m, out[-2000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()), strict=True))


def test_agent_role_deploys_idempotently_and_the_agent_reports(host: SftpHost, wheels: Path, world_tmp: Path,
                                                              accounts: Callable[[str], str]) -> None:
    user = accounts("pantau-agent-test")  # the role creates its service account
    target = world_tmp / "target-root"  # the deployment's "/" on the test host
    target.mkdir(mode=0o755)
    # the NOC the deployed agent installs pantau from (its /dist/ serves the wheels) and reports to,
    # on this host's end of the namespace link; its token for srv-a
    city = world_tmp / "city.toml"
    city.write_text(CITY.replace('id = "srv-a"\nagency = "dinkes"\nkind = "server"\naddress = "127.0.0.1"',
                                 f'id = "srv-a"\nagency = "dinkes"\nkind = "server"\naddress = "{host.address}"'))
    db, port = world_tmp / "noc.sqlite", procs.free_port()
    store = StateStore(db)
    store.sync_inventory(load_inventory(city))
    token = store.add_agent("srv-a", "pytest", "ansible test", rotate=True)
    store.close()
    cert, key = world_tmp / "noc.crt", world_tmp / "noc.key"  # the NOC speaks TLS: to pip and to the agent
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=pantau-noc", "-addext", f"subjectAltName=IP:{host.ns.host_ip}"],
                   check=True, capture_output=True, timeout=60)

    vault_pw = world_tmp / "vault.pass"
    vault_pw.write_text("sandi-vault\n")
    vault_pw.chmod(0o600)
    group_vars = world_tmp / "group_vars" / "pantau_agents"
    group_vars.mkdir(parents=True)
    (group_vars / "vault.yml").write_text(f"vault_token: {token}\nvault_backup_password: {BACKUP_PW}\n")
    subprocess.run([_tool("ansible-vault"), "encrypt", "--vault-password-file", str(vault_pw),
                    str(group_vars / "vault.yml")], check=True, capture_output=True, env=_env(), timeout=120)
    assert token not in (group_vars / "vault.yml").read_text()

    inv = world_tmp / "inventory.yml"
    inv.write_text(textwrap.dedent(f"""\
        all:
          children:
            pantau_agents:
              hosts:
                srv-a:
                  ansible_host: {host.address}
                  ansible_user: root
                  ansible_ssh_private_key_file: {host.key_file}
                  ansible_python_interpreter: /usr/bin/python3.11
                  pantau_agent_root: {target}
                  pantau_agent_create_user: true
                  pantau_agent_user: {user}
                  pantau_agent_group: {user}
                  pantau_agent_manage_service: false
                  pantau_agent_install_packages: false
                  pantau_agent_python: /usr/bin/python3.11
                  pantau_agent_noc_url: https://{host.ns.host_ip}:{port}
                  pantau_agent_ca_file: {cert}
                  pantau_agent_dist_url: https://{host.ns.host_ip}:{port}/dist/
                  pantau_agent_interval: 1
                  pantau_agent_version: "0.1.0"
                  pantau_agent_token: "{{{{ vault_token }}}}"
                  pantau_agent_backup_password: "{{{{ vault_backup_password }}}}"
                  pantau_agent_backup_repo: /srv/restic/dinkes
                  pantau_agent_backup_paths: [/srv/simpus]
                  pantau_agent_backup_retention: {{daily: 7, weekly: 4}}
        """))

    noc_log = world_tmp / "noc.log"
    noc = procs.start_noc(city, db, port, noc_log, listen=host.ns.host_ip, scheme="https",
                          extra=["--dist-dir", str(wheels), "--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        _deploy_upgrade_and_run(host, inv, vault_pw, target, user, token, db)
    finally:
        procs.stop(noc)
    served = noc_log.read_text()
    for release in ("0.1.0", "0.1.1"):
        assert f"package pantau-{release}-py3-none-any.whl sent to {host.address}" in served, served[-3000:]


def _deploy_upgrade_and_run(host: SftpHost, inv: Path, vault_pw: Path, target: Path, user: str, token: str,
                            db: Path) -> None:
    """The agent role against the host, twice, then upgraded and rolled back; the agent it left then reports."""
    first = _run_playbook(inv, vault_pw, "-v")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert _recap(first.stdout)["failed"] == 0 and _recap(first.stdout)["changed"] > 0
    second = _run_playbook(inv, vault_pw)
    assert second.returncode == 0, second.stdout[-4000:]
    assert _recap(second.stdout)["changed"] == 0, f"the second run changed something:\n{second.stdout[-4000:]}"
    for out in (first, second):
        assert token not in out.stdout + out.stderr and BACKUP_PW not in out.stdout + out.stderr

    # no file on the host holds the token or the backup password where another user could read it
    for f in target.rglob("*"):
        if f.is_file() and not f.is_symlink() and f.stat().st_size < 1_000_000:
            data = f.read_bytes()
            if token.encode() in data or BACKUP_PW.encode() in data:
                assert f.stat().st_mode & 0o077 == 0, f"{f} holds a secret and is readable by others"

    etc, state = target / "etc" / "pantau", target / "var" / "lib" / "pantau-agent"
    token_file = etc / "agent.token"
    spool = (state / "spool").stat()
    assert spool.st_mode & 0o777 == 0o700 and spool.st_uid == _uid(user)
    assert token_file.read_text().strip() == token
    st = token_file.stat()
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == _uid(user)
    assert (etc / "backup.pass").stat().st_mode & 0o777 == 0o600 and (etc / "backup.pass").stat().st_uid == 0
    assert token not in (etc / "agent.env").read_text()
    assert 'repo = "/srv/restic/dinkes"' in (etc / "backup.toml").read_text()
    units = target / "etc" / "systemd" / "system"
    unit = (units / "pantau-agent.service").read_text()
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", f"User={user}"):
        assert hardening in unit
    assert "OnCalendar=*-*-* 01:30" in (units / "pantau-backup.timer").read_text()
    exposure = _systemd_reads(units, ["pantau-agent.service", "pantau-backup.service", "pantau-backup.timer"],
                              ["pantau-agent.service"])
    print("systemd-analyze security exposure:", exposure)
    assert exposure["pantau-agent.service"] <= 2.0, exposure  # "OK" in systemd's words; 3.2 before hardening
    assert (target / "opt" / "pantau-agent" / "current").resolve().name == "0.1.0"

    # upgrade to a pinned release and roll back: "current" moves, the old venv is kept and reused
    home = target / "opt" / "pantau-agent"
    up = _run_playbook(inv, vault_pw, "-e", "pantau_agent_version=0.1.1")
    assert up.returncode == 0 and (home / "current").resolve().name == "0.1.1", up.stdout[-3000:]
    for release in ("0.1.0", "0.1.1"):  # each venv holds the release it is named for, from the NOC's /dist/
        assert len(list((home / release).glob(f"lib/python3*/site-packages/pantau-{release}.dist-info"))) == 1
    back = _run_playbook(inv, vault_pw, "-e", "pantau_agent_version=0.1.0")
    assert back.returncode == 0 and (home / "current").resolve().name == "0.1.0", back.stdout[-3000:]
    assert _recap(back.stdout)["changed"] == 1, "a rollback only moves the link (no reinstall)"
    assert sorted(p.name for p in home.iterdir()) == ["0.1.0", "0.1.1", "current", "noc-ca.crt"]  # pip's CA

    # start the agent exactly as the unit would, inside the namespace, and see it report
    exec_start = next(ln.split("=", 1)[1] for ln in unit.splitlines() if ln.startswith("ExecStart="))
    env = dict(ln.split("=", 1) for ln in (etc / "agent.env").read_text().splitlines() if "=" in ln
               and not ln.startswith("#"))
    agent = subprocess.Popen(host.ns.cmd("runuser", "-u", user, "--", *shlex.split(exec_start), "--duration", "20"),
                             env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def reported() -> bool:
            with sqlite3.connect(db) as c:
                return bool(c.execute("SELECT count(*) FROM reports WHERE agent='srv-a'").fetchone()[0] >= 2)

        wait_for(reported, 30, "reports from the deployed agent")
    finally:
        agent.terminate()
        agent.wait(timeout=20)


def test_noc_role_deploys_idempotently_and_the_noc_it_installed_serves(host: SftpHost, noc_wheels: Path,
                                                                        world_tmp: Path,
                                                                        accounts: Callable[[str], str]) -> None:
    user = accounts("pantau-noc-test")  # the role creates its service account
    target = world_tmp / "noc-root"  # the deployment's "/" on the test host
    target.mkdir(mode=0o755)
    wheel = next(noc_wheels.glob("pantau-0.1.0-*.whl"))
    city = world_tmp / "city.toml"
    city.write_text(CITY)
    secret_line = 'telegram-bot = "123456:rahasia-bot-kota"'
    vault_pw = world_tmp / "vault.pass"
    vault_pw.write_text("sandi-vault\n")
    vault_pw.chmod(0o600)
    group_vars = world_tmp / "group_vars" / "pantau_noc"
    group_vars.mkdir(parents=True)
    (group_vars / "vault.yml").write_text(f"vault_noc_secrets: '{secret_line}'\n")
    subprocess.run([_tool("ansible-vault"), "encrypt", "--vault-password-file", str(vault_pw),
                    str(group_vars / "vault.yml")], check=True, capture_output=True, env=_env(), timeout=120)
    inv = world_tmp / "inventory.yml"
    inv.write_text(textwrap.dedent(f"""\
        all:
          children:
            pantau_noc:
              hosts:
                noc:
                  ansible_host: {host.address}
                  ansible_user: root
                  ansible_ssh_private_key_file: {host.key_file}
                  ansible_python_interpreter: /usr/bin/python3.11
                  pantau_noc_root: {target}
                  pantau_noc_create_user: true
                  pantau_noc_user: {user}
                  pantau_noc_group: {user}
                  pantau_noc_manage_service: false
                  pantau_noc_install_packages: false
                  pantau_noc_python: /usr/bin/python3.11
                  pantau_noc_version: "0.1.0"
                  pantau_noc_package: "{wheel}[noc]"
                  pantau_noc_pip_extra_args: --no-index --find-links {noc_wheels}
                  pantau_noc_inventory_file: {city}
                  pantau_noc_secrets: "{{{{ vault_noc_secrets }}}}"
                  pantau_noc_listen: 127.0.0.1
                  pantau_noc_dist_files: [{wheel}]
        """))
    first = _run_playbook(inv, vault_pw, "-v", playbook="noc.yml")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert _recap(first.stdout)["failed"] == 0 and _recap(first.stdout)["changed"] > 0
    second = _run_playbook(inv, vault_pw, playbook="noc.yml")
    assert second.returncode == 0, second.stdout[-4000:]
    assert _recap(second.stdout)["changed"] == 0, f"the second run changed something:\n{second.stdout[-4000:]}"
    for out in (first, second):
        assert "rahasia-bot-kota" not in out.stdout + out.stderr

    etc, state = target / "etc" / "pantau", target / "var" / "lib" / "pantau"
    secrets = etc / "secrets.toml"
    assert secrets.read_text().strip() == secret_line
    assert secrets.stat().st_mode & 0o777 == 0o600 and secrets.stat().st_uid == _uid(user)
    assert (etc / "city.toml").read_text() == city.read_text() and (etc / "city.toml").stat().st_mode & 0o007 == 0
    assert state.stat().st_uid == _uid(user) and state.stat().st_mode & 0o777 == 0o750
    # the Grafana provisioning files, built by the installed pantau
    grafana = state / "grafana"
    assert sorted(p.name for p in (grafana / "dashboards").glob("*.json")) == [
        "pantau-agency.json", "pantau-backups.json", "pantau-devices.json", "pantau-overview.json",
        "pantau-uptime.json"]
    assert "http://127.0.0.1:8428" in (grafana / "provisioning" / "datasources" / "pantau.yaml").read_text()
    units = target / "etc" / "systemd" / "system"
    unit = (units / "pantau-noc.service").read_text()
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", f"User={user}", f"ReadWritePaths={state}"):
        assert hardening in unit
    exposure = _systemd_reads(units, ["pantau-noc.service", "pantau-state-backup.service",
                                      "pantau-state-backup.timer"], ["pantau-noc.service"])
    print("systemd-analyze security exposure:", exposure)
    assert exposure["pantau-noc.service"] <= 2.0, exposure  # 4.9 before hardening

    # start the NOC exactly as its unit would (as its user, in its working directory) and ask its health
    exec_start = next(ln.split("=", 1)[1] for ln in unit.splitlines() if ln.startswith("ExecStart="))
    port = procs.free_port()
    cmd = shlex.split(exec_start.replace("--port 8470", f"--port {port}"))
    log = (world_tmp / "deployed-noc.log").open("wb")
    noc = subprocess.Popen(["runuser", "-u", user, "--", *cmd], cwd=state, stdout=log, stderr=subprocess.STDOUT)
    try:
        procs.wait_until(lambda: procs.http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "the deployed NOC", noc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dist/", timeout=10) as r:  # what agents install from
            assert f'href="{wheel.name}#sha256=' in r.read().decode()
    finally:
        procs.stop(noc)
    assert (state / "noc.sqlite").stat().st_uid == _uid(user)
    # the state backup, as its timer runs it (systemd's %% is a single %)
    backup_unit = (units / "pantau-state-backup.service").read_text()
    backup_cmd = next(ln.split("=", 1)[1] for ln in backup_unit.splitlines() if ln.startswith("ExecStart="))
    subprocess.run(["runuser", "-u", user, "--", *shlex.split(backup_cmd.replace("%%", "%"))], check=True,
                   timeout=60)
    copies = list((state / "state-backups").glob("noc-*.sqlite"))
    assert len(copies) == 1
    with sqlite3.connect(copies[0]) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT count(*) FROM devices").fetchone()[0] > 0, "the copy holds the NOC's state"


def _systemd_reads(units: Path, names: list[str], services: list[str]) -> dict[str, float]:
    """systemd's own reading of the units a role wrote (no systemd runs here): ``systemd-analyze verify``
    (syntax, unknown keys, executables that exist) passes silently; the offline security exposure of
    each long-running service (0 safest … 10 unsafe) is returned."""
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.fail("systemd-analyze is not installed: scripts/setup installs Debian's systemd package")
    out = subprocess.run([sa, "verify", *(str(units / n) for n in names)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), out.stdout + out.stderr
    scores = {}
    for name in services:
        out = subprocess.run([sa, "security", "--offline=yes", "--no-pager", str(units / name)], capture_output=True,
                             text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
        assert m, out.stdout + out.stderr
        scores[name] = float(m.group(1))
    return scores


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def test_pantau_ansible_inventory_is_read_by_ansible_and_holds_no_secret(tmp_path: Path) -> None:
    from tests.backups import backup_city
    from tests.conftest import pantau

    with backup_city(tmp_path, init=False) as city:
        out = tmp_path / "city.yml"
        pantau("ansible", "inventory", "--inventory", str(city.inventory), "--noc-url", "https://noc:8470",
               "--out", str(out))
    text = out.read_text()
    assert "kata sandi" not in text and "vault_pantau_agent_tokens['srv-a']" in text
    listed = subprocess.run([_tool("ansible-inventory"), "-i", str(out), "--list"], capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert listed.returncode == 0, listed.stderr
    import json

    data = json.loads(listed.stdout)
    assert sorted(data["pantau_agents"]["hosts"]) == ["srv-a", "srv-b"]
    srv_a = data["_meta"]["hostvars"]["srv-a"]
    assert srv_a["pantau_agent_agency"] == "dinkes" and srv_a["pantau_agent_backup_paths"] == [
        str(city.source("dinkes"))]
    assert srv_a["pantau_agent_backup_retention"] == {"daily": 7, "weekly": 4}
    assert srv_a["pantau_agent_noc_url"] == "https://noc:8470"

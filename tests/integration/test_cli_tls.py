"""The CLI as an operator uses it, TLS between agent and NOC, and the agent's minimal install."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CITY, pantau, wait_for

pytestmark = pytest.mark.integration


def test_agents_add_list_revoke_and_audit(tmp_path: Path) -> None:
    inv = tmp_path / "city.toml"
    inv.write_text(CITY)
    db = str(tmp_path / "noc.sqlite")
    out = pantau("agents", "add", "srv-a", "--inventory", str(inv), "--db", db, "--operator", "ani",
                 "--reason", "SR-2041 new SIMPUS server")
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("pnt_") and "shown once" in out.stdout
    again = pantau("agents", "add", "srv-a", "--db", db, check=False)
    assert again.returncode != 0 and "already has a token; use --rotate" in again.stderr
    tf = tmp_path / "b.token"
    pantau("agents", "add", "srv-b", "--db", db, "--token-file", str(tf))
    assert oct(tf.stat().st_mode & 0o777) == "0o600"
    listing = pantau("agents", "list", "--db", db).stdout
    assert "srv-a" in listing and "active" in listing and "ani" in listing
    pantau("agents", "revoke", "srv-b", "--db", db, "--operator", "ani", "--reason", "moved to DR")
    missing = pantau("agents", "revoke", "nope", "--db", db, check=False)
    assert missing.returncode == 4 and "has no active token" in missing.stderr
    audit = pantau("audit", "list", "--db", db).stdout
    assert "SR-2041 new SIMPUS server" in audit and "agent.revoke" in audit
    assert token not in audit and token not in "\n".join(
        p.read_text(errors="replace") for p in tmp_path.glob("*.sqlite*"))
    ok = pantau("audit", "verify", "--db", db)
    assert "hash chain verified" in ok.stdout


def test_inventory_check_shows_every_problem(tmp_path: Path) -> None:
    inv = tmp_path / "city.toml"
    inv.write_text(CITY.replace('agency = "disdik"', 'agency = "disdikk"').replace('down = "1 Gbit"', 'down = "fast"'))
    out = pantau("inventory", "check", str(inv), check=False)
    assert out.returncode == 2
    assert "2 problem(s)" in out.stderr
    assert "uplinks[0] (isp).down: 'fast' is not a rate" in out.stderr
    assert "devices[1] (srv-b).agency: agency 'disdikk' is not defined" in out.stderr
    good = tmp_path / "good.toml"
    good.write_text(CITY)
    assert "OK" in pantau("inventory", "check", str(good)).stdout


def test_agent_reports_over_tls_and_refuses_an_unknown_certificate(noc_factory: Any, world_tmp: Path) -> None:
    cert, key = world_tmp / "noc.crt", world_tmp / "noc.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True, timeout=60)
    os.chmod(cert, 0o644)
    noc = noc_factory(extra=["--tls-cert", str(cert), "--tls-key", str(key)], scheme="https")
    noc.start_agent("srv-a", interval=1.0, extra=["--ca-file", str(cert)])
    untrusting = noc.start_agent("srv-b", interval=1.0)
    wait_for(lambda: len(noc.ledger("srv-a")) >= 3, 30, "reports over TLS")
    assert noc.ledger("srv-b") == []
    untrusting.terminate()
    untrusting.wait(30)
    log = (noc.home / "agents" / "srv-b" / "agent.log").read_text()
    assert "CERTIFICATE_VERIFY_FAILED" in log or "certificate verify failed" in log
    assert noc.spool_len("srv-b") >= 1, "reports that could not be sent stay spooled"


def test_the_agent_refuses_root_without_a_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to check the root refusal")
    tf = tmp_path / "t"
    tf.write_text("pnt_x\n")
    out = pantau("agent", "run", "--noc", "http://127.0.0.1:9", "--id", "x", "--token-file", str(tf),
                 "--spool", str(tmp_path / "s"), check=False)
    assert out.returncode == 2 and "should not run as root" in out.stderr


def test_agent_installs_and_runs_without_the_noc_dependencies(tmp_path: Path) -> None:
    """The base install (click + psutil) is enough for `pantau agent run`."""
    root = Path(__file__).resolve().parents[2]
    env_dir = tmp_path / "agent-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(root)], check=True, timeout=600,
                   capture_output=True)
    probe = subprocess.run([str(py), "-c", "import importlib.util as u;"
                            "print([m for m in ('aiohttp','influxdb_client','jsonschema') if u.find_spec(m)])"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "[]"
    out = subprocess.run([str(env_dir / "bin" / "pantau"), "agent", "run", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--token-file" in out.stdout
    assert sys.executable  # the test's own interpreter is untouched

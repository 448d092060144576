"""Shared fixtures: real VictoriaMetrics, a real NOC collector process, real agent processes.

Every process is started on loopback, in a temporary directory, and stopped by the fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from noc import procs
from noc.inventory import load_inventory
from noc.state import StateStore

# `pytest --hypothesis-profile=soak` for long runs: every property test without its own
# max_examples tries 50,000 cases (500 times hypothesis' default), the ingest fuzzer 10 times its 5,000.
settings.register_profile("soak", max_examples=50_000, deadline=None)


def pantau(*args: str, check: bool = True, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as an operator would; fail with its stderr when ``check`` and it exits non-zero."""
    out = subprocess.run([*procs.PANTAU, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"pantau {' '.join(args)} exited {out.returncode}: {out.stderr}{out.stdout}")
    return out


# The test city's uplink and agencies; tests add the devices they need.
CITY_HEADER = textwrap.dedent("""
    [city]
    name = "Kota Uji"

    [[uplinks]]
    id = "isp"
    down = "1 Gbit"
    up = "1 Gbit"

    [[agencies]]
    id = "dinkes"
    name = "Dinas Kesehatan"

    [[agencies]]
    id = "disdik"
    name = "Dinas Pendidikan"
""")

CITY = CITY_HEADER + textwrap.dedent("""
    [[devices]]
    id = "srv-a"
    agency = "dinkes"
    kind = "server"
    address = "127.0.0.1"
    agent = true
    count_interfaces = ["lo"]

    [[devices]]
    id = "srv-b"
    agency = "disdik"
    kind = "server"
    address = "127.0.0.1"
    agent = true
    count_interfaces = ["lo"]
""")


@dataclass
class VM:
    url: str
    data: Path
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = procs.start_victoria_metrics(self.data, self.port, self.log)

    def stop(self) -> None:
        procs.stop(self.proc)
        self.proc = None

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples of every series matching a selector (VictoriaMetrics /api/v1/export)."""
        q = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=10) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]

    def query(self, promql: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": promql})
        data = procs.http_json(f"{self.url}/api/v1/query?{q}")
        return data["data"]["result"]  # type: ignore[index,no-any-return]


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VM]:
    if procs.victoria_metrics_binary() is None:
        pytest.fail("VictoriaMetrics is not installed: run scripts/setup")
    port = procs.free_port()
    v = VM(f"http://127.0.0.1:{port}", tmp_path / "vm", tmp_path / "vm.log", port)
    v.start()
    yield v
    v.stop()


@dataclass
class Noc:
    home: Path
    inventory: Path
    db: Path
    port: int
    tsdb_url: str | None
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / "noc.log"

    def start(self) -> None:
        self.proc = procs.start_noc(self.inventory, self.db, self.port, self.log, tsdb_url=self.tsdb_url,
                                    extra=self.extra, scheme=self.scheme)

    def stop(self) -> None:
        procs.stop(self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def token(self, device: str) -> str:
        store = StateStore(self.db)
        store.sync_inventory(load_inventory(self.inventory))
        try:
            return store.add_agent(device, "pytest", "test", rotate=True)
        finally:
            store.close()

    def token_file(self, device: str) -> Path:
        path = self.home / f"{device}.token"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (self.token(device) + "\n").encode())
        os.close(fd)
        return path

    def start_agent(self, device: str, *, interval: float = 1.0, extra: list[str] | None = None
                    ) -> subprocess.Popen[bytes]:
        home = self.home / "agents" / device
        home.mkdir(parents=True, exist_ok=True)
        p = procs.start_agent(device, self.url, self.token_file(device), home / "spool", home / "agent.log",
                              interval=interval, extra=["--journal", str(home / "journal.jsonl"), *(extra or [])])
        self.agents.append(p)
        return p

    def journal(self, device: str) -> list[dict[str, Any]]:
        path = self.home / "agents" / device / "journal.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]

    def spool_len(self, device: str) -> int:
        return len(list((self.home / "agents" / device / "spool").glob("*.json")))

    def health(self) -> dict[str, Any]:
        return procs.http_json(f"{self.url}/healthz")  # type: ignore[return-value]

    def wait_outbox_empty(self, timeout: float = 60) -> None:
        procs.wait_until(lambda: self.health()["tsdb_outbox_pending"] == 0, timeout, "TSDB outbox drained",
                         step=0.3)

    def ledger(self, agent: str) -> list[int]:
        store = StateStore(self.db)
        try:
            return [r[0] for r in store.conn.execute("SELECT seq FROM reports WHERE agent=? ORDER BY seq", (agent,))]
        finally:
            store.close()


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    """A temporary directory an unprivileged agent user can traverse (pytest's own is private)."""
    path = Path(tempfile.mkdtemp(prefix="pantau-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def noc_factory(world_tmp: Path) -> Iterator[Any]:
    made: list[Noc] = []
    tmp_path = world_tmp

    def make(tsdb_url: str | None = None, extra: list[str] | None = None, start: bool = True,
             city: str = CITY, scheme: str = "http") -> Noc:
        home = tmp_path / f"noc{len(made)}"
        home.mkdir()
        os.chmod(home, 0o755)
        inv = home / "city.toml"
        inv.write_text(city)
        n = Noc(home, inv, home / "noc.sqlite", procs.free_port(), tsdb_url, extra or [], scheme=scheme)
        made.append(n)
        if start:
            n.start()
        return n

    yield make
    for n in made:
        for a in n.agents:
            procs.stop(a)
        n.stop()


def make_report(seq: int) -> dict[str, Any]:
    """A minimal valid report whose eth0 counters grow by 1000/500 bytes per sequence number."""
    return {
        "seq": seq, "collected_at": time.time(), "mono": time.monotonic(), "boot_id": "b1", "boot_time": 1.0,
        "host": {"cpu_percent": 1.0, "mem_total": 1000, "mem_used": 10},
        "interfaces": [{"name": "eth0", "rx_bytes": seq * 1000, "tx_bytes": seq * 500}],
    }


def wait_for(check: Any, timeout: float, what: str) -> None:
    procs.wait_until(check, timeout, what, step=0.2)

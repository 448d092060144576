"""Starting and stopping the real processes a NOC host runs (VictoriaMetrics, NOC, agents).

Used by the demo and by the tests' fixtures alike, so both exercise the same start-up path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from core.errors import PantauError

PANTAU = [sys.executable, "-m", "noc"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
               step: float = 0.1) -> None:
    """Poll ``check`` until true; bounded by ``timeout``; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        if proc is not None and proc.poll() is not None:
            raise PantauError(f"{what}: the process exited with code {proc.returncode}")
        time.sleep(step)
    raise PantauError(f"{what}: not ready after {timeout:.0f}s")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URLs we built
        return bool(r.status == 200)


def http_json(url: str, timeout: float = 5.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310
        return json.loads(r.read())


def victoria_metrics_binary() -> str | None:
    return shutil.which("victoria-metrics") or shutil.which("victoria-metrics-prod")


def start_victoria_metrics(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """VictoriaMetrics on loopback; fresh points visible after 1 s; same-timestamp duplicates merged."""
    binary = victoria_metrics_binary()
    if binary is None:
        raise PantauError("VictoriaMetrics is not installed (apt-get install victoria-metrics)")
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={data_dir}", "-search.latencyOffset=1s",
         "-dedup.minScrapeInterval=1ms", "-retentionPeriod=1y"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), 30, "VictoriaMetrics", proc)
    return proc


def start_noc(inventory: Path, db: Path, port: int, log: Path, *, tsdb_url: str | None = None,
              extra: list[str] | None = None, scheme: str = "http", listen: str = "127.0.0.1"
              ) -> subprocess.Popen[bytes]:
    cmd = [*PANTAU, "noc", "serve", "--inventory", str(inventory), "--db", str(db), "--port", str(port),
           "--listen", listen]
    if tsdb_url:
        cmd += ["--tsdb-url", tsdb_url]
    cmd += extra or []
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        if scheme == "http":
            wait_until(lambda: http_ok(f"http://{listen}:{port}/healthz"), 30, "NOC collector", proc)
        else:
            wait_until(lambda: port_open(port, listen), 30, "NOC collector (TLS)", proc)
    except PantauError as exc:
        stop(proc)
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise PantauError(f"{exc}; last lines of {log}:\n" + "\n".join(tail)) from exc
    return proc


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def world_readable(path: Path) -> bool:
    """Whether an unprivileged user can reach and read ``path`` (every parent searchable)."""
    p = path.resolve()
    for part in [*reversed(p.parents), p]:
        mode = part.stat().st_mode
        if not mode & stat.S_IXOTH and part.is_dir():
            return False
    return bool(p.stat().st_mode & stat.S_IROTH)


def agent_user_args() -> list[str]:
    """How to start an agent so that it does not keep root."""
    if os.geteuid() != 0:
        return []
    src = Path(__file__).resolve().parent
    if world_readable(Path(sys.executable)) and world_readable(src):
        return ["--user", "nobody"]
    return ["--allow-root"]


def start_agent(agent_id: str, noc_url: str, token_file: Path, spool: Path, log: Path, *, interval: float,
                extra: list[str] | None = None, netns: str | None = None) -> subprocess.Popen[bytes]:
    """An agent process; inside network namespace ``netns`` when given (an agency host behind a router).

    Its backup results wait beside its spool (``backup-results``), never in the host's own
    /var/lib/pantau-agent, unless ``extra`` names another place."""
    extra = list(extra or [])
    if "--backup-results" not in extra:
        extra += ["--backup-results", str(spool.parent / "backup-results")]
    cmd = [*(["ip", "netns", "exec", netns] if netns else []), *PANTAU, "agent", "run",
           "--noc", noc_url, "--id", agent_id, "--token-file", str(token_file),
           "--spool", str(spool), "--interval", str(interval), *agent_user_args(), *extra]
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)

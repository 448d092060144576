"""restic, driven through its CLI as a subprocess: typed results, clear errors, secrets kept out of sight.

Passwords reach restic through pipes (``--password-file /dev/fd/N``), never on a command line, in
the environment of other processes or in a log. sftp: repositories get an explicit ``ssh`` command
(batch mode, connect timeout, the policy's key and known_hosts). restic 0.14 exits 1 for every
fatal error, so the error kind is read from its stderr and mapped onto :mod:`core.errors`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import (
    BackupError,
    RepoAuthError,
    RepoError,
    RepoLocked,
    RepoMissing,
    RepoTimeout,
    RepoUnreachable,
)


@dataclass(frozen=True)
class Repo:
    """A repository and how to open it. ``password`` is the secret itself: keep it out of reprs."""

    location: str
    password: str = field(repr=False)
    ssh_key: str | None = None
    known_hosts: str | None = None
    connect_timeout_s: int = 10

    def ssh_command(self) -> str | None:
        """The ``sftp.command`` for an sftp: repository (restic then ignores the URL's host part)."""
        target = sftp_target(self.location)
        if target is None:
            return None
        user_host, port = target
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}",
               "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]
        if self.known_hosts:
            cmd += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        else:
            cmd += ["-o", "StrictHostKeyChecking=accept-new"]
        if self.ssh_key:
            cmd += ["-i", self.ssh_key, "-o", "IdentitiesOnly=yes"]
        if port:
            cmd += ["-p", str(port)]
        return shlex.join([*cmd, user_host, "-s", "sftp"])


_SFTP_URL = re.compile(r"^sftp://(?:(?P<user>[^@/]+)@)?(?P<host>[^/:]+)(?::(?P<port>\d+))?/(?P<path>.*)$")
_SFTP_SHORT = re.compile(r"^sftp:(?:(?P<user>[^@/:]+)@)?(?P<host>[^/:]+):(?P<path>.*)$")


def sftp_parts(location: str) -> tuple[str | None, str, int | None, str] | None:
    """(user, host, port, path) of an sftp: location as restic reads it, None for other backends.

    ``sftp://host//abs`` is an absolute path and ``sftp://host/rel`` one relative to the login's home."""
    m = _SFTP_URL.match(location) or _SFTP_SHORT.match(location)
    if m is None:
        return None
    port = m.groupdict().get("port")
    return m.group("user"), m.group("host"), int(port) if port else None, m.group("path")


def sftp_target(location: str) -> tuple[str, int | None] | None:
    """(user@host, port) of an sftp: location, None for any other backend."""
    parts = sftp_parts(location)
    if parts is None:
        return None
    user, host, port, _ = parts
    return (f"{user}@{host}" if user else host), port


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: float  # unix seconds
    hostname: str
    paths: tuple[str, ...]
    tags: tuple[str, ...] = ()
    original: str | None = None  # set on copies: the id of the snapshot this one was copied from

    @property
    def origin(self) -> str:
        """The id shared by a snapshot and its copies at other sites."""
        return self.original or self.id


@dataclass(frozen=True)
class BackupSummary:
    snapshot_id: str
    files_new: int
    files_changed: int
    files_total: int
    bytes_total: int
    bytes_added: int
    duration_s: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    subset: str | None  # "n/t" read this time, None for a structure-only check
    packs_read: int
    packs_total: int
    errors: tuple[str, ...]
    duration_s: float


@dataclass(frozen=True)
class Node:
    path: str
    type: str
    size: int


def parse_time(text: str) -> float:
    """restic's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    m = re.match(r"^(.*?\.\d{1,6})\d*(Z|[+-]\d\d:\d\d)$", text)
    if m:
        text = m.group(1) + m.group(2)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_snapshots(data: Any) -> list[Snapshot]:
    return sorted((Snapshot(s["id"], s.get("short_id", s["id"][:8]), parse_time(s["time"]), s.get("hostname", ""),
                            tuple(s.get("paths") or ()), tuple(s.get("tags") or ()), s.get("original"))
                   for s in data or ()), key=lambda s: s.time)


def parse_backup_output(stdout: str, stderr: str) -> BackupSummary:
    summary: dict[str, Any] | None = None
    warnings = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            msg = json.loads(line)
            if msg.get("message_type") == "summary":
                summary = msg
            elif msg.get("message_type") == "error":
                err = msg.get("error", {})
                warnings.append(f"{msg.get('item', '?')}: {err.get('message', err) if isinstance(err, dict) else err}")
    if summary is None:
        raise BackupError("restic backup printed no summary; the snapshot was not saved" +
                          (f": {warnings[-1]}" if warnings else ""))
    return BackupSummary(summary["snapshot_id"], summary.get("files_new", 0), summary.get("files_changed", 0),
                         summary.get("total_files_processed", 0), summary.get("total_bytes_processed", 0),
                         summary.get("data_added", 0), float(summary.get("total_duration", 0.0)), tuple(warnings))


_CHECK_GROUP = re.compile(r"read group #\d+ of (\d+) data packs \(out of total (\d+) packs")
_LONG_ID = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")  # pack/blob ids: 12 hex digits are enough to read
_CHECK_ERROR = re.compile(r"(Pack ID does not match|error|Error|invalid|missing|unreferenced pack|damaged)")


def parse_check(stdout: str, stderr: str, ok: bool, subset: str | None, duration: float) -> CheckResult:
    text = stdout + "\n" + stderr
    read = total = 0
    m = _CHECK_GROUP.search(text)
    if m:
        read, total = int(m.group(1)), int(m.group(2))
    errors = tuple(_LONG_ID.sub(r"\1…", ln.strip()) for ln in text.splitlines()
                   if _CHECK_ERROR.search(ln) and "no errors were found" not in ln and not ln.startswith("["))
    return CheckResult(ok and not errors, subset, read, total, errors, duration)


def classify(stderr: str, location: str, returncode: int) -> RepoError | None:
    """The repository error that restic's stderr describes, or None when it is something else."""
    low = stderr.lower()
    where = f"repository {location}"
    if "wrong password" in low or "no key found" in low:
        return RepoAuthError(f"{where} refused the password (wrong password or no matching key); "
                             "check the policy's password secret")
    if "already locked" in low:
        holder = re.search(r"locked (?:exclusively )?by (PID \d+ on \S+ by \S+)", stderr)
        return RepoLocked(f"{where} is locked by another restic process" +
                          (f" ({holder.group(1)})" if holder else "") +
                          "; if that process is gone, run `restic unlock` on the repository")
    if ("unable to start the sftp session" in low or "connection refused" in low or "connection timed out" in low
            or "no route to host" in low or "could not resolve" in low or "network is unreachable" in low
            or "host key verification failed" in low or "permission denied (publickey" in low
            or "subprocess ssh" in low):
        last = _last_line(stderr)
        return RepoUnreachable(f"{where} is unreachable: {last}; check the host, SSH key and network")
    if "is there a repository at the following location" in low or (
            "unable to open config file" in low and "no such file" in low):
        return RepoMissing(f"no restic repository at {location} (never initialised, wrong path or deleted)")
    if returncode != 0 and ("no such file or directory" in low and "repository" in low):
        return RepoMissing(f"no restic repository at {location}")
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


@dataclass(frozen=True)
class Restic:
    """Runs restic. ``binary`` and ``timeout_s`` are injected; ``cache_dir`` keeps restic's cache apart."""

    binary: str = "restic"
    timeout_s: float = 3600.0
    cache_dir: str | None = None

    # -- the one place a process is started ---------------------------------------------------
    def run(self, repo: Repo, args: Sequence[str], *, from_repo: Repo | None = None, timeout_s: float | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "-r", repo.location, "--no-cache" if self.cache_dir is None else "--cache-dir",
               *([] if self.cache_dir is None else [self.cache_dir])]
        with _secret_fds([repo.password] + ([from_repo.password] if from_repo else [])) as fds:
            cmd += ["--password-file", f"/dev/fd/{fds[0]}"]
            ssh = [c for c in (repo.ssh_command(), from_repo.ssh_command() if from_repo else None) if c]
            if len(ssh) > 1:  # restic takes one sftp.command for both repositories
                raise BackupError(f"cannot copy between two sftp: repositories (to {repo.location}) in one run; "
                                  "run the copy on a host where one of them is local")
            if ssh:
                cmd += ["-o", f"sftp.command={ssh[0]}"]
            if from_repo is not None:
                cmd += ["--from-repo", from_repo.location, "--from-password-file", f"/dev/fd/{fds[1]}"]
            cmd += list(args)
            env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
            limit = self.timeout_s if timeout_s is None else timeout_s
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=limit, pass_fds=fds,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise RepoTimeout(f"restic {args[0]} on repository {repo.location} did not finish in {limit:.0f} s "
                                  "and was stopped; the repository may be unreachable or very slow") from None
            except FileNotFoundError:
                raise BackupError(f"the restic program ({self.binary}) is not installed; run scripts/setup") from None
        if check and proc.returncode != 0:
            err = classify(proc.stderr, repo.location, proc.returncode)
            if err is None and from_repo is not None:
                err = classify(proc.stderr, from_repo.location, proc.returncode)
            if err is not None:
                raise err
            raise RepoError(f"restic {args[0]} on {repo.location} failed (exit {proc.returncode}): "
                            f"{_last_line(proc.stderr)}")
        return proc

    def _json(self, repo: Repo, args: Sequence[str], timeout_s: float | None = None) -> Any:
        proc = self.run(repo, [*args, "--json"], timeout_s=timeout_s)
        try:
            return json.loads(proc.stdout or "null")
        except ValueError as exc:
            raise RepoError(f"restic {args[0]} on {repo.location} printed something that is not JSON") from exc

    # -- operations ---------------------------------------------------------------------------
    def init(self, repo: Repo) -> None:
        self.run(repo, ["init"])

    def snapshots(self, repo: Repo, timeout_s: float | None = 300) -> list[Snapshot]:
        return parse_snapshots(self._json(repo, ["snapshots", "--no-lock"], timeout_s))

    def backup(self, repo: Repo, paths: Sequence[str], *, host: str, tags: Sequence[str] = (),
               at: float | None = None) -> BackupSummary:
        args = ["backup", "--json", "--host", host, *(a for t in tags for a in ("--tag", t))]
        if at is not None:  # an explicit snapshot time (imports, the demo's late agency)
            args += ["--time", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))]
        proc = self.run(repo, [*args, "--", *paths], check=False)
        if proc.returncode not in (0, 3):  # 3: snapshot saved but some files could not be read
            err = classify(proc.stderr, repo.location, proc.returncode)
            raise err or BackupError(f"restic backup to {repo.location} failed (exit {proc.returncode}): "
                                     f"{_last_line(proc.stderr)}")
        return parse_backup_output(proc.stdout, proc.stderr)

    def forget(self, repo: Repo, keep: dict[str, int], *, host: str, prune: bool = True) -> str:
        args = ["forget", "--host", host, *(a for k, n in sorted(keep.items()) for a in (f"--keep-{k}", str(n)))]
        return self.run(repo, [*args, *(["--prune"] if prune else [])]).stdout

    def copy(self, src: Repo, dst: Repo) -> int:
        """Copy every snapshot of ``src`` that ``dst`` lacks; the number copied."""
        proc = self.run(dst, ["copy"], from_repo=src)
        return len(re.findall(r"^snapshot \w+ saved", proc.stdout, re.M))

    def check(self, repo: Repo, subset: str | None = None) -> CheckResult:
        """Structure check, plus the pack data of ``subset`` ("n/t") when given. Corruption is a result."""
        t0 = time.monotonic()
        proc = self.run(repo, ["check", *([f"--read-data-subset={subset}"] if subset else [])], check=False)
        if proc.returncode != 0 and "contains errors" not in proc.stderr + proc.stdout:
            err = classify(proc.stderr, repo.location, proc.returncode)
            if err is not None:
                raise err
        return parse_check(proc.stdout, proc.stderr, proc.returncode == 0, subset, time.monotonic() - t0)

    def ls(self, repo: Repo, snapshot: str) -> list[Node]:
        proc = self.run(repo, ["ls", "--no-lock", "--json", snapshot])
        nodes = []
        for line in proc.stdout.splitlines():
            with contextlib.suppress(ValueError):
                n = json.loads(line)
                if n.get("struct_type") == "node":
                    nodes.append(Node(n["path"], n["type"], int(n.get("size", 0))))
        return nodes

    def restore(self, repo: Repo, snapshot: str, target: Path, include: Sequence[str]) -> float:
        """Restore ``include`` of ``snapshot`` under ``target`` with restic's own content verification; seconds."""
        t0 = time.monotonic()
        self.run(repo, ["restore", "--no-lock", snapshot, "--target", str(target), "--verify",
                        *(a for p in include for a in ("--include", p))])
        return time.monotonic() - t0

    def stats(self, repo: Repo, snapshot: str) -> tuple[int, int]:
        """(bytes, files) the snapshot restores to."""
        data = self._json(repo, ["stats", "--no-lock", "--mode", "restore-size", snapshot])
        return int(data.get("total_size", 0)), int(data.get("total_file_count", 0))


@contextlib.contextmanager
def _secret_fds(secrets: list[str]) -> Iterator[list[int]]:
    """Pipes whose read ends hold the secrets, for restic's ``--password-file /dev/fd/N``."""
    fds: list[int] = []
    try:
        for s in secrets:
            r, w = os.pipe()
            fds.append(r)
            os.write(w, s.encode() + b"\n")
            os.close(w)
        yield fds
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

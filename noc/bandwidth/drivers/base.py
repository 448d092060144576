"""The one contract every router driver keeps, the SSH session it runs over, and netmiko at the boundary.

A driver is opened, reads the router's facts, its pantau-owned queues (the *actual* shaping
config) and their counters, takes a *candidate* (the desired config), compares, commits and can
roll back to what the router held before the commit. ``dry_run`` makes ``commit`` return the
vendor commands without sending them. Vendor syntax lives in each driver's templates; this module
holds the flow, so all vendors commit, verify and report the same way.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import CommitError, DeviceAuthError, DeviceError, DeviceUnreachable
from noc.bandwidth.shaping import EMPTY, Drift, ShapingConfig, diff
from noc.model import Device

log = logging.getLogger("pantau.bandwidth")


class Session(Protocol):
    """What a driver needs from an SSH session to a router."""

    def command(self, cmd: str, timeout: float = 30.0) -> str: ...

    def config(self, lines: list[str], mode_command: str | None = None) -> str: ...

    def exec(self, cmd: str, stdin: bytes | None = None, timeout: float = 60.0) -> tuple[int, str]:
        """Run ``cmd`` on its own SSH exec channel (no shell prompt): (exit status, stdout+stderr)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Facts:
    hostname: str
    vendor: str
    os_version: str
    interfaces: tuple[str, ...]


@dataclass(frozen=True)
class QueueCounters:
    agency: str
    down_bytes: int
    up_bytes: int
    down_dropped: int
    up_dropped: int


@dataclass(frozen=True)
class CommitResult:
    device: str
    changed: bool
    diff: list[Drift]
    commands: list[str]
    dry_run: bool
    verified: bool = False
    remaining: list[Drift] = field(default_factory=list)


class RouterDriver(ABC):
    """The contract. Subclasses give vendor parsing and rendering; the flow is shared."""

    vendor = ""

    def __init__(self, device: Device, connect: Callable[[], Session], dry_run: bool = False) -> None:
        if device.shaping is None:
            raise DeviceError(f"{device.id} has no [devices.shaping] section; pantau does not shape on it")
        self.device = device
        self.shaping = device.shaping
        self._connect = connect
        self.dry_run = dry_run
        self.session: Session | None = None
        self.candidate: ShapingConfig | None = None
        self.previous: ShapingConfig | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        if self.session is None:
            self.session = self._connect()

    def close(self) -> None:
        if self.session is not None:
            try:
                self.session.close()
            finally:
                self.session = None

    def __enter__(self) -> RouterDriver:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def s(self) -> Session:
        if self.session is None:
            raise DeviceError(f"{self.device.id}: the driver is not open")
        return self.session

    # -- vendor parts ------------------------------------------------------------------------------
    @abstractmethod
    def facts(self) -> Facts: ...

    @abstractmethod
    def read(self) -> ShapingConfig:
        """The pantau-owned queues the router holds now (the actual state)."""

    @abstractmethod
    def counters(self) -> dict[str, QueueCounters]: ...

    @abstractmethod
    def render(self, desired: ShapingConfig, actual: ShapingConfig) -> list[str]:
        """Vendor commands that take the router from ``actual`` to ``desired`` (pure)."""

    def render_restore(self, previous: ShapingConfig) -> list[str]:
        """Commands that rebuild ``previous`` from whatever state a failed change left."""
        return self.render(previous, EMPTY)

    @abstractmethod
    def push(self, commands: list[str], restore: list[str]) -> None:
        """Send ``commands`` so the router either takes them all or keeps its previous config.

        ``restore`` rebuilds the previous config; a driver runs it where the vendor has no
        transaction of its own. Raises :class:`CommitError` saying whether the old config is kept.
        """

    # -- the shared flow -----------------------------------------------------------------------
    def load_candidate(self, desired: ShapingConfig) -> None:
        self.candidate = desired

    def compare(self) -> list[Drift]:
        if self.candidate is None:
            raise DeviceError(f"{self.device.id}: no candidate loaded; call load_candidate first")
        return diff(self.candidate, self.read())

    def commit(self) -> CommitResult:
        """Push the candidate if the router differs, then read it back; dry-run only renders."""
        if self.candidate is None:
            raise DeviceError(f"{self.device.id}: no candidate loaded; call load_candidate first")
        actual = self.read()
        drift = diff(self.candidate, actual)
        if not drift:
            return CommitResult(self.device.id, False, [], [], self.dry_run, verified=True)
        commands = self.render(self.candidate, actual)
        if self.dry_run:
            return CommitResult(self.device.id, False, drift, commands, True)
        self.previous = actual
        try:
            self.push(commands, self.render_restore(actual))
        except DeviceError as exc:
            if isinstance(exc, CommitError) and exc.kept_previous:
                raise
            self._after_lost_session(exc, actual)  # raises unless the change did complete
        remaining = diff(self.candidate, self.read())
        if remaining:
            log.error("%s: read back after the push still differs from the division: %s", self.device.id,
                      "; ".join(map(str, remaining)))
        return CommitResult(self.device.id, True, drift, commands, False, not remaining, remaining)

    def _after_lost_session(self, exc: DeviceError, previous: ShapingConfig) -> None:
        """The push failed without knowing the outcome: look over a fresh session and say which it is."""
        try:
            self.close()
            self.open()
            now = self.read()
        except DeviceError as again:
            raise CommitError(f"{self.device.id}: the push failed ({exc}) and the router cannot be read back "
                              f"({again}); its state is unknown: run `pantau bw plan` when it answers",
                              kept_previous=False) from exc
        if now == previous:
            raise CommitError(f"{self.device.id}: the push failed ({exc}); checked over a new session: the router "
                              "keeps its previous configuration", kept_previous=True) from exc
        if now == self.candidate:
            log.warning("%s: the session was lost during the push, but a new session shows the change complete",
                        self.device.id)
            return
        raise CommitError(f"{self.device.id}: the push failed ({exc}) and the router now holds neither the old nor "
                          "the new queues: run `pantau bw apply` to finish it", kept_previous=False) from exc

    def rollback(self) -> CommitResult:
        """Return the router to what it held before the last commit."""
        if self.previous is None:
            raise DeviceError(f"{self.device.id}: nothing to roll back (no commit in this session)")
        self.load_candidate(self.previous)
        self.previous = None
        return self.commit()


def netmiko_session(device: Device, device_type: str, password: str | None, timeout: float = 15.0,
                    **extra: Any) -> Session:
    """Open an SSH session with netmiko, its errors translated into pantau's."""
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

    assert device.ssh is not None
    params: dict[str, Any] = {
        "device_type": device_type, "host": device.address, "port": device.ssh.port,
        # connecting is bounded by ``timeout``; a device that answered gets longer for the banner and
        # the login (a busy router, or a busy NOC, is slow there, not gone)
        "username": device.ssh.username, "conn_timeout": timeout, "auth_timeout": 2 * timeout,
        "banner_timeout": 2 * timeout, "fast_cli": False, **extra,
    }
    if password:
        params["password"] = password
    if device.ssh.key_file:
        params.update(use_keys=True, key_file=device.ssh.key_file, allow_agent=False)
    try:
        conn = ConnectHandler(**params)
    except NetmikoAuthenticationException as exc:
        if "timeout" in str(exc).lower():  # paramiko's "Authentication timeout.": slow, not refused
            raise DeviceUnreachable(f"{device.id} ({device.address}:{device.ssh.port}) did not finish the SSH "
                                    f"login within {2 * timeout:.0f} s: the router (or this NOC host) is "
                                    "overloaded, or its sshd is stuck") from exc
        raise DeviceAuthError(f"{device.id} ({device.address}:{device.ssh.port}) refused SSH login as "
                              f"{device.ssh.username!r}: check ssh.password/key_file in the inventory") from exc
    except (NetmikoTimeoutException, OSError) as exc:
        raise DeviceUnreachable(f"{device.id} ({device.address}:{device.ssh.port}) did not answer over SSH: "
                                f"{exc}".splitlines()[0]) from exc
    except Exception as exc:
        raise DeviceError(f"{device.id}: SSH session failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return _NetmikoSession(device, conn)


class _NetmikoSession:
    def __init__(self, device: Device, conn: Any) -> None:
        self.device = device
        self.conn = conn

    def _guard(self, what: str, fn: Callable[[], str]) -> str:
        try:
            return fn()
        except (OSError, EOFError) as exc:
            raise DeviceUnreachable(f"{self.device.id}: the SSH session was lost during {what}: {exc}") from exc
        except Exception as exc:
            raise DeviceUnreachable(f"{self.device.id}: the SSH session failed during {what}: "
                                    f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc

    def command(self, cmd: str, timeout: float = 30.0) -> str:
        # long lines wrap in the terminal's echo, so the echo is not matched: callers mark their output
        return self._guard(f"'{cmd[:60]}'", lambda: str(self.conn.send_command(
            cmd, read_timeout=timeout, strip_prompt=True, strip_command=True, cmd_verify=False)))

    def exec(self, cmd: str, stdin: bytes | None = None, timeout: float = 60.0) -> tuple[int, str]:
        def run() -> tuple[int, str]:
            chan = self.conn.remote_conn.get_transport().open_session(timeout=timeout)
            try:
                chan.settimeout(timeout)
                chan.set_combine_stderr(True)
                chan.exec_command(cmd)
                if stdin:
                    chan.sendall(stdin)
                chan.shutdown_write()
                chunks = []
                while data := chan.recv(65536):
                    chunks.append(data)
                return int(chan.recv_exit_status()), b"".join(chunks).decode(errors="replace")
            finally:
                chan.close()

        try:
            return run()
        except (OSError, EOFError) as exc:
            raise DeviceUnreachable(f"{self.device.id}: the SSH session was lost during '{cmd[:60]}': "
                                    f"{exc or type(exc).__name__}") from exc
        except Exception as exc:
            raise DeviceUnreachable(f"{self.device.id}: the SSH session failed during '{cmd[:60]}': "
                                    f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc

    def config(self, lines: list[str], mode_command: str | None = None) -> str:
        kw: dict[str, Any] = {"config_mode_command": mode_command} if mode_command else {}
        return self._guard("configuration", lambda: str(self.conn.send_config_set(lines, read_timeout=60, **kw)))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead session must not raise
            self.conn.disconnect()


def fail(device: Device, what: str, output: str, kept_previous: bool) -> CommitError:
    """A CommitError with the router's own words and what the operator should do."""
    tail = " ".join(output.strip().splitlines()[-3:])[:300]
    state = ("the router keeps its previous configuration" if kept_previous
             else "the router may hold part of the change: run `pantau bw plan` to see it")
    return CommitError(f"{device.id}: {what}; {state}. Router said: {tail or '(nothing)'}", kept_previous)

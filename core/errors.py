"""The one exception tree of pantau.

Every error pantau raises derives from :class:`PantauError`. Errors from libraries
(sqlite3, aiohttp, influxdb-client, psutil, netmiko, restic…) are translated at the boundary
with ``raise … from exc``. Only the CLI turns these into exit codes. Messages are written for
the operator: what happened, to which agency or device, and what to do next.
"""

from __future__ import annotations


class PantauError(Exception):
    """Root of every error pantau raises on purpose."""

    exit_code = 1


class _Problems(PantauError):
    """An error with a list of problems, printed one per line under the message."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        text = message
        if self.problems:
            text += "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


class ConfigError(_Problems):
    """The inventory, secrets or a command-line setting is wrong."""

    exit_code = 2


class SecretError(ConfigError):
    """A referenced secret (env var or secrets file entry) is missing."""


class StateError(PantauError):
    """The NOC state database is unusable (locked, corrupt, newer schema…)."""

    exit_code = 3


class NotFoundError(PantauError):
    """An agency, device or agent named by the operator does not exist."""

    exit_code = 4


class AuthError(PantauError):
    """A credential was missing, wrong or revoked."""

    exit_code = 5


class ReportError(PantauError):
    """A report from an agent was refused (schema, identity, size)."""

    exit_code = 6


class TransportError(PantauError):
    """A peer (collector, TSDB, device) could not be reached or answered badly."""

    exit_code = 7


class StoreError(TransportError):
    """The time-series store refused or could not take a write."""


class DeviceError(TransportError):
    """A router, switch or SNMP agent did not do what was asked."""


class DeviceUnreachable(DeviceError):
    """No answer from a device (down, unreachable, filtered, or an SNMPv2c community it ignores)."""


class DeviceAuthError(DeviceError):
    """A device refused our credentials (SNMPv3 keys, SSH password/key)."""


class AllocationError(_Problems):
    """A bandwidth change would break an invariant of the uplink's division; nothing was changed."""

    exit_code = 8


class CommitError(DeviceError):
    """A router did not take a configuration change; ``kept_previous`` says whether it still runs the old one."""

    def __init__(self, message: str, kept_previous: bool) -> None:
        self.kept_previous = kept_previous
        super().__init__(message)


class BackupError(PantauError):
    """A backup, copy, check or restore did not do what was asked."""

    exit_code = 9


class RepoError(BackupError):
    """A restic repository could not be read: the verdict is *unknown*, never OK.

    ``reason`` is one word for the operator's tables: unreachable, auth, missing, locked, timeout, failed.
    """

    reason = "failed"


class RepoUnreachable(RepoError):
    """The repository's host or storage did not answer (SSH/sftp down, path not mounted)."""

    reason = "unreachable"


class RepoAuthError(RepoError):
    """The repository refused the password (wrong password or no key)."""

    reason = "auth"


class RepoMissing(RepoError):
    """No repository at the location (never initialised, wrong path, deleted)."""

    reason = "missing"


class RepoLocked(RepoError):
    """Another restic process holds a lock on the repository."""

    reason = "locked"


class RepoTimeout(RepoUnreachable):
    """restic did not finish in time and was stopped."""

    reason = "timeout"


class BackupFailed(BackupError):
    """A backup ran but did not produce a usable snapshot (missing source path, empty snapshot…)."""

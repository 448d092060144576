"""Typed domain model of a city's network: frozen dataclasses, no I/O.

The inventory loader builds these; the state store, collectors and later the bandwidth and
backup modules consume them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from backup.policy import BackupPolicy
from core.secrets import SecretRef

__all__ = ["BackupPolicy", "SecretRef"]  # re-exported: the domain model in one place


class DeviceKind(Enum):
    SERVER = "server"
    ROUTER = "router"
    SWITCH = "switch"


class Vendor(Enum):
    LINUX = "linux"
    MIKROTIK = "mikrotik"
    CISCO_IOS = "cisco_ios"


@dataclass(frozen=True)
class Uplink:
    id: str
    down_bps: int
    up_bps: int
    name: str = ""


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    admin_email: str = ""
    prefixes: tuple[str, ...] = ()  # the agency's address space, as routers classify its traffic


@dataclass(frozen=True)
class SnmpAccess:
    version: str  # "2c" | "3"
    port: int = 161
    community: SecretRef | None = None
    user: str = ""
    auth_key: SecretRef | None = None
    priv_key: SecretRef | None = None
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"
    interval_s: float = 60.0
    timeout_s: float = 2.0
    retries: int = 1


@dataclass(frozen=True)
class SshAccess:
    username: str
    port: int = 22
    password: SecretRef | None = None
    key_file: str = ""


@dataclass(frozen=True)
class InterfaceMapping:
    """An interface of a router or switch that carries one agency's traffic."""

    name: str
    agency: str


class ShapingMode(Enum):
    ENFORCE = "enforce"  # the reconciler repairs drift
    OBSERVE = "observe"  # the reconciler only reports drift


@dataclass(frozen=True)
class Shaping:
    """Where a router enforces an uplink's division: its agency-facing (LAN) and uplink-facing (WAN) ports."""

    uplink: str
    lan: str
    wan: str = ""
    mode: ShapingMode = ShapingMode.ENFORCE


@dataclass(frozen=True)
class Device:
    id: str
    kind: DeviceKind
    address: str
    agency: str | None = None  # owner; None for the Dinas's own core devices
    agent: bool = False
    vendor: Vendor | None = None
    site: str = ""
    snmp: SnmpAccess | None = None
    ssh: SshAccess | None = None
    interfaces: tuple[InterfaceMapping, ...] = ()
    count_interfaces: tuple[str, ...] | None = None  # server interfaces counted for the agency
    shaping: Shaping | None = None
    via: str | None = None  # the upstream device (router, uplink) this one is reached through

    @property
    def download_is_rx(self) -> bool:
        """Which counter is an agency's download on this device's counted interfaces.

        A server is the agency's own host: what it receives is the agency's download. A router or
        switch port mapped to an agency faces that agency: what the port *sends* is its download.
        """
        return self.kind is DeviceKind.SERVER

    def agency_of_interface(self, iface: str) -> str | None:
        """Which agency an interface's traffic belongs to, or None if it counts for nobody."""
        for m in self.interfaces:
            if m.name == iface:
                return m.agency
        if self.kind is DeviceKind.SERVER and self.agency:
            if self.count_interfaces is None:
                return None if iface == "lo" else self.agency
            return self.agency if iface in self.count_interfaces else None
        return None


@dataclass(frozen=True)
class Allocation:
    """An agency's share of an uplink (HTB semantics: guaranteed rate, borrow up to ceiling)."""

    agency: str
    uplink: str
    guaranteed_down: int
    ceiling_down: int
    guaranteed_up: int
    ceiling_up: int
    floor_down: int = 0  # the guaranteed rate may never be set below the floor
    floor_up: int = 0


@dataclass(frozen=True)
class NotifyChannel:
    """Where incident notifications go: a JSON webhook, a Telegram chat, or e-mail over SMTP.

    ``agencies`` limits the channel to those agencies' incidents ("*" = every incident, the NOC's
    own channel); ``to_agency_admin`` sends e-mail to the incident's agency's ``admin_email``."""

    id: str
    kind: str  # "webhook" | "telegram" | "email"
    agencies: tuple[str, ...] = ("*",)
    url: str = ""  # webhook
    bot_token: SecretRef | None = None  # telegram
    chat_id: str = ""
    api_url: str = "https://api.telegram.org"
    smtp_host: str = ""  # email
    smtp_port: int = 587
    starttls: bool = True
    username: str = ""
    password: SecretRef | None = None
    sender: str = ""
    to: tuple[str, ...] = ()
    to_agency_admin: bool = False

    def covers(self, agency: str | None) -> bool:
        return "*" in self.agencies or (agency is not None and agency in self.agencies)


@dataclass(frozen=True)
class Inventory:
    city: str
    uplinks: tuple[Uplink, ...]
    agencies: tuple[Agency, ...]
    devices: tuple[Device, ...]
    allocations: tuple[Allocation, ...] = ()
    backup_policies: tuple[BackupPolicy, ...] = ()
    secrets_file: str | None = None
    notify: tuple[NotifyChannel, ...] = ()
    source: str = ""

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def agency(self, agency_id: str) -> Agency | None:
        return next((a for a in self.agencies if a.id == agency_id), None)

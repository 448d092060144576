"""Router drivers behind one contract, chosen by the device's vendor: data, not if-branches."""

from __future__ import annotations

from noc.bandwidth.drivers.base import RouterDriver, Session, netmiko_session
from noc.bandwidth.drivers.cisco import CiscoIosDriver
from noc.bandwidth.drivers.linux import LinuxTcDriver
from noc.bandwidth.drivers.mikrotik import MikrotikDriver
from noc.inventory import Secrets
from noc.model import Device, Vendor

# vendor -> (driver class, netmiko device_type)
DRIVERS: dict[Vendor, tuple[type[RouterDriver], str]] = {
    Vendor.LINUX: (LinuxTcDriver, "linux"),
    Vendor.MIKROTIK: (MikrotikDriver, "mikrotik_routeros"),
    Vendor.CISCO_IOS: (CiscoIosDriver, "cisco_ios"),
}


def driver_for(device: Device, secrets: Secrets, dry_run: bool = False, timeout: float = 15.0) -> RouterDriver:
    """A driver for ``device`` that opens its SSH session on first use (credentials resolved then)."""
    assert device.vendor is not None and device.ssh is not None
    cls, device_type = DRIVERS[device.vendor]

    def connect() -> Session:
        assert device.ssh is not None
        pw = secrets.resolve(device.ssh.password, f"SSH to {device.id}") if device.ssh.password else None
        return netmiko_session(device, device_type, pw, timeout)

    return cls(device, connect, dry_run=dry_run)


__all__ = ["DRIVERS", "RouterDriver", "driver_for"]

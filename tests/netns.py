"""Test hosts in network namespaces: a veth pair from this host into a namespace the test owns.

Addresses come from 10.99.0.0/16 and traffic never leaves the pair. Needs root; tests that use it
skip with the reason where it is not available.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def require_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (run scripts/test as root)")


@dataclass(frozen=True)
class NetNs:
    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    def cmd(self, *args: str) -> list[str]:
        """A command line that runs ``args`` inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]


@contextmanager
def netns(subnet: int, mtu: int = 1500) -> Iterator[NetNs]:
    """Namespace with 10.99.SUBNET.2/30 inside, 10.99.SUBNET.1/30 on this host's end of the pair."""
    require_netns()
    tag = secrets.token_hex(3)
    n = NetNs(f"pt-{tag}", f"pth{tag}", f"ptn{tag}", f"10.99.{subnet}.1", f"10.99.{subnet}.2")
    _ip("netns", "add", n.name)
    try:
        _ip("link", "add", n.host_if, "mtu", str(mtu), "type", "veth", "peer", "name", n.ns_if, "mtu", str(mtu))
        _ip("link", "set", n.ns_if, "netns", n.name)
        _ip("addr", "add", f"{n.host_ip}/30", "dev", n.host_if)
        _ip("link", "set", n.host_if, "up")
        _ip("-n", n.name, "addr", "add", f"{n.ns_ip}/30", "dev", n.ns_if)
        _ip("-n", n.name, "link", "set", n.ns_if, "up")
        _ip("-n", n.name, "link", "set", "lo", "up")
        yield n
    finally:
        pids = subprocess.run(["ip", "netns", "pids", n.name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "link", "del", n.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", n.name], capture_output=True)

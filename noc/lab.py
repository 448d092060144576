"""A Linux router in network namespaces: the NOC (this host) ↔ router (sshd + tc) ↔ ISP and agency LAN.

Used by the demo (a real shaping router for the demo city), the tests and the benchmarks.

    this host 10.99.S.1 ──mgmt── 10.99.S.2 router ──wan── 10.99.S+1.1 "isp" (iperf3 servers)
                                     │ lan 10.99.S+2.254/24
                                 10.99.S+2.0/24 "lan": agency A at .10 (prefix .0/26), B at .70 (.64/26)

All addresses are inside namespaces the lab creates; everything is removed on exit. Needs root
(:class:`core.errors.PantauError` otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import PantauError

log = logging.getLogger("pantau.lab")


def can_build_labs() -> str | None:
    """None when this host can build namespace labs, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [t for t in ("ip", "tc", "iperf3", "ssh-keygen", "unshare") if not shutil.which(t)]
    if missing or not Path("/usr/sbin/sshd").exists():
        return f"missing tools: {', '.join(missing or ['/usr/sbin/sshd'])} (scripts/setup installs them)"
    return None


def sh(*args: str, check: bool = True, timeout: float = 30) -> str:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout).stdout


@dataclass
class RouterLab:
    tag: str
    subnet: int
    tmp: Path
    key_file: Path
    rtr: str  # namespace names
    isp: str
    lan: str
    lan_if: str  # the router's agency-facing interface
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def mgmt_ip(self) -> str:
        return f"10.99.{self.subnet}.2"

    @property
    def host_ip(self) -> str:
        """This host's end of the management link (where a NOC listens for agents behind the router)."""
        return f"10.99.{self.subnet}.1"

    def route_lan_via_router(self) -> None:
        """Let agency hosts reach this host through the router (removed with the lab's link)."""
        _ip("route", "replace", f"10.99.{self.subnet + 2}.0/24", "via", self.mgmt_ip, "dev", f"pm{self.tag}")

    @property
    def isp_ip(self) -> str:
        return f"10.99.{self.subnet + 1}.1"

    def agency_ip(self, which: str) -> str:
        return f"10.99.{self.subnet + 2}.{10 if which == 'a' else 70}"

    def agency_prefix(self, which: str) -> str:
        return f"10.99.{self.subnet + 2}.{0 if which == 'a' else 64}/26"

    def in_ns(self, ns: str, *args: str, check: bool = True, timeout: float = 30) -> str:
        return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)

    def tc(self, *args: str) -> str:
        return self.in_ns(self.rtr, "tc", *args)

    def start_sshd(self) -> None:
        conf = self.tmp / "sshd_config"
        # its own mount namespace with a private /run/pantau, as a separate machine would have
        Path("/run/pantau").mkdir(mode=0o700, exist_ok=True)
        self.sshd = subprocess.Popen(["ip", "netns", "exec", self.rtr, "unshare", "-m", "sh", "-c",
                                      "mount -t tmpfs -o mode=700 pantau /run/pantau && "
                                      f"exec /usr/sbin/sshd -D -e -f {conf}"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.tmp / "sshd.log", "ab"))  # noqa: SIM115
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if f"{self.mgmt_ip}:22" in sh("ip", "netns", "exec", self.rtr, "ss", "-ltn"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd in {self.rtr} did not listen: {(self.tmp / 'sshd.log').read_text()}")

    def cut_sessions(self) -> None:
        """Kill every established SSH session on the router (the listener stays)."""
        for pid in sh("ip", "netns", "pids", self.rtr).split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmdline.startswith("sshd:") and "listener" not in cmdline:
                subprocess.run(["kill", "-9", pid], capture_output=True)

    def iperf(self, which: str, reverse: bool, seconds: float = 3.0) -> float:
        """Mbit/s that agency ``which`` gets: download with ``reverse`` (ISP → agency), else upload."""
        port = 5201 if which == "a" else 5202
        args = ["iperf3", "-c", self.isp_ip, "-p", str(port), "-B", self.agency_ip(which), "-t", str(seconds),
                "-O", "1", "-J"] + (["-R"] if reverse else [])
        out = json.loads(self.in_ns(self.lan, *args, timeout=seconds + 20))
        return float(out["end"]["sum_received"]["bits_per_second"]) / 1e6

    def iperf_both(self, reverse: bool, seconds: float = 3.0) -> tuple[float, float]:
        """Both agencies at once (they compete for the uplink): (A, B) Mbit/s."""
        procs = []
        for which in ("a", "b"):
            port = 5201 if which == "a" else 5202
            args = ["ip", "netns", "exec", self.lan, "iperf3", "-c", self.isp_ip, "-p", str(port), "-B",
                    self.agency_ip(which), "-t", str(seconds), "-O", "1", "-J"] + (["-R"] if reverse else [])
            procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
        rates = []
        for p in procs:
            out, _ = p.communicate(timeout=seconds + 20)
            rates.append(float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e6)
        return rates[0], rates[1]


def _ip(*args: str) -> None:
    sh("ip", *args)


def _remove(tag: str) -> None:
    """Take down one lab's namespaces (and every process in them) and its management link."""
    for ns in (f"pr-{tag}", f"pi-{tag}", f"pl-{tag}"):
        for pid in sh("ip", "netns", "pids", ns, check=False).split():
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "link", "del", f"pm{tag}"], capture_output=True)


def remove_stale_labs(subnet: int) -> list[str]:
    """Remove labs still holding ``subnet`` (10.99.<subnet>.0/30), left by a run that was killed
    before it could clean up. Two labs on one subnet cannot both work: the older one would answer
    for the new one's router (its sshd refuses the new key), so it goes. Returns their tags."""
    out = sh("ip", "-o", "-4", "addr", "show", check=False)
    stale = sorted(set(re.findall(rf"^\d+:\s+pm([0-9a-f]{{6}})\S*\s+inet 10\.99\.{subnet}\.1/30", out, re.M)))
    for tag in stale:
        log.warning("removing router lab %s on 10.99.%d.0/30, left by an earlier run that did not stop "
                    "cleanly", tag, subnet)
        _remove(tag)
    return stale


@contextmanager
def router_lab(tmp: Path, subnet: int) -> Iterator[RouterLab]:
    """The three namespaces, the router's sshd (root login by key) and two iperf3 servers at the ISP."""
    reason = can_build_labs()
    if reason:
        raise PantauError(f"cannot build the router lab: {reason}")
    remove_stale_labs(subnet)
    tag = secrets.token_hex(3)
    lab = RouterLab(tag, subnet, tmp, tmp / "id_ed25519", f"pr-{tag}", f"pi-{tag}", f"pl-{tag}", "lan0")
    s = subnet
    iperfs: list[subprocess.Popen[bytes]] = []
    for ns in (lab.rtr, lab.isp, lab.lan):
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
    try:
        # management: this host <-> router
        _ip("link", "add", f"pm{tag}", "type", "veth", "peer", "name", "mgmt0", "netns", lab.rtr)
        _ip("addr", "add", f"10.99.{s}.1/30", "dev", f"pm{tag}")
        _ip("link", "set", f"pm{tag}", "up")
        _ip("-n", lab.rtr, "addr", "add", f"10.99.{s}.2/30", "dev", "mgmt0")
        _ip("-n", lab.rtr, "link", "set", "mgmt0", "up")
        # wan: router <-> isp
        _ip("-n", lab.rtr, "link", "add", "wan0", "type", "veth", "peer", "name", "up0", "netns", lab.isp)
        _ip("-n", lab.rtr, "addr", "add", f"10.99.{s + 1}.2/30", "dev", "wan0")
        _ip("-n", lab.isp, "addr", "add", f"10.99.{s + 1}.1/30", "dev", "up0")
        # lan: router <-> agencies
        _ip("-n", lab.rtr, "link", "add", lab.lan_if, "type", "veth", "peer", "name", "eth0", "netns", lab.lan)
        _ip("-n", lab.rtr, "addr", "add", f"10.99.{s + 2}.254/24", "dev", lab.lan_if)
        _ip("-n", lab.lan, "addr", "add", f"10.99.{s + 2}.10/24", "dev", "eth0")
        _ip("-n", lab.lan, "addr", "add", f"10.99.{s + 2}.70/24", "dev", "eth0")
        for ns, dev in ((lab.rtr, "wan0"), (lab.rtr, lab.lan_if), (lab.isp, "up0"), (lab.lan, "eth0")):
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", lab.isp, "route", "add", f"10.99.{s + 2}.0/24", "via", f"10.99.{s + 1}.2")
        _ip("-n", lab.lan, "route", "add", "default", "via", f"10.99.{s + 2}.254")
        sh("ip", "netns", "exec", lab.rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # sshd on the router, root by key only
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(lab.key_file))
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "host_key"))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        (tmp / "authorized_keys").write_text(Path(f"{lab.key_file}.pub").read_text())
        (tmp / "sshd_config").write_text(textwrap.dedent(f"""\
            ListenAddress {lab.mgmt_ip}
            Port 22
            HostKey {tmp}/host_key
            PidFile {tmp}/sshd.pid
            AuthorizedKeysFile {tmp}/authorized_keys
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            MaxStartups 50
            """))
        lab.start_sshd()
        for port in (5201, 5202):
            iperfs.append(subprocess.Popen(["ip", "netns", "exec", lab.isp, "iperf3", "-s", "-p", str(port),
                                            "-B", lab.isp_ip], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(re.findall(r":520[12]\b", lab.in_ns(lab.isp, "ss", "-ltn"))) < 2:
            time.sleep(0.05)
        yield lab
    finally:
        for p in iperfs + ([lab.sshd] if lab.sshd else []):
            p.kill()
            p.wait(timeout=10)
        _remove(tag)

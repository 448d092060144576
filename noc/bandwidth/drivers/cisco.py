"""Cisco IOS driver: hierarchical MQC — a parent shaper at the uplink capacity, a class per agency.

Download is shaped on the agency-facing port's output (``PANTAU-DOWN`` on ``lan``), upload on the
uplink-facing port's output (``PANTAU-UP`` on ``wan``): IOS shapes only outbound. Each agency has
an extended ACL on its prefixes, a class-map, and in the child policy ``bandwidth`` (kbit/s,
guaranteed) and ``shape average`` (bit/s, ceiling). Every object pantau owns starts ``PANTAU-``.

A change runs under ``configure terminal revert timer`` (Configuration Rollback Confirmed Change,
which needs ``archive`` with a ``path``): if the session is lost before ``configure confirm``,
IOS rolls back to the archived configuration by itself; a refused line triggers
``configure revert now``.
"""

from __future__ import annotations

import ipaddress
import re

from noc.bandwidth.drivers.base import Facts, QueueCounters, RouterDriver, fail
from noc.bandwidth.shaping import EMPTY, AgencyQueue, ShapingConfig
from noc.bandwidth.shaping import diff as shaping_diff

REVERT_MINUTES = 5
ERROR_RE = re.compile(r"^% ?(Invalid|Incomplete|Ambiguous|Unknown|Bandwidth|Shape|Error).*$", re.M | re.I)

# -- templates (IOS 15 MQC: class-map, policy-map, shape average, bandwidth, service-policy) -----------
T_ACL = ["ip access-list extended PANTAU-{A}-{D}"]
T_ACE = {"DOWN": " permit ip any {net} {wild}", "UP": " permit ip {net} {wild} any"}
T_CLASSMAP = ["class-map match-any PANTAU-{A}-{D}", " match access-group name PANTAU-{A}-{D}"]
T_CHILD = ["policy-map PANTAU-{D}-AGENCIES", " class PANTAU-{A}-{D}", "  bandwidth {g_kbps}", "  shape average {c}"]
T_PARENT = ["policy-map PANTAU-{D}", " class class-default", "  shape average {cap}",
            "  service-policy PANTAU-{D}-AGENCIES"]
T_ATTACH = ["interface {iface}", " service-policy output PANTAU-{D}"]
T_REMOVE = ["policy-map PANTAU-{D}-AGENCIES", " no class PANTAU-{A}-{D}", "no class-map match-any PANTAU-{A}-{D}",
            "no ip access-list extended PANTAU-{A}-{D}"]


_SPEC = r"(any|host \S+|\d+\.\d+\.\d+\.\d+ \d+\.\d+\.\d+\.\d+)"
_ACE_RE = re.compile(rf"permit ip {_SPEC} {_SPEC}")


def _network(spec: str) -> str:
    """``10.20.0.0 0.0.255.255`` or ``host 10.20.0.5`` as a prefix."""
    a, b = spec.split()
    return f"{b}/32" if a == "host" else str(ipaddress.ip_network(f"{a}/{b}", strict=False))


def _blocks(running: str) -> dict[str, list[str]]:
    """Top-level sections of a running-config: header line → indented body lines."""
    out: dict[str, list[str]] = {}
    cur: list[str] | None = None
    for line in running.splitlines():
        if not line.strip() or line.startswith("!"):
            cur = None
            continue
        if not line.startswith(" "):
            cur = out.setdefault(line.strip(), [])
        elif cur is not None:
            cur.append(line.rstrip())
    return out


def _children(body: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur: list[str] | None = None
    for line in body:
        if line.startswith(" class "):
            cur = out.setdefault(line.split()[1], [])
        elif line.startswith("  ") and cur is not None:
            cur.append(line.strip())
    return out


def _value(lines: list[str], key: str) -> int:
    for ln in lines:
        if ln.startswith(key + " "):
            return int(ln.split()[len(key.split())])
    return 0


class CiscoIosDriver(RouterDriver):
    vendor = "cisco_ios"

    def facts(self) -> Facts:
        ver = self.s.command("show version")
        brief = self.s.command("show ip interface brief")
        host = re.search(r"^(\S+) uptime is", ver, re.M)
        os_ver = re.search(r"Version ([^,\s]+)", ver)
        ifaces = tuple(sorted(ln.split()[0] for ln in brief.splitlines()[1:] if ln.strip()))
        return Facts(host.group(1) if host else "", "cisco_ios", f"IOS {os_ver.group(1) if os_ver else '?'}", ifaces)

    def read(self) -> ShapingConfig:
        blocks = _blocks(self.s.command("show running-config", timeout=60))
        roots = {d: _value(_children(blocks.get(f"policy-map PANTAU-{d}", [])).get("class-default", []),
                           "shape average") for d in ("DOWN", "UP")}
        if not any(roots.values()):
            return EMPTY
        child = {d: _children(blocks.get(f"policy-map PANTAU-{d}-AGENCIES", [])) for d in ("DOWN", "UP")}
        agencies = sorted({c[len("PANTAU-"):-len(f"-{d}")] for d in ("DOWN", "UP") for c in child[d]
                           if c.startswith("PANTAU-") and c.endswith(f"-{d}")})
        queues = []
        for a in agencies:
            rates, pfx = {}, {}
            for d in ("DOWN", "UP"):
                body = child[d].get(f"PANTAU-{a}-{d}", [])
                rates[d] = (_value(body, "bandwidth") * 1000, _value(body, "shape average"))
                nets = set()
                for ace in blocks.get(f"ip access-list extended PANTAU-{a}-{d}", []):
                    m = _ACE_RE.search(ace)
                    if m:
                        spec = m.group(2) if d == "DOWN" else m.group(1)
                        if spec != "any":
                            nets.add(_network(spec))
                pfx[d] = nets
            prefixes = tuple(sorted(pfx["DOWN"] | pfx["UP"]))
            if pfx["DOWN"] != pfx["UP"]:
                prefixes += ("(download and upload ACLs differ)",)
            queues.append(AgencyQueue(a.lower(), prefixes, rates["DOWN"][0], rates["DOWN"][1], rates["UP"][0],
                                      rates["UP"][1], ref=f"PANTAU-{a}"))
        for d, iface in (("DOWN", self.shaping.lan), ("UP", self.shaping.wan)):
            if f" service-policy output PANTAU-{d}" not in blocks.get(f"interface {iface}", []):
                roots[d] = 0  # defined but not attached: the router does not enforce it
        return ShapingConfig(roots["DOWN"], roots["UP"], tuple(queues))

    def counters(self) -> dict[str, QueueCounters]:
        out: dict[str, list[int]] = {}
        for d, iface, off in (("DOWN", self.shaping.lan, 0), ("UP", self.shaping.wan, 2)):
            text = self.s.command(f"show policy-map interface {iface} output")
            for cls, body in re.findall(r"Class-map: PANTAU-(\S+)-" + d + r" \(match-any\)(.*?)(?=Class-map:|\Z)",
                                        text, re.S):
                sent = re.search(r"(\d+) bytes", body)
                drops = re.search(r"total drops (\d+)", body)
                row = out.setdefault(cls.lower(), [0, 0, 0, 0])
                row[off], row[off + 1] = int(sent.group(1)) if sent else 0, int(drops.group(1)) if drops else 0
        return {a: QueueCounters(a, r[0], r[2], r[1], r[3]) for a, r in out.items()}

    def render(self, desired: ShapingConfig, actual: ShapingConfig) -> list[str]:
        changes = shaping_diff(desired, actual)
        if not changes:
            return []
        lines: list[str] = []
        for x in desired.queues:
            have = actual.queue(x.agency)
            if have == x:
                continue
            for d, g, c in (("DOWN", x.g_down, x.c_down), ("UP", x.g_up, x.c_up)):
                v = dict(A=x.agency.upper(), D=d)
                if have is None or have.prefixes != x.prefixes:
                    if have is not None:
                        lines.append("no ip access-list extended PANTAU-{A}-{D}".format(**v))
                    lines += [t.format(**v) for t in T_ACL]
                    for p in x.prefixes:
                        net = ipaddress.ip_network(p)
                        lines.append(T_ACE[d].format(net=net.network_address, wild=net.hostmask))
                    lines += [t.format(**v) for t in T_CLASSMAP]
                lines += [t.format(**v, g_kbps=g // 1000, c=c) for t in T_CHILD]
        for x in actual.queues:
            if desired.queue(x.agency) is None:
                for d in ("DOWN", "UP"):
                    lines += [t.format(A=x.agency.upper(), D=d) for t in T_REMOVE]
        for d, cap, iface in (("DOWN", desired.down_bps, self.shaping.lan), ("UP", desired.up_bps, self.shaping.wan)):
            if cap != (actual.down_bps if d == "DOWN" else actual.up_bps):
                if cap:
                    lines += [t.format(D=d, cap=cap) for t in T_PARENT]
                    lines += [t.format(D=d, iface=iface) for t in T_ATTACH]
                else:
                    lines += [f"interface {iface}", f" no service-policy output PANTAU-{d}"]
        return lines

    def push(self, commands: list[str], restore: list[str]) -> None:
        out = self.s.config(commands, mode_command=f"configure terminal revert timer {REVERT_MINUTES}")
        bad = ERROR_RE.search(out)
        if bad:
            self.s.command("configure revert now")
            raise fail(self.device, f"IOS refused a line ({bad.group(0).strip()}); pantau reverted to the archived "
                       "configuration", out, kept_previous=True)
        confirm = self.s.command("configure confirm")
        if ERROR_RE.search(confirm):
            raise fail(self.device, "IOS did not confirm the change; it reverts by itself within "
                       f"{REVERT_MINUTES} minutes", confirm, kept_previous=True)

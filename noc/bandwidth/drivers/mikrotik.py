"""MikroTik RouterOS driver: one simple queue per agency under a ``pantau-root`` parent.

RouterOS simple queues (``/queue simple``) take ``target`` (the agency's prefixes), ``parent``,
``limit-at`` (guaranteed) and ``max-limit`` (ceiling), both written ``upload/download`` from the
target's point of view. pantau names its queues ``pantau-<agency>`` and touches no other queue.
A change is sent as one console line wrapped in ``:do { … } on-error={ … }``: RouterOS runs a
line only once it has all of it, so a session lost while sending changes nothing, and a command
the router refuses makes the ``on-error`` branch restore the previous queues.
"""

from __future__ import annotations

import itertools
import re

from noc.bandwidth.drivers.base import Facts, QueueCounters, RouterDriver, fail
from noc.bandwidth.shaping import EMPTY, AgencyQueue, ShapingConfig
from noc.bandwidth.shaping import diff as shaping_diff

PREFIX = "pantau-"
ROOT = "pantau-root"
FAILED = "PANTAU-CHANGE-FAILED"

# -- templates (RouterOS v7 /queue simple, /system resource) ----------------------------------------
T_PRINT = f'/queue simple print detail without-paging where name~"^{PREFIX}"'
T_STATS = f'/queue simple print stats detail without-paging where name~"^{PREFIX}"'
T_ADD_ROOT = '/queue simple add name={root} target={targets} max-limit={up}/{down} comment="pantau: uplink"'
T_SET_ROOT = '/queue simple set [find name="{root}"] target={targets} max-limit={up}/{down}'
T_ADD = ('/queue simple add name={name} parent={root} target={targets} limit-at={g_up}/{g_down} '
         'max-limit={c_up}/{c_down} comment="pantau: {agency}"')
T_SET = '/queue simple set [find name="{name}"] target={targets} limit-at={g_up}/{g_down} max-limit={c_up}/{c_down}'
T_REMOVE = '/queue simple remove [find name="{name}"]'
T_LINE = ':do {{ {commands} }} on-error={{ {restore}; :put "' + FAILED + '" }}'

_ENTRY_RE = re.compile(r"^\s*\d+\s", re.M)  # each entry of `print detail` starts with its number
_KV_RE = re.compile(r'([a-z-]+)=("[^"]*"|\S+)')
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}


def ros_rate(text: str) -> int:
    """A RouterOS rate (``0``, ``800``, ``1500k``, ``300M``, ``1G``) in bit/s."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kMG]?)", text)
    if not m:
        raise ValueError(f"unexpected RouterOS rate {text!r}")
    return round(float(m.group(1)) * _SUFFIX[m.group(2)])


def _r(bps: int) -> str:
    return f"{bps // 1000}k" if bps % 1_000_000 else f"{bps // 1_000_000}M"


def parse_queues(text: str) -> list[dict[str, str]]:
    """``print detail`` output → one dict of key=value per entry (``;;;`` comment lines are skipped)."""
    starts = [m.start() for m in _ENTRY_RE.finditer(text)] + [len(text)]
    out = []
    for a, b in itertools.pairwise(starts):
        body = "\n".join(ln for ln in text[a:b].splitlines() if ";;;" not in ln)
        entry = {k: v.strip('"') for k, v in _KV_RE.findall(body)}
        if "name" in entry:
            out.append(entry)
    return out


class MikrotikDriver(RouterDriver):
    vendor = "mikrotik"

    def facts(self) -> Facts:
        res = self.s.command("/system resource print without-paging")
        ident = self.s.command("/system identity print without-paging")
        ifaces = self.s.command("/interface print terse without-paging")
        version = re.search(r"version:\s*(\S+)", res)
        name = re.search(r"name:\s*(\S+)", ident)
        return Facts(name.group(1) if name else "", "mikrotik", f"RouterOS {version.group(1) if version else '?'}",
                     tuple(sorted(re.findall(r"name=(\S+)", ifaces))))

    def read(self) -> ShapingConfig:
        entries = parse_queues(self.s.command(T_PRINT))
        root = next((e for e in entries if e.get("name") == ROOT), None)
        if root is None:
            return EMPTY
        up, down = (ros_rate(x) for x in root.get("max-limit", "0/0").split("/"))
        queues = []
        for e in entries:
            name = e.get("name", "")
            if name == ROOT or not name.startswith(PREFIX):
                continue
            g_up, g_down = (ros_rate(x) for x in e.get("limit-at", "0/0").split("/"))
            c_up, c_down = (ros_rate(x) for x in e.get("max-limit", "0/0").split("/"))
            targets = tuple(sorted(t for t in e.get("target", "").split(",") if t))
            if e.get("parent") != ROOT:
                targets += (f"(parent is {e.get('parent')}, not {ROOT})",)
            queues.append(AgencyQueue(name[len(PREFIX):], targets, g_down, c_down, g_up, c_up, ref=name))
        return ShapingConfig(down, up, tuple(sorted(queues, key=lambda x: x.agency)))

    def counters(self) -> dict[str, QueueCounters]:
        out = {}
        for e in parse_queues(self.s.command(T_STATS)):
            name = e.get("name", "")
            if name.startswith(PREFIX) and name != ROOT:
                up_b, down_b = (int(x) for x in e.get("bytes", "0/0").split("/"))
                up_d, down_d = (int(x) for x in e.get("dropped", "0/0").split("/"))
                out[name[len(PREFIX):]] = QueueCounters(name[len(PREFIX):], down_b, up_b, down_d, up_d)
        return out

    def render(self, desired: ShapingConfig, actual: ShapingConfig) -> list[str]:
        changes = shaping_diff(desired, actual)
        if not changes:
            return []
        targets = ",".join(sorted({p for x in desired.queues for p in x.prefixes})) or "0.0.0.0/32"
        cmds = []
        root = dict(root=ROOT, targets=targets, up=_r(desired.up_bps), down=_r(desired.down_bps))
        if actual == EMPTY:
            cmds.append(T_ADD_ROOT.format(**root))
        elif any(c.what == "root" or c.kind != "change" or c.field == "prefixes" for c in changes):
            cmds.append(T_SET_ROOT.format(**root))
        for x in desired.queues:
            have = actual.queue(x.agency)
            args = dict(name=PREFIX + x.agency, root=ROOT, agency=x.agency, targets=",".join(x.prefixes),
                        g_up=_r(x.g_up), g_down=_r(x.g_down), c_up=_r(x.c_up), c_down=_r(x.c_down))
            if have is None:
                cmds.append(T_ADD.format(**args))
            elif have != x:
                cmds.append(T_SET.format(**args))
        for x in actual.queues:
            if desired.queue(x.agency) is None:
                cmds.append(T_REMOVE.format(name=PREFIX + x.agency))
        if not desired.queues and desired.down_bps == 0:
            cmds.append(T_REMOVE.format(name=ROOT))
        return cmds

    def render_restore(self, previous: ShapingConfig) -> list[str]:
        # remove what pantau owns, then rebuild the previous queues
        clear = [f'/queue simple remove [find name~"^{PREFIX}" and name!="{ROOT}"]',
                 f'/queue simple remove [find name="{ROOT}"]']
        return clear + (self.render(previous, EMPTY) if previous != EMPTY else [])

    def push(self, commands: list[str], restore: list[str]) -> None:
        line = T_LINE.format(commands="; ".join(commands), restore="; ".join(restore))
        out = self.s.command(line, timeout=120)
        if FAILED in out:
            raise fail(self.device, "RouterOS refused the change and the previous queues were restored", out,
                       kept_previous=True)
        if re.search(r"^(failure|syntax error|bad command|expected )", out, re.M | re.I):
            raise fail(self.device, "RouterOS did not accept the command line; nothing was run", out,
                       kept_previous=True)

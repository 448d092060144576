"""Linux router driver: tc HTB on the agency-facing port for download, ingress → ifb → HTB for upload.

Layout (per direction one HTB tree): root ``1:`` → class ``1:1`` at the uplink capacity → one
class per agency (``rate`` = guaranteed, ``ceil`` = ceiling) classified by u32 on the agency's
prefixes (destination for download, source for upload), and ``1:ffff`` for unclassified traffic.
The kernel forgets nothing it is asked to hold, but it has no names: pantau keeps the class →
agency map beside the tree in ``/run/pantau`` and reads every rate and prefix from the kernel.

A commit uploads a candidate script and a restore script, checks their digests, then runs the
candidate detached from the SSH session (``setsid``); if the candidate fails the restore runs.
A session lost before the run leaves the router untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable

from core.errors import CommitError, DeviceUnreachable
from noc.bandwidth.drivers.base import Facts, QueueCounters, RouterDriver, fail
from noc.bandwidth.shaping import EMPTY, AgencyQueue, ShapingConfig, structural
from noc.bandwidth.shaping import diff as shaping_diff

STATE_DIR = "/run/pantau"
DEFAULT_MINOR = 0xFFFF
FIRST_MINOR = 0x10

# -- templates (tc and ip syntax, see tc-htb(8), tc-u32(8), tc-mirred(8)) --------------------------
T_TEARDOWN = [
    "tc qdisc del dev {lan} root 2>/dev/null || true",
    "tc qdisc del dev {lan} ingress 2>/dev/null || true",
    "tc qdisc del dev {ifb} root 2>/dev/null || true",
]
T_IFB = ["ip link show {ifb} >/dev/null 2>&1 || ip link add {ifb} type ifb", "ip link set {ifb} up"]
T_ROOT = [
    "tc qdisc add dev {dev} root handle 1: htb default ffff",
    "tc class add dev {dev} parent 1: classid 1:1 htb rate {cap}bit ceil {cap}bit",
    "tc class add dev {dev} parent 1:1 classid 1:ffff htb rate {spare}bit ceil {cap}bit",
]
T_CLASS = "tc class {verb} dev {dev} parent 1:1 classid 1:{minor:x} htb rate {g}bit ceil {c}bit"
T_FILTER = "tc filter add dev {dev} parent 1: protocol ip prio 10 u32 match ip {side} {prefix} flowid 1:{minor:x}"
T_REDIRECT = [
    "tc qdisc add dev {lan} handle ffff: ingress",
    "tc filter add dev {lan} parent ffff: protocol all prio 1 u32 match u32 0 0 "
    "action mirred egress redirect dev {ifb}",
]
T_LABELS = "mkdir -p {dir} && printf '%s' {labels} > {dir}/tc-{lan}.json"

_CLASS_RE = re.compile(r"class htb 1:([0-9a-f]+) (?:parent 1:([0-9a-f]+)|root).*? rate (\S+) ceil (\S+)")
_FILTER_RE = re.compile(r"flowid 1:([0-9a-f]+).*?\n\s+match ([0-9a-f]{8})/([0-9a-f]{8}) at (\d+)", re.S)
_SENT_RE = re.compile(r"class htb 1:([0-9a-f]+) .*?\n\s*Sent (\d+) bytes \d+ pkt \(dropped (\d+)", re.S)
_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}


def tc_rate(text: str) -> int:
    """A rate as tc prints it (``30Mbit``, ``1500Kbit``, ``800bit``) in bit/s."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?bit)", text, re.I)
    if not m:
        raise ValueError(f"unexpected tc rate {text!r}")
    return round(float(m.group(1)) * _UNITS[m.group(2).lower()])


def ifb_name(lan: str) -> str:
    return ("ifb-" + lan)[:15]


def _prefix(hexnet: str, hexmask: str) -> str:
    net, mask = int(hexnet, 16), int(hexmask, 16)
    bits = bin(mask).count("1")
    return ".".join(str((net >> s) & 255) for s in (24, 16, 8, 0)) + f"/{bits}"


def script(commands: list[str], stop_on_error: bool = True) -> str:
    """A shell script for ``commands``; runs of plain tc commands go to one ``tc -batch`` (one process)."""
    out = ["set -e"] if stop_on_error else []
    batch: list[str] = []
    for c in [*commands, ""]:
        if c.startswith("tc ") and not any(x in c for x in ("|", ";", "&", ">")):
            batch.append(c[3:])
            continue
        if batch:
            out += ["tc -batch - <<'PANTAU_TC'", *batch, "PANTAU_TC"]
            batch = []
        if c:
            out.append(c)
    return "\n".join(out) + "\n"


def _labels(text: str) -> dict[int, str]:
    """The class → agency map pantau keeps on the router (empty if missing or damaged)."""
    try:
        return {int(k): str(v) for k, v in json.loads(text or "{}").items()}
    except (ValueError, AttributeError):
        return {}


class LinuxTcDriver(RouterDriver):
    vendor = "linux"

    def __init__(self, *args: object, on_stage: Callable[[str], None] | None = None, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.on_stage = on_stage or (lambda stage: None)
        self.lan = self.shaping.lan
        self.ifb = ifb_name(self.lan)

    def run(self, cmd: str, timeout: float = 60.0, stdin: bytes | None = None) -> tuple[int, str]:
        """Run a shell command on the router over its own exec channel; (exit code, output)."""
        rc, out = self.s.exec(cmd, stdin=stdin, timeout=timeout)
        return rc, out.rstrip("\n")

    def facts(self) -> Facts:
        host, kernel, links = self.run_many(["hostname", "uname -r", "ip -o link show"])
        names = tuple(sorted({ln.split(":")[1].strip().split("@")[0] for ln in links.splitlines() if ":" in ln}))
        return Facts(host.strip(), "linux", f"Linux {kernel.strip()}", names)

    # -- reading -----------------------------------------------------------------------------
    def run_many(self, cmds: list[str]) -> list[str]:
        """Several read-only commands in one round trip; each one's output (errors dropped)."""
        sep = "printf '\\n%s%s\\n' __pantau sec"
        _, out = self.run("; ".join(f"{sep}; {c} 2>/dev/null" for c in cmds))
        parts = re.split(r"^__pantausec\n", out + "\n", flags=re.M)
        if len(parts) != len(cmds) + 1:
            raise fail(self.device, "could not read the shaping state (unexpected output)", out, kept_previous=True)
        return [p.strip("\n") for p in parts[1:]]

    @staticmethod
    def _tree(qd: str, cls: str, flt: str, at: str) -> tuple[int, dict[int, tuple[int, int]], dict[int, list[str]]]:
        """(root rate, {minor: (rate, ceil)}, {minor: prefixes}) of an HTB tree; ``at`` 16=dst, 12=src."""
        if not re.search(r"qdisc htb 1: root", qd):
            return 0, {}, {}
        root, classes = 0, {}
        for minor, parent, rate, ceil in _CLASS_RE.findall(cls):
            m = int(minor, 16)
            if parent == "" and m == 1:
                root = tc_rate(rate)
            elif parent == "1" and m != DEFAULT_MINOR:
                classes[m] = (tc_rate(rate), tc_rate(ceil))
        prefixes: dict[int, list[str]] = {}
        for minor, net, mask, offset in _FILTER_RE.findall(flt):
            if offset == at:
                prefixes.setdefault(int(minor, 16), []).append(_prefix(net, mask))
        return root, classes, prefixes

    def read(self) -> ShapingConfig:
        lan, ifb = self.lan, self.ifb
        out = self.run_many([
            f"cat {STATE_DIR}/tc-{lan}.json", f"tc filter show dev {lan} parent ffff:",
            *(x for dev in (lan, ifb) for x in (f"tc qdisc show dev {dev}", f"tc class show dev {dev}",
                                                  f"tc filter show dev {dev} parent 1:")),
        ])
        labels = _labels(out[0])
        down_root, down, down_pfx = self._tree(out[2], out[3], out[4], "16")
        redirected = f"redirect to device {ifb})" in out[1].lower()
        up_root, up, up_pfx = self._tree(out[5], out[6], out[7], "12") if redirected else (0, {}, {})
        if not down_root and not up_root:
            return EMPTY
        queues = []
        for minor in sorted(set(down) | set(up)):
            name = labels.get(minor, f"unlabelled-class-1:{minor:x}")
            g_d, c_d = down.get(minor, (0, 0))
            g_u, c_u = up.get(minor, (0, 0))
            pfx = tuple(sorted(set(down_pfx.get(minor, [])) | set(up_pfx.get(minor, []))))
            if set(down_pfx.get(minor, [])) != set(up_pfx.get(minor, [])):
                pfx = (*pfx, "(download and upload filters differ)")
            queues.append(AgencyQueue(name, pfx, g_d, c_d, g_u, c_u, ref=f"{minor:x}"))
        return ShapingConfig(down_root, up_root, tuple(sorted(queues, key=lambda x: x.agency)))

    def counters(self) -> dict[str, QueueCounters]:
        labels_text, *stats_text = self.run_many([
            f"cat {STATE_DIR}/tc-{self.lan}.json", f"tc -s class show dev {self.lan}",
            f"tc -s class show dev {self.ifb}"])
        labels = _labels(labels_text)
        stats: dict[str, list[int]] = {}
        for out, off in zip(stats_text, (0, 2), strict=True):
            for minor, sent, dropped in _SENT_RE.findall(out):
                name = labels.get(int(minor, 16))
                if name:
                    row = stats.setdefault(name, [0, 0, 0, 0])
                    row[off], row[off + 1] = int(sent), int(dropped)
        return {a: QueueCounters(a, r[0], r[2], r[1], r[3]) for a, r in stats.items()}

    # -- rendering ------------------------------------------------------------------------------
    def render(self, desired: ShapingConfig, actual: ShapingConfig) -> list[str]:
        lan, ifb = self.lan, self.ifb
        if desired == actual:
            return []
        minors = {x.agency: FIRST_MINOR + i for i, x in enumerate(desired.queues)}
        changes = shaping_diff(desired, actual)
        if actual != EMPTY and not structural(changes) and desired.down_bps == actual.down_bps \
                and desired.up_bps == actual.up_bps:
            cmds = []
            for x in desired.queues:
                have = actual.queue(x.agency)
                if have is not None and have != x:
                    m = int(have.ref, 16) if have.ref else minors[x.agency]
                    cmds.append(T_CLASS.format(verb="change", dev=lan, minor=m, g=x.g_down, c=x.c_down))
                    cmds.append(T_CLASS.format(verb="change", dev=ifb, minor=m, g=x.g_up, c=x.c_up))
            return cmds
        cmds = [t.format(lan=lan, ifb=ifb) for t in T_TEARDOWN]
        if desired.queues or desired.down_bps:
            cmds += [t.format(ifb=ifb) for t in T_IFB]
            for dev, cap, side, gf, cf in ((lan, desired.down_bps, "dst", "g_down", "c_down"),
                                           (ifb, desired.up_bps, "src", "g_up", "c_up")):
                spare = max(8000, cap - sum(getattr(x, gf) for x in desired.queues))
                cmds += [t.format(dev=dev, cap=cap, spare=min(spare, cap)) for t in T_ROOT]
                for x in desired.queues:
                    m = minors[x.agency]
                    cmds.append(T_CLASS.format(verb="add", dev=dev, minor=m, g=getattr(x, gf), c=getattr(x, cf)))
                    cmds += [T_FILTER.format(dev=dev, side=side, prefix=p, minor=m) for p in x.prefixes]
            cmds += [t.format(lan=lan, ifb=ifb) for t in T_REDIRECT]
        labels = json.dumps({str(m): a for a, m in minors.items()}, sort_keys=True)
        cmds.append(T_LABELS.format(dir=STATE_DIR, labels=shlex.quote(labels), lan=lan))
        return cmds

    def render_restore(self, previous: ShapingConfig) -> list[str]:
        if previous == EMPTY:
            return [t.format(lan=self.lan, ifb=self.ifb) for t in T_TEARDOWN] + [
                T_LABELS.format(dir=STATE_DIR, labels="'{}'", lan=self.lan)]
        return self.render(previous, EMPTY)

    # -- pushing -------------------------------------------------------------------------------
    def _upload(self, path: str, text: str) -> None:
        """Write ``text`` to ``path`` on the router (root-only directory) and check its digest."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        rc, out = self.run(f"mkdir -p -m 700 {STATE_DIR} && umask 077 && cat > {path} && sha256sum {path}",
                           stdin=text.encode())
        if rc != 0 or digest not in out:
            raise fail(self.device, f"the uploaded {path} is damaged or missing (digest mismatch)", out,
                       kept_previous=True)

    def push(self, commands: list[str], restore: list[str]) -> None:
        tag = hashlib.sha256("\n".join(commands).encode()).hexdigest()[:12]
        # in pantau's own root-only directory, not /tmp: no one else can plant or read these files
        cand, back, log_ = (f"{STATE_DIR}/commit-{tag}.sh", f"{STATE_DIR}/commit-{tag}-restore.sh",
                            f"{STATE_DIR}/commit-{tag}.log")
        try:
            self._upload(cand, script(commands))
            self._upload(back, script(restore, stop_on_error=False))
            self.on_stage("uploaded")
        except DeviceUnreachable as exc:
            raise CommitError(f"{self.device.id}: the SSH session was lost before the change was activated; the "
                              f"router keeps its previous configuration ({exc})", kept_previous=True) from exc
        # detached: a session lost from here on cannot stop the script half-way
        rc, out = self.run(
            f"(setsid sh -c 'sh {cand} || {{ sh {back}; exit 3; }}' </dev/null >{log_} 2>&1; "
            f"r=$?; cat {log_}; rm -f {cand} {back} {log_}; exit $r)", timeout=120)
        self.on_stage("ran")
        if rc == 3:
            raise fail(self.device, "the router refused the change and pantau restored its previous queues", out,
                       kept_previous=True)
        if rc != 0:
            raise fail(self.device, f"the change failed (exit {rc})", out, kept_previous=False)

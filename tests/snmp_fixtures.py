"""Real SNMP agents for tests: Debian's snmpd (in a namespace or on loopback) and snmpsim.

snmpsim serves one simulated device per community from ``.snmprec`` files that the tests rewrite
between polls (it re-indexes a file whose modification time changed), so counters, sysUpTime
and ifIndex move exactly as a scenario needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from noc import procs
from noc.procs import free_udp_port

SNMPSIM_RUNNER = """
import dbm, dbm.dumb, encodings.idna, encodings.utf_8, encodings.latin_1, encodings.ascii
import sys
from snmpsim.commands.responder import main
sys.exit(main())
"""


@dataclass(frozen=True)
class SimIface:
    index: int
    name: str
    rx: int
    tx: int
    alias: str = ""
    speed_mbps: int = 1000
    up: bool = True


def snmprec(uptime_ticks: int, ifaces: list[SimIface], *, xtable: bool = True, sys_name: str = "sim") -> str:
    """The .snmprec text of a device (records sorted by OID, as snmpsim expects)."""
    recs: list[tuple[tuple[int, ...], str, str]] = [
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), "4", f"Simulated {sys_name}"),
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), "67", str(uptime_ticks)),
        ((1, 3, 6, 1, 2, 1, 1, 5, 0), "4", sys_name),
    ]
    if_t, if_x = (1, 3, 6, 1, 2, 1, 2, 2, 1), (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
    for i in ifaces:
        cols = [(if_t, 2, "4", i.name), (if_t, 5, "66", str(min(i.speed_mbps * 10**6, 2**32 - 1))),
                (if_t, 8, "2", "1" if i.up else "2"), (if_t, 10, "65", str(i.rx % 2**32)), (if_t, 14, "65", "0"),
                (if_t, 16, "65", str(i.tx % 2**32)), (if_t, 20, "65", "0")]
        if xtable:
            cols += [(if_x, 1, "4", i.name), (if_x, 6, "70", str(i.rx)), (if_x, 10, "70", str(i.tx)),
                     (if_x, 15, "66", str(i.speed_mbps)), (if_x, 18, "4", i.alias)]
        recs += [((*table, col, i.index), typ, val) for table, col, typ, val in cols]
    recs.sort()
    return "".join(f"{'.'.join(map(str, oid))}|{typ}|{val}\n" for oid, typ, val in recs)


@dataclass
class SnmpSim:
    """A running snmpsim responder; ``write`` changes a community's device."""

    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    _stamp: dict[str, int] = field(default_factory=dict)

    def write(self, community: str, text: str) -> None:
        """Replace a device's data atomically, with a whole-second mtime later than the last one.

        snmpsim re-indexes a data file when its mtime (whole seconds) is newer than its index, so
        each change must land in a later second than the previous one, and never in the future.
        """
        path = self.data / f"{community}.snmprec"
        last = self._stamp.get(community, 0)
        while int(time.time()) <= last:
            time.sleep(0.05)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        self._stamp[community] = int(path.stat().st_mtime)


def start_snmpsim(home: Path, communities: list[str]) -> SnmpSim:
    """snmpsim serving one device per community; it finds data files only at start, so name them all."""
    data, cache, logs = home / "snmpsim-data", home / "snmpsim-cache", home / "snmpsim-logs"
    for d in (data, cache, logs):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o777)
    sim = SnmpSim(data, free_udp_port())
    for c in communities:
        sim.write(c, snmprec(1, []))
    runner = home / "snmpsim_runner.py"
    runner.write_text(SNMPSIM_RUNNER)
    args = [sys.executable, str(runner), f"--data-dir={data}", f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint=127.0.0.1:{sim.port}", f"--logging-method=file:{logs / 'snmpsim.log'}",
            "--max-var-binds=512"]
    if os.geteuid() == 0:
        args += ["--process-user=nobody", "--process-group=nogroup"]
    sim.proc = subprocess.Popen(args, stdout=(home / "snmpsim.out").open("ab"), stderr=subprocess.STDOUT)
    return sim


SNMPD_CONF = """
agentAddress udp:{addr}:{port}
rocommunity {community} default
rwcommunity {community}-setup default .1.3.6.1.4.1.8072.1.5.3
createUser {user} SHA {auth} AES {priv}
rouser {user} priv
"""


@dataclass(frozen=True)
class Snmpd:
    addr: str
    port: int
    community: str
    user: str
    auth: str
    priv: str


def start_snmpd(home: Path, addr: str, port: int, prefix: list[str] | None = None, *, same_as: Snmpd | None = None
                ) -> tuple[Snmpd, subprocess.Popen[bytes]]:
    """Debian's snmpd with a v2c community and a v3 authPriv (SHA/AES) user; ``prefix`` e.g. netns exec.

    ``same_as`` starts it again with the credentials of an earlier start (a reboot keeps them; the
    SNMPv3 engine ID and boots live in ``home/snmp-persist``, which a test may wipe)."""
    cfg = same_as or Snmpd(addr, port, "pt-" + os.urandom(4).hex(), "pantau", "authkey-" + os.urandom(4).hex(),
                           "privkey-" + os.urandom(4).hex())
    conf = home / "snmpd.conf"
    conf.write_text(SNMPD_CONF.format(addr=addr, port=port, community=cfg.community, user=cfg.user,
                                      auth=cfg.auth, priv=cfg.priv))
    persist = home / "snmp-persist"
    persist.mkdir(exist_ok=True)
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(persist)}
    proc = subprocess.Popen([*(prefix or []), "snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(home / "snmpd.log"),
                             "-p", str(home / "snmpd.pid")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    return cfg, proc


# NET-SNMP-AGENT-MIB::nsCacheTimeout for the ifTable registration (ifXTable shares it)
NS_CACHE_TIMEOUT_IFTABLE = "1.3.6.1.4.1.8072.1.5.3.1.2.1.3.6.1.2.1.2.2"


def live_counters(cfg: Snmpd) -> None:
    """Make snmpd answer with live interface counters instead of its 3-second cache.

    net-snmp reloads its interface table every 3 s by default, so a counter can be up to 3 s older
    than the sysUpTime read beside it. Production polls (60 s) average that out; a test comparing
    short intervals with iperf3 turns the cache off so it measures pantau, not snmpd's cache.
    """
    subprocess.run(["snmpset", "-v2c", "-c", f"{cfg.community}-setup", f"{cfg.addr}:{cfg.port}",
                    NS_CACHE_TIMEOUT_IFTABLE, "i", "0"], check=True, capture_output=True, timeout=10)


def wait_snmp(addr: str, port: int, community: str, proc: subprocess.Popen[bytes], prefix: list[str] | None = None
              ) -> None:
    """Until the agent answers a GET (bounded)."""
    def ok() -> bool:
        r = subprocess.run([*(prefix or []), "snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0",
                            f"{addr}:{port}", "1.3.6.1.2.1.1.3.0"], capture_output=True, timeout=10)
        return r.returncode == 0
    procs.wait_until(ok, 20, f"SNMP agent at {addr}:{port}", proc, step=0.2)

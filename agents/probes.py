"""Host probes: what the agent measures, through psutil.

A probe is any object with ``collect() -> dict`` returning the ``host``/``interfaces`` part of a
report (see :mod:`agents.wire`); the loop adds sequence and timing. Counters are the kernel's raw
cumulative values (``nowrap=False``): the NOC handles wraps and resets.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Protocol

import psutil

from core.errors import PantauError

# Mount types that are not real storage and would only add noise.
_PSEUDO_FS = {"tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "cgroup", "cgroup2", "nsfs"}


class Probe(Protocol):
    """Something that measures a host."""

    def collect(self) -> dict[str, Any]: ...

    def boot(self) -> tuple[str, float]: ...


def read_boot_id(boot_time: float) -> str:
    """The kernel's boot id where Linux has one, else one derived from the boot time."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:64]
    except OSError:
        return f"boot-{int(boot_time)}"


class PsutilProbe:
    """Measures this host: per-interface counters, CPU, load, memory and disk usage."""

    def __init__(self, interfaces: list[str] | None = None, mounts: list[str] | None = None) -> None:
        self.interface_patterns = interfaces or ["*"]
        self.mounts = mounts
        psutil.cpu_percent(interval=None)  # prime: the first call has no reference point

    def boot(self) -> tuple[str, float]:
        boot_time = psutil.boot_time()
        return read_boot_id(boot_time), boot_time

    def _wanted(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.interface_patterns)

    def collect(self) -> dict[str, Any]:
        try:
            counters = psutil.net_io_counters(pernic=True, nowrap=False)
            stats = psutil.net_if_stats()
            mem = psutil.virtual_memory()
            disks = []
            seen: set[str] = set()
            for part in psutil.disk_partitions(all=False):
                if part.fstype in _PSEUDO_FS or (self.mounts is not None and part.mountpoint not in self.mounts):
                    continue
                if part.mountpoint[:256] in seen:  # mounted over, or bind-mounted twice: one reading
                    continue
                seen.add(part.mountpoint[:256])
                try:
                    du = psutil.disk_usage(part.mountpoint)
                except OSError:
                    continue
                disks.append({"mount": part.mountpoint[:256], "total": du.total, "used": du.used})
            load1 = psutil.getloadavg()[0]
        except (OSError, psutil.Error) as exc:
            raise PantauError(f"could not read this host's counters: {exc}") from exc
        interfaces = []
        for name, c in sorted(counters.items()):
            if not self._wanted(name):
                continue
            item: dict[str, Any] = {
                "name": name,
                "rx_bytes": c.bytes_recv,
                "tx_bytes": c.bytes_sent,
                "rx_packets": c.packets_recv,
                "tx_packets": c.packets_sent,
                "rx_errors": c.errin,
                "tx_errors": c.errout,
                "rx_drops": c.dropin,
                "tx_drops": c.dropout,
                "counter_bits": 64,
            }
            st = stats.get(name)
            if st is not None:
                item["up"] = bool(st.isup)
                if st.speed > 0:
                    item["speed_bps"] = st.speed * 1_000_000
            interfaces.append(item)
        return {
            "host": {
                "cpu_percent": min(100.0, max(0.0, psutil.cpu_percent(interval=None))),
                "load1": max(0.0, load1),
                "mem_total": mem.total,
                "mem_used": mem.total - mem.available,
                "disks": disks[:64],
            },
            "interfaces": interfaces[:256],
        }

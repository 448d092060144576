"""An SNMPv3 device that restarts is read again at its next poll, whatever its engine ID does.

pysnmp caches each device's engine ID, boots and time for 5 minutes and, until then, does not
understand a device that rebooted (boots + 1) or was replaced (a new engine ID): the NOC would call
it down long after it came back. The client forgets and rediscovers on the first silence.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from collectors.snmp.client import SnmpClient, SnmpTarget
from collectors.snmp.poller import DevicePoll, poll_device
from noc import procs
from tests.snmp_fixtures import start_snmpd, wait_snmp

pytestmark = pytest.mark.integration


def _queues_consistent(client: SnmpClient, target: SnmpTarget) -> bool:
    """pysnmp's timer deletes every engine its expiry queue names, without looking: what was forgotten
    must have left the queue too, or the timer task dies and the engine stops timing out requests."""
    mp = client._engine(target).message_processing_subsystems[3]
    cache = mp._SnmpV3MessageProcessingModel__engineIdCache  # type: ignore[attr-defined]
    queue = mp._SnmpV3MessageProcessingModel__engineIdCacheExpQueue  # type: ignore[attr-defined]
    return all(k in cache for keys in queue.values() for k in keys)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_rebooted_or_replaced_v3_device_answers_the_next_poll(tmp_path: Path, host: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cfg, proc = start_snmpd(tmp_path, "127.0.0.1", procs.free_udp_port())
    target = SnmpTarget("core-rtr", host, cfg.port, version="3", user=cfg.user, auth_key=cfg.auth,
                        priv_key=cfg.priv, timeout=1.0, retries=1)
    client = SnmpClient()

    async def poll() -> DevicePoll:
        return await poll_device(client, target)

    def restart(wipe: bool) -> None:
        nonlocal proc
        procs.stop(proc)
        if wipe:  # a new box: its engine ID and boots start again
            shutil.rmtree(tmp_path / "snmp-persist")
        _, proc = start_snmpd(tmp_path, cfg.addr, cfg.port, same_as=cfg)
        wait_snmp(cfg.addr, cfg.port, cfg.community, proc)

    async def scenario() -> list[tuple[str, DevicePoll]]:
        seen = []
        try:
            wait_snmp(cfg.addr, cfg.port, cfg.community, proc)
            seen.append(("before", await poll()))
            restart(wipe=False)  # rebooted between two polls: the next poll meets pysnmp's stale discovery
            seen.append(("rebooted", await poll()))
            restart(wipe=True)  # replaced between two polls: a new engine ID
            seen.append(("replaced", await poll()))
            procs.stop(proc)  # away for a poll, then back as a new box
            seen.append(("away", await poll()))
            restart(wipe=True)
            seen.append(("back", await poll()))
        finally:
            procs.stop(proc)
        return seen

    with caplog.at_level("INFO", logger="pantau.snmp"):
        seen = asyncio.run(scenario())
    assert [(what, p.ok) for what, p in seen] == [("before", True), ("rebooted", True), ("replaced", True),
                                                  ("away", False), ("back", True)], [(w, p.error) for w, p in seen]
    assert all(p.sys_uptime_ticks is not None for _, p in seen if p.ok)
    assert caplog.text.count("asking again with its SNMPv3 engine discovered afresh") == 3, caplog.text
    assert _queues_consistent(client, target)

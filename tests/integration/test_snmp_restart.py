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


def test_a_rebooted_or_replaced_v3_device_answers_the_next_poll(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cfg, proc = start_snmpd(tmp_path, "127.0.0.1", procs.free_udp_port())
    target = SnmpTarget("core-rtr", cfg.addr, cfg.port, version="3", user=cfg.user, auth_key=cfg.auth,
                        priv_key=cfg.priv, timeout=1.0, retries=1)
    client = SnmpClient()

    async def poll() -> DevicePoll:
        return await poll_device(client, target)

    async def scenario() -> list[tuple[str, DevicePoll]]:
        nonlocal proc
        seen = []
        try:
            wait_snmp(cfg.addr, cfg.port, cfg.community, proc)
            seen.append(("before", await poll()))
            # rebooted between two polls: the first poll after it meets pysnmp's stale discovery
            procs.stop(proc)
            _, proc = start_snmpd(tmp_path, cfg.addr, cfg.port, same_as=cfg)
            wait_snmp(cfg.addr, cfg.port, cfg.community, proc)
            seen.append(("rebooted", await poll()))
            # replaced by a new box (a new engine ID, boots from 1), polled while it was away
            procs.stop(proc)
            seen.append(("away", await poll()))
            shutil.rmtree(tmp_path / "snmp-persist")
            _, proc = start_snmpd(tmp_path, cfg.addr, cfg.port, same_as=cfg)
            wait_snmp(cfg.addr, cfg.port, cfg.community, proc)
            seen.append(("replaced", await poll()))
        finally:
            procs.stop(proc)
        return seen

    with caplog.at_level("INFO", logger="pantau.snmp"):
        seen = asyncio.run(scenario())
    assert [(what, p.ok) for what, p in seen] == [("before", True), ("rebooted", True), ("away", False),
                                                  ("replaced", True)], [(what, p.error) for what, p in seen]
    assert all(p.sys_uptime_ticks is not None for _, p in seen if p.ok)
    assert caplog.text.count("asking again with its SNMPv3 engine discovered afresh") == 2, caplog.text

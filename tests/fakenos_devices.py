"""Fake MikroTik RouterOS and Cisco IOS devices over real SSH (fakenos), for session mechanics.

fakenos answers canned text: the devices below print a realistic queue table or running-config
(tests/fixtures/routers) and accept exactly the configuration lines the test registers; any
other line gets the vendor's error reply. Good for login, modes, error handling and parsing —
not for semantics (a canned router never changes what it prints).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fakenos import FakeNOS

from noc.bandwidth.drivers.mikrotik import FAILED, T_PRINT, T_STATS
from noc.procs import free_port, port_open, wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "routers"
USER, PASSWORD = "pantau", "fake-router-pw"  # a test-only fake device's login
MT_PROMPT = "[pantau@{base_prompt}] > "


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def mikrotik_nos(accept: list[str], refuse: tuple[str, ...] = ()) -> dict[str, Any]:
    """RouterOS: prints the fixture queues; ``accept`` lines answer nothing, ``refuse`` lines hit on-error."""
    cmds: dict[str, Any] = {
        "/system resource print without-paging": _text("mikrotik_resource.txt"),
        "/system identity print without-paging": "  name: mt-core",
        "/interface print terse without-paging": _text("mikrotik_interfaces.txt"),
        T_PRINT: _text("mikrotik_queue_print.txt"),
        T_STATS: _text("mikrotik_queue_stats.txt"),
    }
    cmds.update({line: "" for line in accept})
    cmds.update({line: FAILED for line in refuse})
    return {"name": "pantau_mikrotik", "initial_prompt": MT_PROMPT,
            "commands": {k: {"output": v, "help": "canned", "prompt": MT_PROMPT} for k, v in cmds.items()}
            | {"_default_": {"output": "bad command name (line 1 column 2)", "help": "unknown"}}}


def cisco_nos(accept: list[str]) -> dict[str, Any]:
    """IOS (privilege 15 login): show commands from fixtures; config lines in ``accept`` succeed."""
    enable, config = "{base_prompt}#", "{base_prompt}(config)#"
    show = {
        "terminal width 511": "", "terminal length 0": "",
        "show version": _text("cisco_show_version.txt"),
        "show ip interface brief": _text("cisco_ip_interface_brief.txt"),
        "show running-config": _text("cisco_running_config.txt"),
        "show policy-map interface GigabitEthernet0/1 output": _text("cisco_policy_down.txt"),
        "show policy-map interface GigabitEthernet0/0 output": _text("cisco_policy_up.txt"),
        "configure confirm": "", "configure revert now": "",
    }
    cmds: dict[str, Any] = {k: {"output": v, "help": "canned", "prompt": enable} for k, v in show.items()}
    cmds["configure terminal revert timer 5"] = {
        "output": "Rollback Confirmed Change: Rollback will be done after 5 minutes if not confirmed",
        "new_prompt": config, "help": "config mode", "prompt": enable}
    cmds["end"] = {"output": "", "new_prompt": enable, "help": "leave config mode", "prompt": config}
    for line in accept:
        cmds[line.strip()] = {"output": "", "help": "config line", "prompt": config}
    cmds["_default_"] = {"output": "% Invalid input detected at '^' marker.", "help": "unknown"}
    return {"name": "pantau_cisco_ios", "initial_prompt": enable, "commands": cmds}


@contextmanager
def fake_device(nos: dict[str, Any], username: str = USER) -> Iterator[int]:
    """Start one fake device on 127.0.0.1; yields its SSH port."""
    port = free_port()
    inventory = {
        "default": {"server": {"plugin": "ParamikoSshServer", "configuration": {"address": "127.0.0.1",
                                                                                 "timeout": 1}},
                    "shell": {"plugin": "CMDShell", "configuration": {}}},
        "hosts": {"core-fake": {"username": username, "password": PASSWORD, "port": port,
                                "nos": {"plugin": nos["name"]}}},
    }
    net = FakeNOS(inventory=inventory, plugins=[nos])
    net.start()
    try:
        wait_until(lambda: port_open(port), 10, "the fake device's SSH port")
        yield port
    finally:
        net.stop()
        _release_refused_logins()


def _release_refused_logins() -> None:
    """fakenos waits without a timeout (paramiko ``Transport.accept()``) for a channel that a refused
    login never opens, in a non-daemon thread that would keep the test run from exiting: close
    those server-side transports and wake the waiting threads."""
    import gc

    import paramiko

    for obj in gc.get_objects():
        if isinstance(obj, paramiko.Transport) and obj.server_mode:
            obj.close()
            with obj.lock:
                obj.server_accept_cv.notify_all()

"""One contract suite over every router driver: Linux (real sshd + tc in a namespace), MikroTik and
Cisco IOS (fakenos over real SSH, canned replies).

Each driver must: log in (and refuse wrong credentials with DeviceAuthError), report facts, read the
pantau-owned queues, compare a candidate (the same diff for every vendor), render commands in a
dry run without touching the router, commit with a read-back that tells the truth, and turn a
refused command into a CommitError that says the previous configuration is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from core.errors import CommitError, DeviceAuthError, DeviceUnreachable
from noc.bandwidth.drivers import DRIVERS, RouterDriver
from noc.bandwidth.drivers.base import Session, netmiko_session
from noc.bandwidth.shaping import AgencyQueue, ShapingConfig, diff
from noc.model import Device, DeviceKind, Shaping, SshAccess, Vendor
from noc.procs import free_port
from tests.fakenos_devices import PASSWORD, USER, cisco_nos, fake_device, mikrotik_nos
from tests.routers import router_lab

pytestmark = [
    pytest.mark.contract,
    # fakenos's own server threads raise when a refused or probing client goes away: not pantau's errors
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

M = 1_000_000
# what the fixture routers hold (tests/fixtures/routers), and a change: 50M of guarantee moved, one agency added
CURRENT = ShapingConfig(1000 * M, 500 * M, (
    AgencyQueue("dinkes", ("10.20.0.0/16",), 300 * M, 800 * M, 150 * M, 400 * M),
    AgencyQueue("disdik", ("10.30.0.0/16",), 200 * M, 600 * M, 100 * M, 300 * M),
))
DESIRED = ShapingConfig(1000 * M, 500 * M, (
    AgencyQueue("bappeda", ("10.40.0.0/16",), 100 * M, 400 * M, 50 * M, 200 * M),
    AgencyQueue("dinkes", ("10.20.0.0/16",), 350 * M, 800 * M, 150 * M, 400 * M),
    AgencyQueue("disdik", ("10.30.0.0/16",), 150 * M, 600 * M, 100 * M, 300 * M),
))


@dataclass
class Env:
    vendor: Vendor
    make: Callable[..., RouterDriver]  # make(dry_run=False, password=PASSWORD, port=None)
    stateful: bool  # a real router: a commit changes what it reads back
    hostname: str


def _device(vendor: Vendor, port: int, lan: str, wan: str, user: str, key_file: str = "",
            address: str = "127.0.0.1") -> Device:
    return Device("core", DeviceKind.ROUTER, address, vendor=vendor, ssh=SshAccess(user, port, None, key_file),
                  shaping=Shaping("isp", lan, wan))


def _maker(dev: Device) -> Callable[..., RouterDriver]:
    cls, device_type = DRIVERS[dev.vendor or Vendor.LINUX]

    def make(dry_run: bool = False, password: str | None = PASSWORD, port: int | None = None,
             device: Device | None = None) -> RouterDriver:
        d = device or dev
        if port is not None:
            d = replace(d, ssh=replace(d.ssh, port=port)) if d.ssh else d

        def connect() -> Session:
            return netmiko_session(d, device_type, password, timeout=5)

        return cls(d, connect, dry_run=dry_run)

    return make


@pytest.fixture(params=["linux", "mikrotik", "cisco_ios"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    vendor = Vendor(request.param)
    if vendor is Vendor.LINUX:
        with router_lab(tmp_path, 160) as lab:
            dev = _device(vendor, 22, lab.lan_if, "wan0", "root", str(lab.key_file), lab.mgmt_ip)
            make = _maker(dev)
            with make(password=None) as drv:  # the real router starts holding CURRENT
                drv.load_candidate(CURRENT)
                assert drv.commit().verified
            yield Env(vendor, lambda **kw: make(**{"password": None, **kw}), True, "")
        return
    probe = _maker(_device(vendor, 1, "GigabitEthernet0/1", "GigabitEthernet0/0", USER))(dry_run=True)
    accepted = probe.render(DESIRED, CURRENT)
    if vendor is Vendor.MIKROTIK:
        from noc.bandwidth.drivers.mikrotik import T_LINE

        line = T_LINE.format(commands="; ".join(accepted), restore="; ".join(probe.render_restore(CURRENT)))
        bad = replace(DESIRED, queues=DESIRED.queues[1:])  # a change the fake router refuses
        refused = T_LINE.format(commands="; ".join(probe.render(bad, CURRENT)),
                                restore="; ".join(probe.render_restore(CURRENT)))
        nos, user = mikrotik_nos([line], refuse=(refused,)), f"{USER}+ct511w4098h"
    else:
        nos, user = cisco_nos(accepted), USER
    with fake_device(nos, username=user) as port:
        yield Env(vendor, _maker(_device(vendor, port, "GigabitEthernet0/1", "GigabitEthernet0/0", USER)), False,
                  "core-ios" if vendor is Vendor.CISCO_IOS else "mt-core")


def test_facts(env: Env) -> None:
    with env.make() as drv:
        facts = drv.facts()
    assert facts.vendor == env.vendor.value
    assert facts.hostname and (not env.hostname or facts.hostname == env.hostname)
    assert facts.os_version and len(facts.interfaces) >= 2


def test_read_and_compare_give_the_same_diff_on_every_vendor(env: Env) -> None:
    with env.make() as drv:
        assert drv.read() == CURRENT
        drv.load_candidate(DESIRED)
        drift = drv.compare()
    assert drift == diff(DESIRED, CURRENT)
    assert [str(d) for d in drift] == [
        "+ bappeda: missing on the router (should be down 100.0 Mbit/s/400.0 Mbit/s, up 50.0 Mbit/s/200.0 Mbit/s, "
        "10.40.0.0/16)",
        "~ dinkes g_down: router has 300.0 Mbit/s, should be 350.0 Mbit/s",
        "~ disdik g_down: router has 200.0 Mbit/s, should be 150.0 Mbit/s",
    ]


def test_dry_run_renders_and_touches_nothing(env: Env) -> None:
    with env.make(dry_run=True) as drv:
        drv.load_candidate(DESIRED)
        result = drv.commit()
        assert result.dry_run and not result.changed and result.commands
        assert drv.read() == CURRENT


def test_commit_reads_back_and_tells_the_truth(env: Env) -> None:
    with env.make() as drv:
        drv.load_candidate(DESIRED)
        result = drv.commit()
        assert result.changed and result.commands
        if env.stateful:
            assert result.verified and drv.read() == DESIRED
            back = drv.rollback()
            assert back.verified and drv.read() == CURRENT
        else:
            # a canned router accepted every line but still prints the old queues: pantau must not call it done
            assert not result.verified and result.remaining == diff(DESIRED, CURRENT)


def test_refused_change_keeps_the_previous_configuration(env: Env, tmp_path: Path) -> None:
    if env.vendor is Vendor.LINUX:
        # the kernel refuses: the agency-facing interface does not exist on this router
        with env.make() as probe:
            dev = replace(probe.device, shaping=Shaping("isp", "nosuch0"))
        with env.make(device=dev) as drv:
            drv.load_candidate(DESIRED)
            with pytest.raises(CommitError) as err:
                drv.commit()
        with env.make() as drv:
            assert drv.read() == CURRENT
    elif env.vendor is Vendor.MIKROTIK:
        with env.make() as drv:
            drv.load_candidate(replace(DESIRED, queues=DESIRED.queues[1:]))
            with pytest.raises(CommitError) as err:
                drv.commit()
    else:
        with env.make() as drv:
            drv.load_candidate(replace(DESIRED, queues=(*DESIRED.queues, AgencyQueue(
                "bapenda", ("10.50.0.0/16",), M, 2 * M, M, 2 * M))))
            with pytest.raises(CommitError) as err:
                drv.commit()
    assert err.value.kept_previous
    assert "previous" in str(err.value)


def test_wrong_credentials_and_unreachable(env: Env, tmp_path: Path) -> None:
    if env.vendor is Vendor.LINUX:  # the lab router takes keys only: a key it does not know
        import subprocess

        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
        with env.make() as probe:
            assert probe.device.ssh is not None
            stranger = replace(probe.device, ssh=replace(probe.device.ssh, key_file=str(tmp_path / "stranger")))
        wrong = env.make(device=stranger)
    else:
        wrong = env.make(password="wrong")
    with pytest.raises(DeviceAuthError, match="refused SSH login"), wrong as drv:
        drv.facts()
    with pytest.raises(DeviceUnreachable, match="did not answer over SSH"), env.make(port=free_port()) as drv:
        drv.facts()


def test_counters_per_agency(env: Env) -> None:
    with env.make() as drv:
        counters = drv.counters()
    assert set(counters) == {"dinkes", "disdik"}
    if not env.stateful:
        assert counters["dinkes"].down_bytes == 81_000_000 and counters["dinkes"].up_bytes == 2_400_000
        assert counters["dinkes"].down_dropped == 10

"""Vendor configs rendered from one desired state, checked against golden files; inventory and diff logic.

Regenerate the golden files after a deliberate template change with PANTAU_UPDATE_GOLDEN=1 and
review the diff like any other change to what pantau sends to routers.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from core.errors import ConfigError
from noc.bandwidth.alloc import Rates
from noc.bandwidth.drivers import DRIVERS
from noc.bandwidth.drivers.linux import tc_rate
from noc.bandwidth.drivers.mikrotik import parse_queues, ros_rate
from noc.bandwidth.shaping import EMPTY, desired_for, diff, q, structural
from noc.inventory import parse_inventory
from noc.model import Device, DeviceKind, Shaping, SshAccess, Vendor
from tests.conftest import CITY_HEADER
from tests.contract.test_router_contract import CURRENT, DESIRED

pytestmark = pytest.mark.unit
GOLDEN = Path(__file__).parent.parent / "golden"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "routers"


def _driver(vendor: Vendor):  # type: ignore[no-untyped-def]
    cls, _ = DRIVERS[vendor]
    dev = Device("core", DeviceKind.ROUTER, "192.0.2.1", vendor=vendor, ssh=SshAccess("pantau"),
                 shaping=Shaping("isp", "GigabitEthernet0/1" if vendor is Vendor.CISCO_IOS else "lan0",
                                 "GigabitEthernet0/0"))

    def no_session():  # type: ignore[no-untyped-def]
        raise AssertionError("rendering must not open a session")

    return cls(dev, no_session)


@pytest.mark.parametrize("vendor", list(Vendor))
@pytest.mark.parametrize(("case", "actual"), [("full", EMPTY), ("change", CURRENT)])
def test_rendered_config_matches_golden(vendor: Vendor, case: str, actual: object) -> None:
    drv = _driver(vendor)
    current = CURRENT if case == "change" else EMPTY
    if vendor is Vendor.LINUX and case == "change":
        # rate-only changes keep the router's class ids; a new agency rebuilds the tree
        current = type(CURRENT)(CURRENT.down_bps, CURRENT.up_bps, tuple(
            type(x)(**{**x.__dict__, "ref": f"{0x10 + i:x}"}) for i, x in enumerate(CURRENT.queues)))
    text = "\n".join(drv.render(DESIRED, current)) + "\n"
    path = GOLDEN / f"{vendor.value}-{case}.txt"
    if os.environ.get("PANTAU_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"rendered {vendor.value} config differs from {path}"


def test_linux_rate_only_change_keeps_class_ids() -> None:
    drv = _driver(Vendor.LINUX)
    have = type(CURRENT)(CURRENT.down_bps, CURRENT.up_bps, tuple(
        type(x)(**{**x.__dict__, "ref": "2a"}) if x.agency == "dinkes" else x for x in CURRENT.queues))
    want = type(CURRENT)(CURRENT.down_bps, CURRENT.up_bps, tuple(
        type(x)(**{**x.__dict__, "g_down": 350_000_000}) if x.agency == "dinkes" else x for x in CURRENT.queues))
    assert not structural(diff(want, have))
    assert drv.render(want, have) == [
        "tc class change dev lan0 parent 1:1 classid 1:2a htb rate 350000000bit ceil 800000000bit",
        "tc class change dev ifb-lan0 parent 1:1 classid 1:2a htb rate 150000000bit ceil 400000000bit",
    ]


def test_vendor_rate_formats() -> None:
    assert tc_rate("30Mbit") == 30_000_000 and tc_rate("1500Kbit") == 1_500_000 and tc_rate("800bit") == 800
    assert ros_rate("300M") == 300_000_000 and ros_rate("1500k") == 1_500_000 and ros_rate("1G") == 10**9
    assert q(1_234_567) == 1_234_000 and q(10) == 1000


def test_routeros_print_detail_is_parsed_with_comments_and_wrapped_lines() -> None:
    entries = parse_queues((FIXTURES / "mikrotik_queue_print.txt").read_text())
    assert [e["name"] for e in entries] == ["pantau-root", "pantau-dinkes", "pantau-disdik"]
    assert entries[1]["max-limit"] == "400M/800M" and entries[1]["parent"] == "pantau-root"


CITY_SHAPED = CITY_HEADER.replace('name = "Dinas Kesehatan"', 'name = "Dinas Kesehatan"\nprefixes = ["10.20.0.0/16"]') \
    + textwrap.dedent("""
    [[devices]]
    id = "core"
    kind = "router"
    vendor = "mikrotik"
    address = "192.0.2.1"
    ssh = { username = "pantau", password = "env:CORE_PW" }
    shaping = { uplink = "isp", lan = "bridge-agencies" }

    [[allocations]]
    agency = "dinkes"
    uplink = "isp"
    guaranteed_down = "300.5 Mbit"
    ceiling_down = "800 Mbit"
    guaranteed_up = "150 Mbit"
    ceiling_up = "400 Mbit"
    floor_down = "100 Mbit"
    """)


def test_desired_config_covers_agencies_with_prefixes_quantised_to_kbit() -> None:
    inv = parse_inventory(CITY_SHAPED)
    rtr = inv.device("core")
    assert rtr is not None and rtr.shaping == Shaping("isp", "bridge-agencies")
    rates = {"dinkes": Rates(300_500_123, 800_000_000, 150_000_000, 400_000_000),
             "disdik": Rates(1, 2, 3, 4)}  # disdik has no prefixes: nothing to classify it by
    cfg = desired_for(rtr, inv, rates)
    assert [x.agency for x in cfg.queues] == ["dinkes"]
    assert cfg.queues[0].g_down == 300_500_000 and cfg.down_bps == 1_000_000_000


@pytest.mark.parametrize(("old", "new", "needle"), [
    ('"10.20.0.0/16"]', '"10.20.0.1/16"]', "is not a network prefix"),
    ('floor_down = "100 Mbit"', 'floor_down = "400 Mbit"', "is below the agency's floor_down"),
    ('lan = "bridge-agencies"', 'lan = "bad name!"', "is not an interface name"),
    ('uplink = "isp", lan', 'uplink = "nope", lan', "uplink 'nope' is not defined"),
    ('vendor = "mikrotik"', 'vendor = "juniper"', "juniper"),
    ('ssh = { username = "pantau", password = "env:CORE_PW" }', "", "needs vendor"),
])
def test_inventory_checks_the_bandwidth_fields(old: str, new: str, needle: str) -> None:
    parse_inventory(CITY_SHAPED)
    assert old in CITY_SHAPED
    with pytest.raises(ConfigError, match=needle):
        parse_inventory(CITY_SHAPED.replace(old, new))

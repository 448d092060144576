"""Pure SNMP logic: assembling interface rows, agency mapping by inventory or ifAlias."""

from __future__ import annotations

import pytest

from collectors.snmp import oids
from collectors.snmp.poller import build_interfaces
from noc.model import Device, DeviceKind, InterfaceMapping
from noc.snmp import interface_agency

pytestmark = pytest.mark.unit
C = oids.COLUMNS


def test_hc_counters_win_and_ifdescr_names_rows_without_ifname() -> None:
    cols = {
        C["descr"]: {1: "ether1", 2: "ether2", 3: "bridge"},
        C["name"]: {1: "ether1"},
        C["in_octets"]: {1: 5, 2: 7, 3: 9}, C["out_octets"]: {1: 6, 2: 8, 3: 10},
        C["hc_in_octets"]: {1: 2**40}, C["hc_out_octets"]: {1: 2**41},
        C["high_speed"]: {1: 1000}, C["speed"]: {2: 100_000_000},
        C["oper"]: {1: 1, 2: 2},
    }
    rows = {r.name: r for r in build_interfaces(cols)}
    assert (rows["ether1"].in_octets, rows["ether1"].bits, rows["ether1"].speed_bps) == (2**40, 64, 10**9)
    assert (rows["ether2"].in_octets, rows["ether2"].bits, rows["ether2"].up) == (7, 32, False)
    assert rows["ether2"].speed_bps == 100_000_000 and rows["bridge"].up is None


def test_duplicate_names_are_made_unique_and_rows_without_counters_skipped() -> None:
    cols = {C["descr"]: {1: "eth", 2: "eth", 3: "stack"}, C["in_octets"]: {1: 1, 2: 2},
            C["out_octets"]: {1: 1, 2: 2}}
    assert [r.name for r in build_interfaces(cols)] == ["eth", "eth#2"]


def test_agency_by_inventory_then_alias() -> None:
    dev = Device("rtr", DeviceKind.ROUTER, "10.99.0.1", interfaces=(InterfaceMapping("ether2", "dinkes"),))
    agencies = {"dinkes", "disdik"}
    assert interface_agency(dev, "ether2", "agency:disdik", agencies) == "dinkes"
    assert interface_agency(dev, "ether3", "Agency: DISDIK lantai 2", agencies) == "disdik"
    assert interface_agency(dev, "ether4", "to dinkes; agency=disdik", agencies) == "disdik"
    assert interface_agency(dev, "ether5", "agency:unknown", agencies) is None
    assert interface_agency(dev, "ether6", "management", agencies) is None
    assert interface_agency(dev, "ether7", None, agencies) is None

"""Inventory loading: every problem reported at once, with its place in the file."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from core.errors import ConfigError, SecretError
from noc.inventory import Secrets, load_inventory, parse_inventory
from noc.model import DeviceKind, SecretRef

pytestmark = pytest.mark.unit

GOOD = textwrap.dedent("""
    [city]
    name = "Kota Uji"

    [[uplinks]]
    id = "isp"
    down = "1 Gbit"
    up = "500 Mbit"

    [[agencies]]
    id = "dinkes"
    name = "Dinas Kesehatan"

    [[agencies]]
    id = "disdik"
    name = "Dinas Pendidikan"

    [[devices]]
    id = "dinkes-srv1"
    agency = "dinkes"
    kind = "server"
    address = "10.99.1.10"
    agent = true

    [[devices]]
    id = "core-rtr"
    kind = "router"
    vendor = "mikrotik"
    address = "10.99.0.1"
    snmp = { version = "3", user = "pantau", auth_key = "secret:core-auth", priv_key = "env:CORE_PRIV" }
    ssh = { username = "pantau", password = "secret:core-ssh" }
    interfaces = [ { name = "ether2", agency = "dinkes" }, { name = "ether3", agency = "disdik" } ]

    [[allocations]]
    agency = "dinkes"
    uplink = "isp"
    guaranteed_down = "300 Mbit"
    ceiling_down = "800 Mbit"
    guaranteed_up = "100 Mbit"
    ceiling_up = "300 Mbit"

    [[backup_policies]]
    agency = "dinkes"
    source = "dinkes-srv1"
    paths = ["/srv/simpus"]
    schedule = "daily 01:30"
    rpo = "26h"
    pusat_data_repo = "sftp:backup@10.99.5.2:/repos/dinkes"
    dr_repo = "sftp:backup@10.99.6.2:/repos/dinkes"
    password = "secret:dinkes-restic"
    retention = { daily = 7, weekly = 4 }
""")


def test_good_inventory_builds_the_model() -> None:
    inv = parse_inventory(GOOD)
    assert inv.city == "Kota Uji"
    assert inv.uplinks[0].down_bps == 10**9 and inv.uplinks[0].up_bps == 500 * 10**6
    rtr = inv.device("core-rtr")
    assert rtr is not None and rtr.kind is DeviceKind.ROUTER
    assert rtr.snmp is not None and rtr.snmp.auth_key == SecretRef("secret", "core-auth")
    assert rtr.agency_of_interface("ether3") == "disdik" and rtr.agency_of_interface("ether9") is None
    srv = inv.device("dinkes-srv1")
    assert srv is not None and srv.agency_of_interface("eth0") == "dinkes" and srv.agency_of_interface("lo") is None
    assert inv.backup_policies[0].rpo_s == 26 * 3600


def test_every_problem_is_reported_with_line_and_path() -> None:
    bad = GOOD.replace('community = "public"', "")
    bad = bad.replace('auth_key = "secret:core-auth"', 'auth_key = "hunter2"')
    bad = bad.replace('agency = "dinkes"\nkind = "server"', 'agency = "dinkez"\nkind = "server"')
    bad = bad.replace('ceiling_down = "800 Mbit"', 'ceiling_down = "2 Gbit"')
    bad = bad.replace('rpo = "26h"', 'rpo = "soon"')
    with pytest.raises(ConfigError) as exc:
        parse_inventory(bad, "city.toml")
    problems = exc.value.problems
    text = str(exc.value)
    assert len(problems) == 4, text
    assert "city.toml:20 devices[0] (dinkes-srv1).agency: agency 'dinkez' is not defined" in text
    assert "devices[1] (core-rtr).snmp.auth_key: credentials must not be written inline" in text
    assert "city.toml:38 allocations[0] (dinkes): ceiling_down (2000000000 bit/s) is above uplink 'isp'" in text
    assert "backup_policies[0] (dinkes).rpo: 'soon' is not a duration" in text


def test_guaranteed_rates_may_not_exceed_the_uplink() -> None:
    extra = GOOD + textwrap.dedent("""
        [[allocations]]
        agency = "disdik"
        uplink = "isp"
        guaranteed_down = "800 Mbit"
        ceiling_down = "900 Mbit"
        guaranteed_up = "10 Mbit"
        ceiling_up = "20 Mbit"
    """)
    with pytest.raises(ConfigError, match="guaranteed down rates on uplink 'isp' add up to 1100000000"):
        parse_inventory(extra)


def test_toml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2"):
        parse_inventory("[city]\nname = \n")


def test_unknown_keys_and_sections_are_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_inventory(GOOD.replace('agent = true', 'agent = true\nagnet = true', 1) + "\n[extras]\nx=1\n")
    assert "devices[0] (dinkes-srv1).agnet: unknown key" in str(exc.value)
    assert "extras: unknown section" in str(exc.value)


def test_secrets_resolve_from_env_and_a_private_file(tmp_path: Path) -> None:
    f = tmp_path / "secrets.toml"
    f.write_text('core-auth = "s3cret-auth"\n')
    os.chmod(f, 0o600)
    s = Secrets(f, environ={"CORE_PRIV": "privkey"})
    assert s.resolve(SecretRef("secret", "core-auth"), "SNMP on core-rtr") == "s3cret-auth"
    assert s.resolve(SecretRef("env", "CORE_PRIV"), "SNMP on core-rtr") == "privkey"
    with pytest.raises(SecretError, match="SNMP on core-rtr needs the environment variable NOPE"):
        s.resolve(SecretRef("env", "NOPE"), "SNMP on core-rtr")
    with pytest.raises(SecretError, match="missing from"):
        s.resolve(SecretRef("secret", "other"), "SSH to core-rtr")
    os.chmod(f, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        Secrets(f)


def test_demo_city_is_valid() -> None:
    inv = load_inventory(Path(__file__).parents[2] / "noc" / "demo" / "city.toml")
    assert len([d for d in inv.devices if d.agent]) == 3

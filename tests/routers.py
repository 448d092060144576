"""The router lab's city for tests: two agencies behind the lab's Linux router on one uplink."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from noc import lab as _lab
from noc.lab import RouterLab
from tests.netns import require_netns


@contextmanager
def router_lab(tmp: Path, subnet: int) -> Iterator[RouterLab]:
    """The lab router, or a skip with the reason where namespaces are not available."""
    require_netns()
    with _lab.router_lab(tmp, subnet) as lab:
        yield lab


def lab_inventory(lab: RouterLab, mode: str = "enforce", down: str = "100 Mbit", up: str = "100 Mbit") -> str:
    """A city whose two agencies sit behind the lab's router, on one uplink."""
    return textwrap.dedent(f"""\
        [city]
        name = "Kota Lab"

        [[uplinks]]
        id = "isp"
        down = "{down}"
        up = "{up}"

        [[agencies]]
        id = "dinkes"
        name = "Dinas Kesehatan"
        prefixes = ["{lab.agency_prefix('a')}"]

        [[agencies]]
        id = "disdik"
        name = "Dinas Pendidikan"
        prefixes = ["{lab.agency_prefix('b')}"]

        [[devices]]
        id = "rtr"
        kind = "router"
        vendor = "linux"
        address = "{lab.mgmt_ip}"
        ssh = {{ username = "root", key_file = "{lab.key_file}" }}
        shaping = {{ uplink = "isp", lan = "{lab.lan_if}", mode = "{mode}" }}

        [[allocations]]
        agency = "dinkes"
        uplink = "isp"
        guaranteed_down = "20 Mbit"
        ceiling_down = "40 Mbit"
        guaranteed_up = "15 Mbit"
        ceiling_up = "20 Mbit"
        floor_down = "5 Mbit"

        [[allocations]]
        agency = "disdik"
        uplink = "isp"
        guaranteed_down = "20 Mbit"
        ceiling_down = "30 Mbit"
        guaranteed_up = "15 Mbit"
        ceiling_up = "15 Mbit"
        floor_down = "5 Mbit"
        """)

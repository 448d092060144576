"""Numeric OIDs pantau reads (SNMPv2-MIB system group, IF-MIB ifTable and ifXTable).

pysnmp ships no compiled IF-MIB here and Debian's MIB files are absent, so names live here.
"""

from __future__ import annotations

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
# the same objects as GETNEXT starting points (GETBULK non-repeaters)
SYS_SCALARS = ("1.3.6.1.2.1.1.3", "1.3.6.1.2.1.1.5", "1.3.6.1.2.1.1.1")

IF_TABLE = "1.3.6.1.2.1.2.2.1"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1.1"

# column name -> OID of the column (rows are column.ifIndex)
COLUMNS: dict[str, str] = {
    "descr": f"{IF_TABLE}.2",
    "speed": f"{IF_TABLE}.5",
    "oper": f"{IF_TABLE}.8",
    "in_octets": f"{IF_TABLE}.10",
    "in_discards": f"{IF_TABLE}.13",
    "in_errors": f"{IF_TABLE}.14",
    "out_octets": f"{IF_TABLE}.16",
    "out_discards": f"{IF_TABLE}.19",
    "out_errors": f"{IF_TABLE}.20",
    "name": f"{IF_X_TABLE}.1",
    "in_ucast64": f"{IF_X_TABLE}.7",
    "out_ucast64": f"{IF_X_TABLE}.11",
    "hc_in_octets": f"{IF_X_TABLE}.6",
    "hc_out_octets": f"{IF_X_TABLE}.10",
    "high_speed": f"{IF_X_TABLE}.15",
    "alias": f"{IF_X_TABLE}.18",
}

# Packet counters are optional extras; the poller walks the columns it needs.
WALKED = ("descr", "speed", "oper", "in_octets", "in_discards", "in_errors", "out_octets", "out_discards",
          "out_errors", "name", "hc_in_octets", "hc_out_octets", "high_speed", "alias")

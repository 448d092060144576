"""Rate/duration parsing and the line-protocol writer (checked against influxdb-client's own)."""

from __future__ import annotations

import pytest

from collectors import metrics
from core.units import format_duration, format_rate, parse_duration, parse_rate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "bps"), [
    ("100 Mbit", 100_000_000), ("1 Gbit", 10**9), ("1.5gbit", 1_500_000_000), ("512 kbit/s", 512_000),
    ("20mbps", 20_000_000), (12345, 12345), ("800", 800),
])
def test_parse_rate(text: object, bps: int) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize("bad", ["fast", "-1 Mbit", "10 MB/s x", True, None, -5])
def test_parse_rate_refuses_with_examples(bad: object) -> None:
    with pytest.raises(ValueError, match=r"Mbit|negative"):
        parse_rate(bad)


def test_durations() -> None:
    assert parse_duration("26h") == 26 * 3600
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration(90) == 90.0
    with pytest.raises(ValueError, match="24h"):
        parse_duration("soon")
    assert format_duration(3 * 86400 + 4 * 3600 + 5) == "3d 4h"
    assert format_rate(12_300_000) == "12.3 Mbit/s"
    assert format_rate(None) == "-"


def test_line_protocol_matches_influxdb_client() -> None:
    from influxdb_client.client.write.point import Point

    tags = {"agency": "dinas kesehatan", "device": "srv,1", "iface": "eth=0", "source": "agent"}
    fields = {"rx_bytes": 123, "rx_bps": 1.5, "tx_bps": None}
    ours = metrics.line(metrics.IFACE, tags, fields, 1_700_000_000_000_000_000)
    p = Point("pantau_iface").time(1_700_000_000_000_000_000)
    for k, v in sorted(tags.items()):
        p = p.tag(k, v)
    p = p.field("rx_bytes", 123).field("rx_bps", 1.5)
    assert ours == p.to_line_protocol()


def test_line_refuses_names_outside_the_schema() -> None:
    with pytest.raises(KeyError, match="no field"):
        metrics.line(metrics.HOST, {"device": "x"}, {"bogus": 1}, 0)
    with pytest.raises(KeyError, match="no tag"):
        metrics.line(metrics.HOST, {"colour": "x"}, {"load1": 1.0}, 0)
    assert metrics.IFACE.series("rx_bps") == "pantau_iface_rx_bps"


def test_huge_counters_stay_valid_line_protocol() -> None:
    line = metrics.line(metrics.IFACE, {"device": "d"}, {"rx_bytes": 2**64 - 1}, 0)
    assert "rx_bytes=1.8446744073709552e+19" in line

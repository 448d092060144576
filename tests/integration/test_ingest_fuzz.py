"""Fuzzing the ingest API: hostile batches posted to a real collector process.

Hypothesis builds valid batches, then mutates one thing in each: any field of the wire schema set
to a hostile value (non-finite and extreme numbers, wrong types, huge, empty and control-character
strings, deep nesting), a field removed or added, a key given twice, the wrong agent, a replayed
batch, seqs out of order or late, garbage and absurdly nested bodies. For every case:

* the answer is a 200 or a 4xx whose message names the field (never a 5xx);
* a refusal left nothing in the state or the outbox;
* what was accepted lies within the wire schema's documented bounds in SQLite;
and at the end, every point in VictoriaMetrics is finite and within bounds.

``--hypothesis-profile=soak`` (see ``tests/conftest.py``) runs ten times as many cases.
"""

from __future__ import annotations

import http.client
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agents import wire
from collectors import metrics
from noc.state import StateStore
from tests.conftest import VM, wait_for

pytestmark = pytest.mark.integration
MIN_CASES = 5000

HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 1.7976931348623157e308, 5e-324, -1, -0.0,
                     2**63, 2**64, 2**64 - 1, -(2**63), 10**30, 1e19, 0.5, 1.0, 2**62 + 1]),
    st.floats(), st.integers(), st.integers(-(10**40), 10**40))
HOSTILE_STRINGS = st.one_of(
    st.sampled_from(["", " ", "\x00", "a\nb", "eth0\n", "x" * 100_000, "\ud800", "é", "../../etc/passwd", "srv-b",
                     "🙂", "\u202e", "a,b=c d", '"; DROP TABLE reports; --', "\r", "\x1b[31m"]),
    st.text(max_size=300))


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


HOSTILE_VALUES = st.one_of(HOSTILE_NUMBERS, HOSTILE_STRINGS,
                           st.sampled_from([None, True, False, [], {}, [1, 2], {"a": 1}, ["eth0"]]),
                           st.integers(1, 25).map(_nested))
FIELD_NAMES = st.sampled_from(["zz", "seq", "mono", "__proto__", "", "rx_bytes", "extra"]) | st.text(max_size=12)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _named(path: tuple[Any, ...]) -> str:
    """The name a message about this path must carry: the last key on it (the body itself at the top)."""
    keys = [p for p in path if isinstance(p, str)]
    return keys[-1] if keys else "body"


@dataclass
class City:
    """What the fuzzer has sent so far: the next seq, the agent's clocks and counters."""

    seq: int = 1
    mono: float = field(default_factory=time.monotonic)
    rx: int = 0
    sent: list[bytes] = field(default_factory=list)  # accepted bodies, for replays
    skipped: list[int] = field(default_factory=list)  # seqs left out, to be sent late


@dataclass(frozen=True)
class ReportPlan:
    skip_a_seq: bool
    mono_step: float
    rx_step: int
    cpu: float
    mem_used: int
    load1: float
    interfaces: int
    disk: bool
    backup: bool


@dataclass(frozen=True)
class Plan:
    """One case as drawn: every choice is drawn whatever the kind, so a draw never depends on what the
    server has seen (hypothesis needs a case's choices to replay the same way)."""

    reports: tuple[ReportPlan, ...]
    kind: str
    pick: int  # which path, replayed body or late seq (modulo how many there are)
    value: Any
    name: str
    garbage: bytes
    depth: int


REPORT_PLANS = st.builds(ReportPlan, st.booleans(), st.sampled_from([0.0, 0.0001, 0.5, 10.0]), st.integers(0, 10**6),
                         st.floats(0, 100), st.integers(0, 1000), st.floats(0, 64), st.integers(0, 3), st.booleans(),
                         st.integers(0, 4).map(lambda n: n == 0))
KINDS = ["valid", "set", "set", "set", "set", "delete", "add", "duplicate_key", "wrong_agent", "other_token", "replay",
         "out_of_order", "late", "garbage", "absurd_depth", "not_utf8", "escaped_quotes", "bad_encoding", "bad_token"]
PLANS = st.builds(Plan, st.lists(REPORT_PLANS, min_size=1, max_size=3).map(tuple), st.sampled_from(KINDS),
                  st.integers(0, 10**6), HOSTILE_VALUES, FIELD_NAMES, st.binary(max_size=200),
                  st.sampled_from([33, 1000, 100_000]))


def valid_batch(plan: Plan, city: City) -> dict[str, Any]:
    reports = []
    now = time.time()
    for rp in plan.reports:
        if rp.skip_a_seq and len(city.skipped) < 50:
            city.skipped.append(city.seq)
            city.seq += 1
        city.mono += rp.mono_step
        city.rx += rp.rx_step
        report: dict[str, Any] = {
            "seq": city.seq, "collected_at": now, "mono": city.mono, "boot_id": "b1", "boot_time": now - 10_000,
            "host": {"cpu_percent": rp.cpu, "mem_total": 1000, "mem_used": rp.mem_used, "load1": rp.load1},
            "interfaces": [{"name": f"eth{i}", "rx_bytes": city.rx, "tx_bytes": city.rx // 2, "up": True,
                            "speed_bps": 10**9} for i in range(rp.interfaces)],
        }
        if rp.disk:
            report["host"]["disks"] = [{"mount": "/", "total": 100, "used": 50}]
        if rp.backup:
            report["backups"] = [{"at": now - 60, "ok": True, "repo": "sftp:pd:/r", "snapshot_id": "abcdef12",
                                  "files": 1, "bytes": 2, "added": 3, "duration_s": 4.0, "warnings": [], "error": None}]
        city.seq += 1
        reports.append(report)
    return wire.make_batch("srv-a", reports, sent_at=time.time(), sent_mono=city.mono + 0.001, boot_id="b1")


@dataclass(frozen=True)
class Case:
    """One request: its body, which token, and what a refusal's message must name (None: any 4xx)."""

    kind: str
    body: bytes
    must_name: str | None
    token: str = "srv-a"
    headers: tuple[tuple[str, bytes], ...] = ()  # sent instead of the usual ones of that name


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def make_case(plan: Plan, city: City) -> Case:
    """The request a plan makes, given what the city has sent so far."""
    doc = valid_batch(plan, city)
    kind, value = plan.kind, plan.value
    paths = list(_paths(doc))
    keyed = [p for p in paths if p and isinstance(p[-1], str)]
    if kind == "set":
        path = paths[plan.pick % len(paths)]
        if path == ():
            return Case(kind, _dumps(value), "body")
        _at(doc, path[:-1])[path[-1]] = value
        return Case(kind, _dumps(doc), _named(path))
    if kind == "delete":
        path = keyed[plan.pick % len(keyed)]
        del _at(doc, path[:-1])[path[-1]]
        return Case(kind, _dumps(doc), path[-1])
    if kind == "add":
        dicts = [p for p in paths if isinstance(_at(doc, p), dict)]
        target = _at(doc, dicts[plan.pick % len(dicts)])
        if plan.name in target:
            return Case(kind, _dumps(doc), None)
        target[plan.name] = value
        return Case(kind, _dumps(doc), plan.name)
    if kind == "duplicate_key":
        path = keyed[plan.pick % len(keyed)]
        _at(doc, path[:-1])["\x00DUP\x00"] = value
        return Case(kind, _dumps(doc).replace(b'"\\u0000DUP\\u0000"', json.dumps(path[-1]).encode()), path[-1])
    if kind == "wrong_agent":
        doc["agent"] = "srv-b"
        return Case(kind, _dumps(doc), "agent")
    if kind == "other_token":  # srv-b's token for srv-a's batch
        return Case(kind, _dumps(doc), "agent", token="srv-b")
    if kind == "replay" and city.sent:
        return Case(kind, city.sent[-1 - plan.pick % min(50, len(city.sent))], None)
    if kind == "out_of_order" and len(doc["reports"]) > 1:
        doc["reports"].reverse()
        return Case(kind, _dumps(doc), "seq")
    if kind == "late" and city.skipped:
        late = city.skipped.pop(plan.pick % len(city.skipped))
        doc["reports"] = [doc["reports"][0] | {"seq": late}]
        return Case(kind, _dumps(doc), None)
    if kind == "garbage":
        return Case(kind, plan.garbage, None)
    if kind == "not_utf8":  # json.loads on bytes reads UTF-16/32 too: they must not slip past the depth check
        encoding = ("utf-16", "utf-16-le", "utf-32")[plan.pick % 3]
        return Case(kind, json.dumps(doc).encode(encoding), None)
    if kind == "escaped_quotes":  # once quadratic in the string scan
        return Case(kind, b'"' + b'\\"' * (plan.depth * 10), None)
    if kind == "bad_encoding":
        return Case(kind, plan.garbage, None, headers=(("Content-Encoding", b"gzip"),))
    if kind == "bad_token":
        token = b"Bearer pnt_\xff\xfe" + bytes(b | 0x80 for b in plan.garbage[:8])  # no CR/LF: http.client refuses
        return Case(kind, _dumps(doc), None, headers=(("Authorization", token),))
    if kind == "absurd_depth":
        n = plan.depth
        return Case(kind, b"[" * n + b"]" * n if plan.pick % 2 else b'{"a":' * n + b"1" + b"}" * n, None)
    return Case("valid", _dumps(doc), None)


# The outbox lines ingest writes; the NOC's own duties (uptime, allocations) write others meanwhile.
INGEST_LINES = " OR ".join(f"line LIKE '{m.name},%'" for m in (metrics.HOST, metrics.IFACE, metrics.DISK,
                                                              metrics.AGENCY, metrics.BACKUP_RUN))


def _fingerprint(db: sqlite3.Connection) -> tuple[Any, ...]:
    """Everything ingest writes, summed up: it changes if and only if a batch was stored."""
    return db.execute(f"""SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM outbox WHERE {INGEST_LINES}),
        (SELECT count(*) FROM backup_runs), (SELECT count(*) || '/' || total(rx_bytes) || '/' || total(tx_bytes)
        FROM rollups), (SELECT count(*) || '/' || total(rx_bytes) FROM iface_last),
        (SELECT last_seq || '/' || last_seen FROM device_state WHERE device='srv-a')""").fetchone()  # type: ignore[no-any-return]


def _within_bounds(db: sqlite3.Connection, seqs: tuple[int, ...], received: tuple[float, float]) -> None:
    """What was just accepted lies inside the documented bounds."""
    lo, hi = received
    marks = ",".join("?" * len(seqs))
    for seq, t in db.execute(f"SELECT seq, sample_time FROM reports WHERE agent='srv-a' AND seq IN ({marks})", seqs):
        assert lo - wire.MAX_REPORT_AGE_S - 1 <= t <= hi + 1, f"seq {seq} dated {t}"
    uptime, cpu, mem_used, mem_total, skew = db.execute(
        "SELECT uptime_s, cpu_percent, mem_used, mem_total, clock_skew_s FROM device_state WHERE device='srv-a'"
    ).fetchone()
    assert 0 <= uptime <= wire.WALL_MAX and 0 <= cpu <= 100 and 0 <= mem_used <= mem_total <= wire.I64
    assert abs(skew) <= wire.MAX_WALL_CLOCK_SKEW_S + (hi - lo) + 1
    for at, seconds in db.execute("SELECT at, duration_s FROM backup_runs"):
        assert 0 <= at <= hi + 1 and 0 <= seconds <= wire.MAX_BACKUP_SECONDS
    for rx, tx, secs in db.execute("SELECT rx_bytes, tx_bytes, seconds FROM rollups"):
        assert all(math.isfinite(v) and v >= 0 for v in (rx, tx, secs))
    for rx_bps, tx_bps in db.execute("SELECT rx_bps, tx_bps FROM iface_state"):
        assert all(v is None or (math.isfinite(v) and 0 <= v <= 400e9) for v in (rx_bps, tx_bps))


def test_hostile_batches_get_a_4xx_naming_the_field_and_leave_nothing(vm: VM, noc_factory: Any) -> None:
    noc = noc_factory(extra=["--rate-per-agent", "1000000"])
    tokens = {"srv-a": noc.token("srv-a"), "srv-b": noc.token("srv-b")}
    conn = http.client.HTTPConnection("127.0.0.1", noc.port, timeout=30)
    db = sqlite3.connect(f"file:{noc.db}?mode=ro", uri=True)
    city = City()
    seen: dict[str, int] = {}
    started = time.time()

    def post(case: Case) -> tuple[int, dict[str, Any]]:
        headers: dict[str, str | bytes] = {"Authorization": f"Bearer {tokens[case.token]}",
                                           "Content-Type": "application/json"}
        headers.update(case.headers)
        nonlocal conn
        try:
            conn.request("POST", "/api/v1/reports", body=case.body, headers=headers)
            resp = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the NOC may close a connection after refusing a body it could not read (HTTP lets it);
            # the request that meets the closed connection was never handled: send it once more
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", noc.port, timeout=30)
            conn.request("POST", "/api/v1/reports", body=case.body, headers=headers)
            resp = conn.getresponse()
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", noc.port, timeout=30)
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, {"error": raw.decode("utf-8", "replace")}

    cases_wanted = max(MIN_CASES, settings().max_examples)

    # No shrinking: the server remembers every case, so a case replayed later is another case.
    @settings(max_examples=cases_wanted, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(PLANS)
    def one(plan: Plan) -> None:
        case = make_case(plan, city)
        before = _fingerprint(db)
        t0 = time.time()
        status, body = post(case)
        t1 = time.time()
        seen[f"{case.kind} {status}"] = seen.get(f"{case.kind} {status}", 0) + 1
        assert status < 500, f"{case.kind}: HTTP {status} {body} for {case.body[:2000]!r}"
        if status == 200:
            seqs = tuple(r["seq"] for r in json.loads(case.body)["reports"])
            assert set(seqs) == set(body["accepted"]) | set(body["duplicates"]), (case.kind, body)
            if case.kind != "replay":
                city.sent.append(case.body)
            _within_bounds(db, seqs, (t0, t1))
            return
        assert 400 <= status < 500 and isinstance(body.get("error"), str) and body["error"], body
        message = body["error"] + " " + " ".join(body.get("problems", []))
        if case.must_name is not None:
            assert case.must_name[:20] in message or repr(case.must_name)[1:-1][:20] in message, (
                f"{case.kind}: the refusal does not name {case.must_name!r}: {message} for {case.body[:2000]!r}")
        assert _fingerprint(db) == before, f"{case.kind} refused with {status} but the state changed: {message}"

    one()
    total = sum(seen.values())
    print(f"\n{total} hostile and valid batches posted:", ", ".join(f"{k}: {v}" for k, v in sorted(seen.items())))
    assert total >= cases_wanted
    assert seen.get("valid 200", 0) > total // 20 and sum(v for k, v in seen.items() if " 4" in k) > total // 3
    assert "Traceback" not in noc.log.read_text() and "bug:" not in noc.log.read_text()

    # Every accepted point reaches VictoriaMetrics finite and within bounds.
    store = StateStore(noc.db)
    try:
        times = [t for (t,) in store.conn.execute("SELECT sample_time FROM reports WHERE agent='srv-a'")]
    finally:
        store.close()
    host_points = len({int(t * 1e9) // 10**6 for t in times})  # one point per millisecond and series
    noc.stop()
    noc.tsdb_url = vm.url
    noc.start()
    noc.wait_outbox_empty(timeout=300)
    conn.close()
    db.close()

    def host_points_in_vm() -> int:
        return sum(len(s["values"]) for s in vm.export('pantau_host_mem_used_bytes{device="srv-a"}'))

    wait_for(lambda: host_points_in_vm() == host_points, 60, "every accepted report's host sample in VictoriaMetrics")
    points = 0
    for s in vm.export('{__name__=~"pantau_(host|iface|agency|disk|backup_run)_.*"}'):
        for v, ts in zip(s["values"], s["timestamps"], strict=True):
            points += 1
            assert v is not None and math.isfinite(v) and abs(v) <= wire.I64, (s["metric"], v)
            assert started - wire.MAX_REPORT_AGE_S - 1 <= ts / 1000 <= time.time() + 1, (s["metric"], ts)
    print(f"{len(times)} reports accepted; {points} points in VictoriaMetrics, all finite and within bounds")

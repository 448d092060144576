"""Strict parsing and the wire schema's bounds: what no honest agent sends is refused, by field."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from agents import wire
from collectors import strict_json
from collectors.ingest import describe_errors
from core.errors import ReportError

pytestmark = pytest.mark.unit
NOW = 1_790_000_000.0


def loads(raw: bytes) -> Any:
    return strict_json.loads(raw, max_depth=wire.MAX_DEPTH, max_keys=wire.MAX_KEYS)


def valid() -> dict[str, Any]:
    report = {"seq": 1, "collected_at": NOW - 5, "mono": 995.0, "boot_id": "b1", "boot_time": NOW - 1000,
              "host": {"cpu_percent": 1.0, "mem_total": 10, "mem_used": 5, "load1": 0.5,
                       "disks": [{"mount": "/", "total": 10, "used": 1}]},
              "interfaces": [{"name": "eth0", "rx_bytes": 1, "tx_bytes": 2}],
              "backups": [{"at": NOW - 60, "ok": True, "repo": "sftp:pd:/r", "snapshot_id": "abcdef12", "files": 1,
                           "bytes": 2, "added": 3, "duration_s": 4.0, "warnings": ["w\nx"], "error": None}]}
    return wire.make_batch("srv-a", [report], sent_at=NOW, sent_mono=1000.0, boot_id="b1")


def test_a_valid_batch_passes_every_check() -> None:
    doc, non_finite = loads(json.dumps(valid()).encode())
    assert non_finite == 0 and describe_errors(doc) == [] and wire.plausibility_problems(doc) == []


@pytest.mark.parametrize("body", [b"[" * 33 + b"]" * 33, b'{"a":' * 33 + b"1" + b"}" * 33, b"[" * 100_000,
                                  b"[" * 100_000 + b"]" * 100_000, b"[}" * 40])
def test_deep_or_unbalanced_nesting_is_refused_before_parsing(body: bytes) -> None:
    with pytest.raises(ReportError, match="deeper than 32 levels"):
        loads(body)


@pytest.mark.parametrize("body", [b"{nope", b"[}", b"[[1]"])
def test_a_few_unbalanced_brackets_are_the_parser_s_to_report(body: bytes) -> None:
    with pytest.raises(ReportError, match="body is not valid JSON"):
        loads(body)


def test_brackets_inside_strings_are_text() -> None:
    doc, _ = loads(json.dumps({"a": "[[[[[[[[[[[[{{{{{{{{ \\\" ]]"}).encode())
    assert doc["a"].startswith("[[[[")
    assert strict_json.nesting_depth_within("[" * 8 + "]" * 8, 8)
    assert not strict_json.nesting_depth_within("[" * 9 + "]" * 9, 8)


def test_duplicate_keys_and_too_many_keys_are_refused() -> None:
    with pytest.raises(ReportError, match="'mono' appears twice"):
        loads(b'{"mono": 1, "mono": 2}')
    with pytest.raises(ReportError, match="33 keys"):
        loads(json.dumps({f"k{i}": i for i in range(33)}).encode())


@pytest.mark.parametrize("spelled", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_non_finite_numbers_are_refused_naming_the_field(spelled: str) -> None:
    raw = json.dumps(valid()).replace('"cpu_percent": 1.0', f'"cpu_percent": {spelled}').encode()
    doc, non_finite = loads(raw)
    assert non_finite == 1
    assert describe_errors(doc) == [f"reports[0].host.cpu_percent: {spelled} (not a finite number) is not of type "
                                    "'number'"]


@pytest.mark.parametrize(("path", "value", "problem"), [
    (("reports", 0, "seq"), 1.0, "reports[0].seq: 1.0 is not of type 'integer'"),
    (("reports", 0, "interfaces", 0, "rx_bytes"), 2**63, "is greater than the maximum"),
    (("reports", 0, "interfaces", 0, "name"), "eth0\n", "reports[0].interfaces[0].name: contains a control"),
    (("agent",), "srv-a\n", "agent: contains a control character"),
    (("reports", 0, "host", "disks", 0, "mount"), "/\r", "mount: contains a control character"),
    (("reports", 0, "boot_id"), "b\ud800", "boot_id: contains a control character or a lone surrogate"),
    (("reports", 0, "backups", 0, "snapshot_id"), "abcdef12\n", "snapshot_id"),
    (("reports", 0, "backups", 0, "error"), "bad\x1b[31m", "error"),
    (("reports", 0, "mono"), 1e300, "reports[0].mono: 1e+300 is greater than the maximum"),
    (("sent_at",), 1e300, "sent_at: 1e+300 is greater than the maximum"),
    (("reports", 0, "backups", 0, "duration_s"), 1e308, "duration_s: 1e+308 is greater than the maximum"),
    (("reports", 0, "host", "load1"), 1e300, "load1: 1e+300 is greater"),
])
def test_schema_bounds_name_the_field(path: tuple[Any, ...], value: Any, problem: str) -> None:
    doc = valid()
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    problems = describe_errors(doc)
    assert any(problem in p for p in problems), problems


def test_a_newline_is_allowed_in_messages_but_not_in_names() -> None:
    assert describe_errors(valid()) == []  # the valid batch carries a warning "w\nx"


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: d["reports"][0].update(mono=1000.5), "reports[0].mono: 1000.5 is after the batch's sent_mono"),
    (lambda d: d.update(sent_mono=400 * 86400.0), "reports[0].mono: the report is 400 days"),
    (lambda d: d["reports"][0].update(boot_id="b0", collected_at=NOW + 2 * 86400),
     "reports[0].collected_at: 172800 s after"),
    (lambda d: d["reports"][0].update(boot_id="b0", collected_at=NOW - 400 * 86400), "400 days older than its batch"),
    (lambda d: d["reports"][0].update(boot_time=NOW + 3 * 86400), "after collected_at: the host booted after"),
    (lambda d: d["reports"][0]["backups"][0].update(at=NOW + 30 * 86400), "reports[0].backups[0].at"),
    (lambda d: d["reports"][0]["backups"][0].update(at=0), "reports[0].backups[0].at: the run is 20718 days older"),
    (lambda d: d["reports"][0]["interfaces"].append({"name": "eth0", "rx_bytes": 0, "tx_bytes": 0}),
     "reports[0].interfaces: the name 'eth0' appears more than once"),
    (lambda d: d["reports"][0]["host"].update(mem_used=11), "reports[0].host.mem_used: more than mem_total"),
    (lambda d: d["reports"][0]["host"]["disks"][0].update(used=11), "disks[0].used: more than its total"),
])
def test_implausible_claims_are_refused_naming_the_field(change: Any, problem: str) -> None:
    doc = copy.deepcopy(valid())
    change(doc)
    assert describe_errors(doc) == []
    problems = wire.plausibility_problems(doc)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("years", [6, -6])
def test_a_clock_years_off_waits_instead_of_being_refused_for_good(years: int) -> None:
    doc = valid()
    doc["sent_at"] = NOW + years * 365.25 * 86400
    problem = wire.clock_problem(doc, NOW)
    assert problem is not None and problem.startswith("sent_at: the agent's clock is 2192 days ")
    assert ("ahead of" if years > 0 else "behind") in problem
    assert wire.clock_problem(valid(), NOW) is None


def test_a_report_of_this_boot_is_judged_by_its_monotonic_clock_only() -> None:
    """An NTP step of days between collecting and sending: the report is still dated right."""
    doc = valid()
    doc["reports"][0]["collected_at"] = NOW + 3 * 86400
    doc["reports"][0]["boot_time"] = NOW + 3 * 86400 - 1000
    assert wire.plausibility_problems(doc) == []


def test_a_report_from_an_earlier_boot_is_judged_by_wall_clock_only() -> None:
    doc = valid()
    doc["reports"][0].update(boot_id="b0", mono=5_000_000.0)  # the old boot ran longer than the new one
    assert wire.plausibility_problems(doc) == []


def test_the_openapi_document_states_the_cross_field_rules() -> None:
    from collectors.ingest import openapi_document

    schema = json.dumps(openapi_document())
    assert "within 157788000 s of the NOC's clock" in schema
    assert "not after its sent_mono" in schema and '"maximum": 4102444800.0' in schema


def test_the_agent_itself_sends_what_the_noc_accepts() -> None:
    from agents.probes import PsutilProbe  # what an agent really measures on this host

    probe = PsutilProbe()
    boot_id, boot_time = probe.boot()
    report = {"seq": 1, "collected_at": time.time(), "mono": time.monotonic(), "boot_id": boot_id,
              "boot_time": boot_time, **probe.collect()}
    doc = wire.make_batch("srv-a", [report], sent_at=time.time(), sent_mono=time.monotonic(), boot_id=boot_id)
    parsed, _ = loads(json.dumps(doc).encode())
    assert describe_errors(parsed) == [] and wire.plausibility_problems(parsed) == []


def test_hostile_bodies_are_refused_in_linear_time() -> None:
    """4 MB of \\" once took the string scan hours (quadratic); now one pass. No clock is read: a
    quadratic scan would only show as the test timing out."""
    for body in (b'"' + b'\\"' * 2_000_000, b'[' * 2_000_000):
        with pytest.raises(ReportError):
            loads(body)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_only_utf8_is_read(encoding: str) -> None:
    """json.loads on bytes also reads UTF-16/32, which a byte-wise depth check misread: deep nesting
    hidden that way reached the parser. Refused either as not UTF-8 or as too deep, never parsed."""
    for depth in (2, 40):
        body = ("[" * depth + '"\u4e22"' + "]" * depth).encode(encoding)
        with pytest.raises(ReportError, match=r"not UTF-8|not valid JSON|deeper than 32"):
            loads(body)

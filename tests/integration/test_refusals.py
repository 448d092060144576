"""Bad input gets a clear error and leaves nothing behind; the collector keeps serving others."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from agents.sender import Sender
from agents.wire import MAX_BODY_BYTES, make_batch
from tests.conftest import make_report

pytestmark = pytest.mark.integration



def _batch(agent: str, *seqs: int) -> dict[str, Any]:
    return make_batch(agent, [make_report(s) for s in seqs], sent_at=time.time(), sent_mono=time.monotonic(),
                      boot_id="b1")


def _post(url: str, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{url}/api/v1/reports", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_hostile_and_malformed_reports_are_refused_and_leave_nothing(noc_factory: Any) -> None:
    noc = noc_factory()
    tok_a, tok_b = noc.token("srv-a"), noc.token("srv-b")
    good = Sender(noc.url, tok_b)
    assert good.send(_batch("srv-b", 1)).ok

    cases: list[tuple[str, bytes, str | None, int, str]] = [
        ("no token", json.dumps(_batch("srv-a", 1)).encode(), None, 401, "missing bearer token"),
        ("wrong token", json.dumps(_batch("srv-a", 1)).encode(), "pnt_" + "x" * 43, 401, "unknown or revoked"),
        ("spoofed agent", json.dumps(_batch("srv-b", 2)).encode(), tok_a, 403,
         "this token belongs to agent 'srv-a'; it may not report for 'srv-b'"),
        ("not JSON", b"{nope", tok_a, 400, "not valid JSON"),
        ("negative counter", json.dumps(_batch("srv-a", 1) | {"reports": [
            make_report(1) | {"interfaces": [{"name": "eth0", "rx_bytes": -5, "tx_bytes": 1}]}]}).encode(), tok_a, 422,
         "reports[0].interfaces[0].rx_bytes: -5 is less than the minimum of 0"),
        ("unknown field", json.dumps(_batch("srv-a", 1) | {"evil": 1}).encode(), tok_a, 422, "'evil' was unexpected"),
        ("seq out of order", json.dumps(_batch("srv-a", 3, 2)).encode(), tok_a, 422, "strictly increasing"),
        ("oversized", b'{"x":"' + b"a" * (MAX_BODY_BYTES + 10) + b'"}', tok_a, 413, "limit"),
    ]
    for name, body, token, status, needle in cases:
        got, payload = _post(noc.url, body, token)
        assert got == status, (name, payload)
        assert needle in json.dumps(payload).replace('\\"', '"'), (name, payload)
        # the collector keeps serving a well-behaved agent meanwhile
    assert noc.ledger("srv-a") == [], "nothing refused may be stored"
    assert good.send(_batch("srv-b", 2)).ok
    assert noc.ledger("srv-b") == [1, 2]
    health = noc.health()
    assert health["refused"] == len(cases) and health["accepted"] == 2
    log = noc.log.read_text()
    assert "agent 'srv-a' tried to report as 'srv-b'" in log
    assert tok_a not in log and tok_b not in log, "tokens never appear in logs"


def test_resent_reports_are_recognised_not_counted_twice(noc_factory: Any) -> None:
    noc = noc_factory()
    s = Sender(noc.url, noc.token("srv-a"))
    first = s.send(_batch("srv-a", 1, 2, 3))
    again = s.send(_batch("srv-a", 2, 3, 4))
    assert first.ok and again.ok
    body = _post(noc.url, json.dumps(_batch("srv-a", 3, 4)).encode(), noc.token("srv-a"))
    assert body == (200, {"accepted": [], "duplicates": [3, 4]})
    assert noc.ledger("srv-a") == [1, 2, 3, 4]


def test_rate_limit_and_revoked_token(noc_factory: Any) -> None:
    import subprocess

    from noc.procs import PANTAU

    noc = noc_factory()
    tok = noc.token("srv-a")
    s = Sender(noc.url, tok)
    statuses = [s.send(_batch("srv-a", i)).status for i in range(1, 40)]
    assert 429 in statuses, "an agent flooding the collector is slowed down"
    limited = s.send(_batch("srv-a", 100))
    assert limited.status == 429 and limited.retry_after and limited.retry_after >= 1
    out = subprocess.run([*PANTAU, "agents", "revoke", "srv-a", "--db", str(noc.db), "--reason", "server retired",
                          "--operator", "budi"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    time.sleep(1.5)
    res = s.send(_batch("srv-a", 200))
    assert res.status == 401 and "revoked" in res.message
    audit = subprocess.run([*PANTAU, "audit", "list", "--db", str(noc.db)], capture_output=True, text=True,
                           timeout=30, check=True).stdout
    assert "agent.revoke" in audit and "budi" in audit and "server retired" in audit

"""Dashboards: valid Grafana JSON, built only from the metric schema, pushed over real HTTP."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from collectors import metrics
from core.errors import TransportError
from dashboards.catalog import DATASOURCE_UID
from dashboards.output import dashboard_json, push, write_provisioning

pytestmark = pytest.mark.unit
SCHEMA_SERIES = {m.series(f) for m in metrics.ALL for f in m.fields}


def test_dashboards_are_grafana_json() -> None:
    dashboards = dashboard_json()
    assert {d["uid"] for d in dashboards} == {"pantau-overview", "pantau-devices", "pantau-agency",
                                                "pantau-backups", "pantau-uptime"}
    for d in dashboards:
        assert d["schemaVersion"] >= 36 and d["title"].startswith("pantau")
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), "panel ids are unique"
        boxes = [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]) for p in d["panels"]]
        for i, a in enumerate(boxes):
            assert a[0] + a[2] <= 24
            for b in boxes[i + 1:]:
                overlap = a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
                assert not overlap, f"{d['uid']}: panels overlap at {a} and {b}"
        for p in d["panels"]:
            assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in p["targets"])
        for v in d["templating"]["list"]:
            assert v["datasource"]["uid"] == DATASOURCE_UID


def test_every_query_names_only_series_of_the_metric_schema() -> None:
    for d in dashboard_json():
        exprs = [t["expr"] for p in d["panels"] for t in p["targets"]] + [v["query"] for v in d["templating"]["list"]]
        for e in exprs:
            names = set(re.findall(r"\bpantau_[a-z0-9_]+", e))
            assert names and names <= SCHEMA_SERIES, f"{e}: {names - SCHEMA_SERIES}"


def test_provisioning_files(tmp_path: Path) -> None:
    written = write_provisioning(tmp_path, "http://vm:8428")
    ds = (tmp_path / "provisioning" / "datasources" / "pantau.yaml").read_text()
    assert f"uid: {DATASOURCE_UID}" in ds and "url: http://vm:8428" in ds and "type: prometheus" in ds
    provider = (tmp_path / "provisioning" / "dashboards" / "pantau.yaml").read_text()
    assert str((tmp_path / "dashboards").resolve()) in provider
    assert json.loads((tmp_path / "dashboards" / "pantau-devices.json").read_text())["uid"] == "pantau-devices"
    assert len(written) == 7


class _Grafana(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        reply = {"url": f"/d/{body['dashboard']['uid']}"} if type(self).status == 200 else {"message": "Unauthorized"}
        self.wfile.write(json.dumps(reply).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[tuple[str, type[_Grafana]]]:
    handler = type("G", (_Grafana,), {"requests": [], "status": 200})
    srv = HTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()


def test_push_sends_every_dashboard_with_the_token(grafana: tuple[str, type[_Grafana]]) -> None:
    url, handler = grafana
    assert push(url, "glsa_secret", folder_uid="noc") == ["/d/pantau-overview", "/d/pantau-devices",
                                                          "/d/pantau-agency", "/d/pantau-backups",
                                                          "/d/pantau-uptime"]
    assert [r["path"] for r in handler.requests] == ["/api/dashboards/db"] * 5
    r = handler.requests[0]
    assert r["auth"] == "Bearer glsa_secret" and r["body"]["overwrite"] is True and r["body"]["folderUid"] == "noc"
    assert r["body"]["dashboard"]["id"] is None and r["body"]["dashboard"]["panels"]


def test_push_errors_say_what_is_wrong(grafana: tuple[str, type[_Grafana]]) -> None:
    url, handler = grafana
    handler.status = 401
    with pytest.raises(TransportError, match=r"HTTP 401.*the API token is wrong or expired"):
        push(url, "bad")
    with pytest.raises(TransportError, match=r"cannot reach Grafana at http://127\.0\.0\.1:9"):
        push("http://127.0.0.1:9", "t", timeout=2)

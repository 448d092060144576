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
import yaml

from collectors import metrics
from core.errors import TransportError
from dashboards.catalog import DATASOURCE_UID
from dashboards.output import dashboard_json, datasource, push, write_provisioning

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
    ds = yaml.safe_load((tmp_path / "provisioning" / "datasources" / "pantau.yaml").read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"] == [{
        "name": "pantau VictoriaMetrics", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": "http://vm:8428", "isDefault": False, "editable": False}]
    provider = (tmp_path / "provisioning" / "dashboards" / "pantau.yaml").read_text()
    assert str((tmp_path / "dashboards").resolve()) in provider
    assert json.loads((tmp_path / "dashboards" / "pantau-devices.json").read_text())["uid"] == "pantau-devices"
    assert len(written) == 7


class _Grafana(BaseHTTPRequestHandler):
    """A recorder that answers like Grafana's API: data sources by uid, dashboards/db."""

    requests: ClassVar[list[dict[str, Any]]] = []
    datasources: ClassVar[dict[str, dict[str, Any]]] = {}
    status = 200

    def _answer(self, code: int, reply: dict[str, Any]) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(reply).encode())

    def _record(self) -> dict[str, Any] | None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        type(self).requests.append({"method": self.command, "path": self.path,
                                    "auth": self.headers["Authorization"], "body": body})
        return body

    def do_GET(self) -> None:
        self._record()
        ds = type(self).datasources.get(self.path.rsplit("/", 1)[-1])
        self._answer(200, ds) if ds else self._answer(404, {"message": "Data source not found"})

    def do_PUT(self) -> None:
        body = self._record()
        assert body is not None
        type(self).datasources[body["uid"]] = body
        self._answer(200, {"message": "Datasource updated"})

    def do_POST(self) -> None:
        body = self._record()
        assert body is not None
        if type(self).status != 200:
            return self._answer(type(self).status, {"message": "Unauthorized"})
        if self.path == "/api/datasources":
            type(self).datasources[body["uid"]] = body
            return self._answer(200, {"message": "Datasource added"})
        self._answer(200, {"url": f"/d/{body['dashboard']['uid']}"})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[tuple[str, type[_Grafana]]]:
    handler = type("G", (_Grafana,), {"requests": [], "datasources": {}, "status": 200})
    srv = HTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()


def test_push_creates_the_data_source_then_sends_every_dashboard_with_the_token(
        grafana: tuple[str, type[_Grafana]]) -> None:
    url, handler = grafana
    done = push(url, "glsa_secret", folder_uid="noc", datasource_url="http://vm:8428")
    assert done == [f"data source {DATASOURCE_UID} created (http://vm:8428)", "dashboard /d/pantau-overview",
                    "dashboard /d/pantau-devices", "dashboard /d/pantau-agency", "dashboard /d/pantau-backups",
                    "dashboard /d/pantau-uptime"]
    assert [(r["method"], r["path"]) for r in handler.requests] == [
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"), ("POST", "/api/datasources"),
        *[("POST", "/api/dashboards/db")] * 5]
    assert all(r["auth"] == "Bearer glsa_secret" for r in handler.requests)
    assert handler.datasources[DATASOURCE_UID] == datasource("http://vm:8428")
    r = handler.requests[2]
    assert r["body"]["overwrite"] is True and r["body"]["folderUid"] == "noc"
    assert r["body"]["dashboard"]["id"] is None and r["body"]["dashboard"]["panels"]
    # a second push updates the data source in place; one without --datasource-url finds it and only pushes
    assert push(url, "glsa_secret", datasource_url="http://vm2:8428")[0].endswith("updated (http://vm2:8428)")
    assert handler.requests[-6]["method"] == "PUT" and handler.datasources[DATASOURCE_UID]["url"] == "http://vm2:8428"
    assert len(push(url, "glsa_secret")) == 5


def test_push_errors_say_what_is_wrong(grafana: tuple[str, type[_Grafana]]) -> None:
    url, handler = grafana
    with pytest.raises(TransportError, match=r"has no data source with uid 'pantau-vm'.*--datasource-url"):
        push(url, "t")
    assert [r["method"] for r in handler.requests] == ["GET"], "no dashboard is pushed that would show nothing"
    handler.status = 401
    with pytest.raises(TransportError, match=r"refused data source 'pantau-vm': HTTP 401.*token is wrong or expired"):
        push(url, "bad", datasource_url="http://vm:8428")
    with pytest.raises(TransportError, match=r"cannot reach Grafana at http://127\.0\.0\.1:9"):
        push("http://127.0.0.1:9", "t", timeout=2)

"""Dashboard JSON, Grafana provisioning files, and pushing through Grafana's HTTP API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from core.errors import TransportError
from dashboards.catalog import ALL, DATASOURCE_UID, build


def dashboard_json(uid: str | None = None) -> list[dict[str, Any]]:
    """Every dashboard (or one by uid) as Grafana dashboard JSON."""
    out = []
    for spec in ALL:
        if uid is None or spec.uid == uid:
            out.append(json.loads(json.dumps(build(spec).to_json_data(), cls=DashboardEncoder)))
    return out


def write_provisioning(out: Path, datasource_url: str) -> list[Path]:
    """Write dashboards and provisioning YAML (data source + dashboard provider) under ``out``."""
    dash_dir = out / "dashboards"
    prov = out / "provisioning"
    (prov / "datasources").mkdir(parents=True, exist_ok=True)
    (prov / "dashboards").mkdir(parents=True, exist_ok=True)
    dash_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for d in dashboard_json():
        path = dash_dir / f"{d['uid']}.json"
        path.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        written.append(path)
    ds = prov / "datasources" / "pantau.yaml"
    # JSON scalars are YAML scalars: the same fields as the API push, quoted safely
    fields = [f"{k}: {json.dumps(v)}" for k, v in {**datasource(datasource_url), "editable": False}.items()]
    ds.write_text("apiVersion: 1\ndatasources:\n  - " + "\n    ".join(fields) + "\n")
    provider = prov / "dashboards" / "pantau.yaml"
    provider.write_text(
        "apiVersion: 1\nproviders:\n  - name: pantau\n    folder: pantau\n    type: file\n"
        "    disableDeletion: true\n    allowUiUpdates: false\n"
        f"    options:\n      path: {dash_dir.resolve()}\n")
    return [*written, ds, provider]


def datasource(url: str) -> dict[str, Any]:
    """The data source every panel names by uid: VictoriaMetrics through Grafana's Prometheus type."""
    return {"name": "pantau VictoriaMetrics", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
            "url": url, "isDefault": False}


def push(url: str, token: str, *, folder_uid: str | None = None, datasource_url: str | None = None,
         timeout: float = 15.0) -> list[str]:
    """Make sure Grafana has pantau's data source, then create or replace every dashboard; what was done.

    With ``datasource_url`` the data source is created or updated (``/api/datasources``); without it,
    it must already exist (provisioned), or every panel would be empty — that is an error, said so."""
    api = _Api(url, token, timeout)
    done = []
    path = f"/api/datasources/uid/{DATASOURCE_UID}"
    exists = api.call("GET", path, None, what=f"data source {DATASOURCE_UID!r}", missing_ok=True) is not None
    if datasource_url is not None:
        body = datasource(datasource_url)
        api.call("PUT" if exists else "POST", path if exists else "/api/datasources", body,
                 what=f"data source {DATASOURCE_UID!r}")
        done.append(f"data source {DATASOURCE_UID} {'updated' if exists else 'created'} ({datasource_url})")
    elif not exists:
        raise TransportError(f"Grafana at {url} has no data source with uid {DATASOURCE_UID!r}, which every pantau "
                             "panel queries; pass --datasource-url (VictoriaMetrics as Grafana reaches it) to create "
                             "it, or provision it from `pantau dashboards build`")
    for d in dashboard_json():
        body = {"dashboard": {**d, "id": None}, "overwrite": True, "message": "pantau dashboards push"}
        if folder_uid:
            body["folderUid"] = folder_uid
        reply = api.call("POST", "/api/dashboards/db", body, what=f"dashboard {d['uid']!r}") or {}
        done.append(f"dashboard {reply.get('url', d['uid'])}")
    return done


_HINTS = {401: "the API token is wrong or expired",
          403: "the token may not do this (dashboards need the Editor role, data sources Admin)",
          412: "one with this uid or title exists elsewhere"}


class _Api:
    """Grafana's HTTP API with a service-account token; errors say what was refused and why."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None, *, what: str,
             missing_ok: bool = False) -> dict[str, Any] | None:
        req = urllib.request.Request(  # noqa: S310 - the operator's Grafana URL
            self.url + path, data=None if body is None else json.dumps(body).encode(), method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310
                reply = json.loads(r.read() or b"{}")
                return reply if isinstance(reply, dict) else {}
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            detail = exc.read(2000).decode("utf-8", "replace")
            hint = _HINTS.get(exc.code, "")
            raise TransportError(f"Grafana at {self.url} refused {what}: HTTP {exc.code} {detail[:300]}"
                                 + (f" ({hint})" if hint else "")) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TransportError(f"cannot reach Grafana at {self.url}: {getattr(exc, 'reason', exc)}") from exc

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
    ds.write_text(
        "apiVersion: 1\ndatasources:\n"
        f"  - name: pantau VictoriaMetrics\n    uid: {DATASOURCE_UID}\n    type: prometheus\n    access: proxy\n"
        f"    url: {datasource_url}\n    isDefault: false\n    editable: false\n")
    provider = prov / "dashboards" / "pantau.yaml"
    provider.write_text(
        "apiVersion: 1\nproviders:\n  - name: pantau\n    folder: pantau\n    type: file\n"
        "    disableDeletion: true\n    allowUiUpdates: false\n"
        f"    options:\n      path: {dash_dir.resolve()}\n")
    return [*written, ds, provider]


def push(url: str, token: str, *, folder_uid: str | None = None, timeout: float = 15.0) -> list[str]:
    """Create or replace every dashboard through ``POST /api/dashboards/db``; returns their URLs."""
    done = []
    for d in dashboard_json():
        body: dict[str, Any] = {"dashboard": {**d, "id": None}, "overwrite": True,
                                "message": "pantau dashboards push"}
        if folder_uid:
            body["folderUid"] = folder_uid
        req = urllib.request.Request(  # noqa: S310 - the operator's Grafana URL
            url.rstrip("/") + "/api/dashboards/db", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
                done.append(json.loads(r.read() or b"{}").get("url", d["uid"]))
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            hint = {401: "the API token is wrong or expired", 403: "the token may not edit dashboards",
                    412: "a dashboard with this uid/title exists elsewhere"}.get(exc.code, "")
            raise TransportError(f"Grafana at {url} refused dashboard {d['uid']!r}: HTTP {exc.code} {detail[:300]}"
                                 + (f" ({hint})" if hint else "")) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TransportError(f"cannot reach Grafana at {url}: {getattr(exc, 'reason', exc)}") from exc
    return done

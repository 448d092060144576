"""Run every dashboard panel's query, as Grafana would ask it, against a real VictoriaMetrics.

Template variables are resolved through the store (``label_values``) and ``$__range`` becomes the
15 minutes Grafana asks for; a query that returns nothing for every value of its variable is
*empty*, a series without a label its legend prints is a *legend* problem.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from dashboards.catalog import ALL
from noc import procs


@dataclass
class PanelRun:
    checked: int = 0
    empty: list[str] = field(default_factory=list)  # "dashboard uid / panel title :: expr"
    legend: list[str] = field(default_factory=list)
    no_values: list[str] = field(default_factory=list)  # dashboards whose variable lists nothing

    def empty_panels(self) -> set[str]:
        return {e.split(" :: ", 1)[0] for e in self.empty}


def _values(url: str, query: str) -> list[str]:
    """Resolve a Grafana ``label_values(selector, label)`` variable query against the store."""
    selector, label = query[len("label_values("):-1].rsplit(",", 1)
    q = urllib.parse.urlencode({"match[]": selector.strip()})
    data = procs.http_json(f"{url}/api/v1/label/{label.strip()}/values?{q}")
    return list(data["data"])  # type: ignore[index]


def _range(url: str, expr: str, end: float) -> list[dict[str, Any]]:
    # as Grafana asks it for the last 15 minutes; a 5 s step so seconds-old data is inside
    q = urllib.parse.urlencode({"query": expr, "start": end - 900, "end": end + 10, "step": 5})
    data = procs.http_json(f"{url}/api/v1/query_range?{q}")
    return data["data"]["result"]  # type: ignore[index,no-any-return]


def run_every_panel(url: str, end: float | None = None) -> PanelRun:
    """Every query of every shipped dashboard, over the 15 minutes before ``end`` (default now)."""
    end = time.time() if end is None else end
    run = PanelRun()
    for spec in ALL:
        values = _values(url, spec.variable_query)
        if not values:
            run.no_values.append(spec.uid)
        for panel in spec.panels:
            for q in panel.queries:
                run.checked += 1
                hits: list[dict[str, Any]] = []
                for v in values or [""]:
                    hits = _range(url, q.expr.replace(f"${spec.variable}", v).replace("$__range", "15m"), end)
                    if hits:
                        break
                if not hits:
                    run.empty.append(f"{spec.uid} / {panel.title} :: {q.expr} (tried {values})")
                for s in hits:
                    missing = q.legend_labels - set(s["metric"])
                    if missing:
                        run.legend.append(f"{spec.uid} / {panel.title}: legend needs {missing}, "
                                          f"series has {s['metric']}")
    return run


def total_queries() -> int:
    return sum(len(p.queries) for s in ALL for p in s.panels)

"""The chart's Grafana dashboards as queries a test can run: every panel target's PromQL, with
Grafana's template variables replaced by values a test chooses.

Reads ``charts/kubetune/dashboards/*.json``; :func:`export_ranges` also queries a Prometheus
over HTTP for ``hack/render-dashboards.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

DASHBOARDS = Path(__file__).resolve().parents[3] / "charts" / "kubetune" / "dashboards"
METRIC = re.compile(r"\bkubetune_[a-z_]+\b")
VARIABLE = re.compile(r"\$\{?(__[a-z_]+|[a-zA-Z_][a-zA-Z0-9_]*)\}?")


@dataclasses.dataclass(frozen=True)
class Query:
    dashboard: str  # file stem: training, rollouts, operator
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}"

    def substituted(self, variables: Mapping[str, str]) -> str:
        """``expr`` with ``$name``, ``${name}`` and Grafana's ``$__range`` style globals replaced;
        a variable missing from ``variables`` is an error, not left in the query."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise KeyError(f"{self}: no value for ${name} in {self.expr!r}")
            return variables[name]

        return VARIABLE.sub(value, self.expr)

    def metrics(self) -> set[str]:
        return set(METRIC.findall(self.expr))


def load(directory: Path = DASHBOARDS) -> dict[str, dict[str, Any]]:
    """Every dashboard, by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def queries(directory: Path = DASHBOARDS) -> list[Query]:
    """Every target of every panel (rows' nested panels included), in dashboard order."""
    found = []
    for stem, dashboard in load(directory).items():
        stack = list(dashboard.get("panels", []))
        while stack:
            panel = stack.pop(0)
            stack[:0] = panel.get("panels", [])
            for target in panel.get("targets", []):
                found.append(Query(stem, panel["title"], target["refId"], target["expr"]))
    return found


def export_ranges(
    url: str, namespace: str, start: float, end: float, path: Path, *, source: str, step: float = 2.0
) -> None:
    """Every panel query over ``start``..``end`` (``/api/v1/query_range``) from the Prometheus at
    ``url``, with ``namespace`` selected, written to ``path`` as JSON for
    ``hack/render-dashboards.py``; ``source`` says in words where the data came from."""
    out = []
    for query in queries():
        # a graph evaluates $__rate_interval at each step, a table or stat $__range once
        variables = {"namespace": namespace, "__rate_interval": "20s", "__range": f"{int(end - start) + 30}s"}
        response = requests.post(
            f"{url}/api/v1/query_range",
            data={"query": query.substituted(variables), "start": start, "end": end, "step": step},
            timeout=30,
        )
        response.raise_for_status()
        result = response.json()["data"]["result"]
        out.append({"dashboard": query.dashboard, "panel": query.panel, "ref": query.ref, "result": result})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"namespace": namespace, "source": source, "start": start, "end": end, "queries": out})
    )

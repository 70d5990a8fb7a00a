#!/usr/bin/env python3
"""Draw the chart's Grafana dashboards from panel data a test exported: docs/images/dashboard-*.png.

Grafana cannot run here (no Debian package, no binary downloads), so this is a rendering of the
panels' data with matplotlib, laid out by each dashboard's gridPos, not a Grafana screenshot.
The data comes from a real run: the e2e test writes every panel query's range result when
KUBETUNE_DASHBOARD_DATA names a file::

    KUBETUNE_DASHBOARD_DATA=/tmp/kubetune-dashboard-data.json \\
        .venv/bin/python -m pytest tests/e2e -q   # plus the KUBETUNE_REQUIRE_* of the README
    .venv/bin/python hack/render-dashboards.py /tmp/kubetune-dashboard-data.json

Needs matplotlib (the dev extra).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the headless backend

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = REPO / "charts" / "kubetune" / "dashboards"
OUT = REPO / "docs" / "images"
BACKGROUND, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLOURS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#b877d9", "#f2495c", "#8ab8ff", "#fade2a"]
UNITS = {
    "percentunit": (100.0, "%"),
    "percent": (1.0, "%"),
    "s": (1.0, "s"),
    "h": (1.0, "h"),
    "reqps": (1.0, "/s"),
}


def legend(fmt: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt or "")
    if len(text) > 44:  # revision hashes are long; Grafana would truncate too
        text = text[:41] + "..."
    if text.strip():
        return text.strip()
    rest = [
        v for k, v in sorted(labels.items()) if k not in ("__name__", "job", "instance", "namespace", "name")
    ]
    head = f"{labels['namespace']}/{labels['name']}" if "name" in labels and "namespace" in labels else ""
    return " ".join([head, *rest]).strip() or "value"


def draw_panel(
    ax: Any, panel: dict[str, Any], results: dict[str, list[dict[str, Any]]], start: float, per: float
) -> None:
    ax.set_facecolor(PANEL)
    ax.set_axisbelow(True)
    for spine in ax.spines.values():
        spine.set_color(GRID)
    ax.tick_params(colors=TEXT, labelsize=7)
    ax.set_title(panel["title"], color=TEXT, fontsize=9, loc="left", pad=4)
    unit = panel["fieldConfig"]["defaults"].get("unit")
    scale, suffix = UNITS.get(unit or "", (1.0, ""))
    series = []
    for target in panel["targets"]:
        for item in results.get(target["refId"], []):
            points = [
                (float(t) - start, float(v) * scale) for t, v in item["values"] if math.isfinite(float(v))
            ]
            if points:
                series.append((legend(target.get("legendFormat", ""), item["metric"]), points))
    if not series:
        ax.text(0.5, 0.5, "No data", color=TEXT, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if panel["type"] == "timeseries":
        bars = panel["fieldConfig"]["defaults"].get("custom", {}).get("drawStyle") == "bars"
        xs_all = sorted({x for _name, points in series for x, _y in points})
        step = min((b - a for a, b in itertools.pairwise(xs_all)), default=1.0)
        stacked: dict[float, float] = defaultdict(float)  # bars stack, as the panel's stacking says
        for i, (name, points) in enumerate(series[:8]):
            xs, ys = zip(*points, strict=True)
            colour = COLOURS[i % len(COLOURS)]
            if bars:
                bottoms = [stacked[x] for x in xs]
                ax.bar(
                    [x / per for x in xs],
                    ys,
                    width=0.75 * step / per,
                    bottom=bottoms,
                    color=colour,
                    label=name,
                )
                for x, y in points:
                    stacked[x] += y
            else:
                ax.step([x / per for x in xs], ys, where="post", color=colour, label=name, linewidth=1.4)
        ax.grid(color=GRID, linewidth=0.5)
        ax.set_xlabel(f"{'seconds' if per == 1 else 'minutes'} into the run", color=TEXT, fontsize=7)
        if suffix:
            ax.yaxis.set_major_formatter(lambda v, _p: f"{v:g}{suffix}")
        ax.legend(fontsize=6, loc="best", facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, ncol=2)
        return
    # bargauge, stat, table: the last value of each series, as horizontal bars
    names = [name for name, _ in series][:8]
    values = [points[-1][1] for _, points in series][:8]
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(values))]
    ax.set_axisbelow(True)
    ax.barh(range(len(values)), values, color=colours, height=0.6 if len(values) > 1 else 0.35)
    ax.set_yticks(range(len(values)), names, fontsize=7, color=TEXT)
    ax.invert_yaxis()
    ax.grid(axis="x", color=GRID, linewidth=0.5)
    top = max(values) if values else 1
    for i, v in enumerate(values):
        ax.text(v + top * 0.01, i, f"{v:.3g}{suffix}", color=TEXT, va="center", fontsize=7)
    most = panel["fieldConfig"]["defaults"].get("max")
    ax.set_xlim(0, (most * scale if most is not None else (top or 1)) * 1.15)  # room for the labels


def render(stem: str, data: dict[str, Any], out: Path) -> Path:
    dashboard = json.loads((DASHBOARDS / f"{stem}.json").read_text())
    by_panel: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for q in data["queries"]:
        if q["dashboard"] == stem:
            by_panel[q["panel"]][q["ref"]] = q["result"]
    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_h = 0.42  # inches per grid row
    fig = plt.figure(figsize=(16, rows * unit_h + 0.9), facecolor=BACKGROUND)
    title_h = 0.9 / (rows * unit_h + 0.9)
    fig.text(0.01, 1 - title_h / 2, dashboard["title"], color=TEXT, fontsize=14, va="center", weight="bold")
    fig.text(
        0.99,
        1 - title_h / 2,
        f"namespace = {'All' if data['namespace'] == '.*' else data['namespace']}  ·  "
        f"data: {data.get('source', 'unknown')}, scraped by a real Prometheus  ·  "
        "drawn with matplotlib, not Grafana",
        color="#8e8e8e",
        fontsize=8,
        va="center",
        ha="right",
    )
    for panel in panels:
        g = panel["gridPos"]
        pad_x, pad_y = 0.035, 0.05
        left = g["x"] / 24 + pad_x * g["w"] / 24 + 0.012
        width = g["w"] / 24 * (1 - pad_x) - 0.02
        bottom = (1 - title_h) * (1 - (g["y"] + g["h"]) / rows) + pad_y * 0.5 + 0.02
        height = (1 - title_h) * g["h"] / rows - pad_y - 0.02
        if panel["type"] in ("bargauge", "stat", "table"):
            left += 0.1  # room for the bar labels
            width -= 0.1
        ax = fig.add_axes((left, bottom, width, height))
        per = 1.0 if data["end"] - data["start"] < 300 else 60.0
        draw_panel(ax, panel, by_panel.get(panel["title"], {}), data["start"], per)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"dashboard-{stem}.png"
    fig.savefig(path, dpi=90, facecolor=BACKGROUND)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="JSON the e2e test wrote (KUBETUNE_DASHBOARD_DATA)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--dashboard", action="append", help="file stem; default: every dashboard")
    args = parser.parse_args(argv)
    data = json.loads(args.data.read_text())
    stems = args.dashboard or sorted(p.stem for p in DASHBOARDS.glob("*.json"))
    for stem in stems:
        print(render(stem, data, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

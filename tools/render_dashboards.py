"""Render the cluster's Grafana dashboards to PNG pictures for the README, offline, from their JSON.

Grafana itself is not here, so each panel is drawn with matplotlib from what its query returns when a real
Prometheus holding the synthetic cluster (tests/components/synthetic_metrics.py, a sick cluster on
purpose) evaluates it: the layout is the dashboard's own grid, the numbers are the query's, the look is
only an approximation of Grafana's. Needs Debian's `prometheus` package and matplotlib (not a dependency
of azcluster):

    python3 -m venv /tmp/mpl && /tmp/mpl/bin/pip install matplotlib
    PYTHONPATH=. /tmp/mpl/bin/python tools/render_dashboards.py docs/dashboards overview gpus
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "components" / "catalog" / "dashboards"
GRID_COLUMNS = 24
ROW_INCHES = 0.42
WIDTH_INCHES = 16.0
BUILT_IN = {"__rate_interval": "2m", "__interval": "30s", "__range": "1h"}


def substitute(expr: str, variables: dict[str, dict[str, Any]], values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in BUILT_IN:
            return BUILT_IN[name]
        if name in values:
            return values[name]
        return variables[name].get("allValue") or ".*"

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def legend(template: str, labels: dict[str, str]) -> str:
    if not template or template == "__auto":
        inner = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
        return inner or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def render(board: dict[str, Any], prometheus: Any, values: dict[str, str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variables = {v["name"]: v for v in board["templating"]["list"]}
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"])
    figure = plt.figure(figsize=(WIDTH_INCHES, rows * ROW_INCHES + 0.8), facecolor="#111217")
    figure.suptitle(
        board["title"].replace("azcluster:", f"{values['cluster']}:"), color="white", x=0.01, ha="left"
    )
    top = 1 - 0.8 / (rows * ROW_INCHES + 0.8)
    for panel in board["panels"]:
        grid = panel["gridPos"]
        chart = panel["type"] in ("timeseries", "state-timeline")
        left = grid["x"] / GRID_COLUMNS + (0.03 if chart else 0.004)
        width = grid["w"] / GRID_COLUMNS - (0.036 if chart else 0.008)
        height = grid["h"] / rows * top - (0.05 if chart else 0.03)
        bottom = top - (grid["y"] + grid["h"]) / rows * top + (0.025 if chart else 0.006)
        axes = figure.add_axes((left, bottom, width, height), facecolor="#181b1f")
        axes.set_title(panel["title"], color="#ccccdc", fontsize=9, loc="left")
        for spine in axes.spines.values():
            spine.set_color("#2c3235")
        axes.tick_params(colors="#8e8e8e", labelsize=7)
        queries = [
            (substitute(t["expr"], variables, values), t.get("legendFormat", "")) for t in panel["targets"]
        ]
        kind = panel["type"]
        if kind in ("timeseries", "state-timeline"):
            _series(axes, prometheus, queries)
        elif kind == "stat":
            _stat(axes, prometheus, queries, panel)
        else:
            _table(axes, prometheus, queries, panel)
    figure.savefig(out, dpi=90, facecolor=figure.get_facecolor())
    plt.close(figure)


def _series(axes: Any, prometheus: Any, queries: list[tuple[str, str]]) -> None:
    lines = 0
    for query, template in queries:
        found = prometheus.range(query)["data"]["result"]
        found.sort(key=lambda item: -max(float(v) for _, v in item["values"]))  # the busiest first
        for item in found[:8]:
            times = [datetime.fromtimestamp(float(t)) for t, _ in item["values"]]
            axes.plot(
                times,
                [float(v) for _, v in item["values"]],
                linewidth=1.2,
                label=legend(template, item["metric"]),
            )
            lines += 1
    from matplotlib.dates import DateFormatter

    axes.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    if lines:
        axes.legend(fontsize=6, loc="upper left", facecolor="#181b1f", labelcolor="#ccccdc", framealpha=0.6)


def _stat(axes: Any, prometheus: Any, queries: list[tuple[str, str]], panel: dict[str, Any]) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    shown = []
    for query, template in queries:
        result = prometheus.instant(query)["data"]["result"]
        value = float(result[0]["value"][1]) if result else None
        name = legend(template, result[0]["metric"]) if result and template not in ("", "__auto") else ""
        shown.append((name, value))
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    text = "   ".join(
        f"{_number(value, unit, panel)}" + (f"\n{name}" if name else "") for name, value in shown
    )
    axes.text(
        0.5, 0.45, text, ha="center", va="center", color="#73bf69", fontsize=18, transform=axes.transAxes
    )


def _number(value: float | None, unit: str, panel: dict[str, Any]) -> str:
    if value is None:
        return str(panel["fieldConfig"]["defaults"].get("noValue", "No data"))
    if unit == "currencyUSD":
        return f"${value:,.2f}"
    if unit == "percent":
        return f"{value:.0f}%"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _table(axes: Any, prometheus: Any, queries: list[tuple[str, str]], panel: dict[str, Any]) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    rows = []
    for query, _ in queries:
        for item in prometheus.instant(query)["data"]["result"][:6]:
            labels = item["metric"]
            keys = [
                k for k in ("instance", "gpu", "device", "port", "check", "pool", "island") if k in labels
            ]
            rows.append("  ".join(f"{k}={labels[k]}" for k in keys) + f"   {item['value'][1]}")
    text = "\n".join(rows) or str(panel["fieldConfig"]["defaults"].get("noValue", "No data"))
    axes.text(
        0.02,
        0.92,
        text,
        ha="left",
        va="top",
        color="#ccccdc",
        fontsize=7,
        family="monospace",
        transform=axes.transAxes,
    )


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.components import promlab
    from tests.components import synthetic_metrics as synthetic

    out_dir = Path(argv[0]) if argv else ROOT / "docs" / "dashboards"
    names = argv[1:] or ["overview"]
    out_dir.mkdir(parents=True, exist_ok=True)
    values = {"cluster": synthetic.CLUSTER, "job": synthetic.JOB_ID}
    with tempfile.TemporaryDirectory() as scratch, promlab.synthetic_prometheus(Path(scratch)) as prometheus:
        for name in names:
            board = json.loads((DASHBOARDS / f"{name}.json").read_text(encoding="utf-8"))
            path = out_dir / f"{name}.png"
            render(board, prometheus, values, path)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""docs/grafana_dashboard.json (issue 15) queries exactly the metrics the collector exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from advanced_risk.monitoring.prometheus import exported_names

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana_dashboard.json"
METRIC = re.compile(r"\badvanced_risk_[a-zA-Z0-9_]+")
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        (panel["title"], target["expr"])
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
    ]


def _queried(expr: str, histograms: set[str]) -> set[str]:
    """Metric names an expression reads (a histogram's series named without their suffix)."""
    names = set()
    for name in METRIC.findall(expr):
        base = HISTOGRAM_SUFFIX.sub("", name)
        names.add(base if base in histograms else name)
    return names


def test_every_panel_queries_only_exported_metrics() -> None:
    exported = set(exported_names())
    histograms = {"advanced_risk_decision_latency_seconds"}
    assert histograms <= exported
    unknown = {
        (title, name)
        for title, expr in _exprs()
        for name in _queried(expr, histograms)
        if name not in exported
    }
    assert not unknown, f"panels query metrics the collector does not export: {sorted(unknown)}"


def test_every_exported_metric_is_on_the_dashboard() -> None:
    histograms = {"advanced_risk_decision_latency_seconds"}
    queried = set().union(*(_queried(expr, histograms) for _, expr in _exprs()))
    assert set(exported_names()) - queried == set()


def test_latency_panel_reads_p50_and_p99_from_the_histogram_buckets() -> None:
    exprs = [expr for title, expr in _exprs() if "latency" in title.lower()]
    for quantile in ("0.5", "0.99"):
        assert any(
            f"histogram_quantile({quantile}," in e and "advanced_risk_decision_latency_seconds_bucket" in e
            for e in exprs
        ), quantile


def test_panels_have_unique_ids_and_use_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = _panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    for panel in panels:
        if panel.get("targets"):
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]

"""docs/grafana-dashboard.json: valid JSON, and every metric its queries use is one the operator process exports."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import ROOT

pytestmark = [pytest.mark.kube, pytest.mark.docker]

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
             "gauge": ("",), "summary": ("", "_sum", "_count", "_created")}  # fmt: skip
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (identifiers that are not functions, keywords or labels)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, Grafana variables)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end() :].lstrip()
        if match.group() in _KEYWORDS or rest.startswith("("):
            continue  # a keyword or a function call
        names.add(match.group())
    return names


def test_metric_names_are_found_in_promql() -> None:
    """The extractor itself (a wrong one would let any dashboard pass)."""
    assert metric_names('sum by (le, host) (rate(x_bucket{a="b", c=~"$d"}[$__rate_interval])) / y > 0') == {
        "x_bucket",
        "y",
    }
    assert metric_names("time() - z_seconds") == {"z_seconds"}
    assert metric_names("label_values(m, namespace)") == {"m", "namespace"}  # variables: checked separately


def queries(dashboard: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for panel in dashboard["panels"]:
        out.extend(t["expr"] for t in panel.get("targets", []))
    return out


def exported(operator: Any) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            if kind == "counter":  # the TYPE line names a counter with or without _total, by client version
                name = name.removesuffix("_total")
            names.update(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names


def test_every_dashboard_query_uses_metrics_the_operator_exports(operator: Any) -> None:
    dashboard = json.loads(Path(DASHBOARD).read_text())
    assert dashboard["uid"]
    assert dashboard["panels"]
    have = exported(operator)
    assert "dockyard_container_memory_usage_bytes" in have  # the container series are there even with no containers
    exprs = queries(dashboard)
    assert len(exprs) >= 20
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, exprs
    assert not sorted(used - have), f"the dashboard queries metrics the operator does not export: {used - have}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            metric = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
            assert metric is not None
            assert metric.group(1) in have
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))

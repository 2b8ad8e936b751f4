"""The shipped alert rules and dashboard: valid, tested on synthetic series, and built on metrics the server exposes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.prediction_log import TrafficMetrics


def exposed(config) -> set[str]:
    """Every series name /metrics can carry: the server's own metrics (both tasks) and the drift counters."""
    from prometheus_client import CollectorRegistry

    from {{ cookiecutter.package_name }}.serve import Metrics

    registries = [Metrics(task).registry for task in ("classification", "regression")]
    registries.append(CollectorRegistry())
    TrafficMetrics(config, registries[-1])
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {
        family.name + suffix
        for registry in registries
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


PROMQL_WORDS = {"sum", "by", "rate", "on", "group_left", "ignoring", "abs", "histogram_quantile", "offset"}
LABELS = {"job", "le", "class"}


def referenced(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers followed by { or [ (labels and ranges)."""
    return set(re.findall(r"([a-z_][a-z0-9_]*)\s*[{\[]", expr)) - PROMQL_WORDS - LABELS


def alert_rules(repo_root: Path) -> list[dict]:
    document = yaml.safe_load((repo_root / "monitoring/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_use_only_metrics_the_server_exposes(repo_root: Path, config) -> None:
    rules = alert_rules(repo_root)
    names = {rule["alert"] for rule in rules}
    assert {"ModelServerErrors", "ModelLatencyP99High", "ModelNoTraffic", "ModelUnknownCategories"} <= names
    available = exposed(config)
    for rule in rules:
        used = referenced(rule["expr"])
        assert used, rule["alert"]
        assert used <= available, f"{rule['alert']} uses {sorted(used - available)}"
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"]


def test_dashboard_queries_use_only_metrics_the_server_exposes(repo_root: Path, config) -> None:
    dashboard = json.loads((repo_root / "monitoring/dashboard.json").read_text())
    available = exposed(config)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = referenced(target["expr"])
            assert used, panel["title"]
            assert used <= available, f"{panel['title']} uses {sorted(used - available)}"


def test_alert_rules_fire_on_synthetic_series(repo_root: Path) -> None:
    # `make promtool` puts it beside this interpreter (.venv/bin); any promtool on PATH does too
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    promtool = shutil.which("promtool", path=search)
    if promtool is None:
        reason = "promtool is not installed (make promtool)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set: the alert rules must be tested there")
        pytest.skip(reason)
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        result = subprocess.run(
            [promtool, *command], cwd=repo_root / "monitoring", capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

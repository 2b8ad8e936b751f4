"""report.md: the sticky-comment marker first, metric diffs against the champion and main, every gate verdict."""

from pathlib import Path

from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.report import MARKER, metrics_table, render_report


def test_diffs_say_better_or_worse_by_metric_direction() -> None:
    lines = metrics_table(["f1", "log_loss"], {"f1": 0.9, "log_loss": 0.2}, {"f1": 0.8, "log_loss": 0.1}, None)
    assert lines[0] == "| metric | this change | champion | vs champion |"
    assert lines[2] == "| f1 | 0.9000 | 0.8000 | +0.1000 ▲ |"
    assert lines[3] == "| log_loss (lower is better) | 0.2000 | 0.1000 | +0.1000 ▼ |"


def test_report_starts_with_the_marker_and_lists_gates(repo_root: Path) -> None:
    config = load_config(repo_root / "model.yaml")
    names = config.evaluation.metrics
    metrics = {"rows": 10, "metrics": dict.fromkeys(names, 0.5), "slices": {}, "lineage": {}}
    gate = {
        "id": "some-gate",
        "slice": None,
        "slice_value": None,
        "value": 0.5,
        "bound": 0.6,
        "verdict": "overridden",
        "reason": "0.5 < 0.6; overridden by @lead: known issue",
        "override": {"reason": "known issue", "approved_by": "@lead"},
    }
    gates = {
        "passed": True,
        "champion": {"tag": "v1.0.0", "note": "v1.0.0", "metrics": dict.fromkeys(names, 0.4)},
        "gates": [gate],
    }
    baseline = {"metrics": dict.fromkeys(names, 0.45)}
    text = render_report(config, metrics, gates, baseline, ["roc.png"])
    assert text.splitlines()[0] == MARKER == "<!-- modelops-report -->"
    assert "| champion | vs champion | main | vs main |" in text
    assert "⚠️ overridden | `some-gate`" in text
    assert "- `some-gate`: known issue (approved by @lead)" in text
    assert "`roc.png`" in text

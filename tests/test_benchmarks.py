"""The benchmark scripts behind docs/benchmarks.md still run against the current template and print their results.

Their timings are never asserted (a shared machine is noisy); the shape and sanity of what they print is.
"""

from __future__ import annotations

import json
import re

import pytest

from .conftest import ROOT, run


def run_benchmark(*args: str) -> str:
    return run(ROOT, "python", *args, timeout=900).stdout


@pytest.mark.slow
def test_pipeline_benchmark_prints_the_yardstick_ratios() -> None:
    result = json.loads(run_benchmark("benchmarks/pipeline.py", "--runs", "1"))
    seconds = result["median_seconds"]
    stages = {"check-data", "train", "evaluate"}
    assert set(seconds) == {"bare", "repro", "noop", "dvc_own", "floor", "floor_noop", *stages}
    assert all(value > 0 for value in seconds.values())
    assert seconds["repro"] > seconds["noop"]  # --force really ran the three stages
    for ratio in ("pipeline_over_bare", "stage_commands_over_bare", "floor_over_bare"):
        assert 0 < result[ratio] < 20, (ratio, result[ratio])


@pytest.mark.slow
def test_trees_benchmark_exports_every_ensemble_and_times_both_paths() -> None:
    out = run_benchmark("benchmarks/trees.py", "--repeats", "4")
    rows = [line for line in out.splitlines() if re.match(r"\| \w+(Classifier|Regressor) \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == [
        "RandomForestClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
    ]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert int(cells[1]) == 100  # trees
        assert all(float(cell) > 0 for cell in (cells[2], cells[3], cells[5], cells[6]))

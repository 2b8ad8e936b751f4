"""Gate decisions as a pure function of scores: thresholds, intervals, champions, slices and overrides."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.config import Bootstrap, Gate, Override
from {{ cookiecutter.package_name }}.gates import Champion, decide
from {{ cookiecutter.package_name }}.lineage import release_tags
from {{ cookiecutter.package_name }}.metrics import Scored

BOOT = Bootstrap(samples=200, seed=0)


def regression(errors: list[float]) -> Scored:
    truth = np.arange(len(errors), dtype=float)
    return Scored(truth, truth + np.asarray(errors, dtype=float))


def one(gate: Gate, challenger: Scored, champion: Champion | None = None, **kwargs) -> dict:
    results = decide(
        [gate], kwargs.get("overrides", []), BOOT, challenger, champion or Champion(None), kwargs.get("slices", {})
    )
    assert len(results) == 1
    return results[0]


def test_absolute_max_passes_and_fails_on_the_value() -> None:
    ok = one(Gate("mae", id="mae-max", max=1.0), regression([1.0, -1.0, 0.5, -0.5]))
    bad = one(Gate("mae", id="mae-max", max=0.5), regression([1.0, -1.0, 0.5, -0.5]))
    assert (ok["verdict"], ok["value"], ok["bound"]) == ("pass", 0.75, 1.0)
    assert bad["verdict"] == "fail"
    assert "mae 0.7500 > max 0.5" in bad["reason"]


def test_ci_judges_the_pessimistic_end() -> None:
    scores = regression([0.0] * 30 + [1.6] * 30)  # mae 0.8, but half the rows are far off
    point = one(Gate("mae", id="g", max=0.9), scores)
    noisy = one(Gate("mae", id="g", max=0.9, ci=0.9), scores)
    assert point["verdict"] == "pass"
    assert noisy["interval"][0] < noisy["value"] < noisy["interval"][1]
    assert noisy["interval"][1] > 0.9
    assert noisy["verdict"] == "fail"


def test_relative_gate_without_champion_passes_and_says_so() -> None:
    result = one(Gate("rmse", id="rmse-max-drop", max_drop=0.1, against="production"), regression([1.0, 1.0]))
    assert result["verdict"] == "pass"
    assert "no release" in result["reason"]


def test_relative_gate_against_a_champion_that_cannot_be_scored_fails() -> None:
    champion = Champion("v1.0.0", note="v1.0.0 could not be scored: boom")
    result = one(Gate("rmse", id="g", max_drop=0.1, against="production"), regression([1.0]), champion)
    assert result["verdict"] == "fail"
    assert "boom" in result["reason"]


@pytest.mark.parametrize(("challenger_error", "verdict"), [(1.05, "pass"), (1.5, "fail"), (0.5, "pass")])
def test_max_drop_against_the_champion(challenger_error: float, verdict: str) -> None:
    champion = Champion("v1.0.0", regression([1.0] * 20), note="v1.0.0")
    gate = Gate("rmse", id="rmse-max-drop", max_drop=0.1, against="production")
    result = one(gate, regression([challenger_error] * 20), champion)
    assert result["verdict"] == verdict
    assert result["champion_value"] == pytest.approx(1.0)
    assert result["bound"] == pytest.approx(1.1)


def test_min_gain_needs_a_real_improvement() -> None:
    champion = Champion("v1.0.0", regression([1.0] * 20), note="v1.0.0")
    gate = Gate("mae", id="mae-min-gain", min_gain=0.2, against="production")
    assert one(gate, regression([0.9] * 20), champion)["verdict"] == "fail"
    assert one(gate, regression([0.7] * 20), champion)["verdict"] == "pass"


def test_slices_are_decided_one_by_one_and_small_ones_skipped() -> None:
    scores = regression([0.1] * 10 + [5.0] * 10 + [0.1] * 2)
    slices = {"region": [("north", np.arange(10)), ("south", np.arange(10, 20)), ("east", np.arange(20, 22))]}
    gate = Gate("mae", id="mae-region-max", max=1.0, slice="region", min_rows=5)
    results = decide([gate], [], BOOT, scores, Champion(None), slices)
    assert [(r["slice_value"], r["verdict"]) for r in results] == [
        ("north", "pass"),
        ("south", "fail"),
        ("east", "skipped"),
    ]
    assert "2 rows in region=east < min_rows 5" in results[2]["reason"]


def test_too_few_rows_overall_fails() -> None:
    assert one(Gate("mae", id="g", max=1.0, min_rows=10), regression([0.0] * 5))["verdict"] == "fail"


def test_override_turns_a_failure_into_overridden_with_its_reason() -> None:
    override = Override("mae-max", "known label noise in batch 7", "@lead")
    result = one(Gate("mae", id="mae-max", max=0.1), regression([1.0]), overrides=[override])
    assert result["verdict"] == "overridden"
    assert result["override"] == {"reason": "known label noise in batch 7", "approved_by": "@lead"}
    assert "known label noise in batch 7" in result["reason"]
    passing = one(Gate("mae", id="mae-max", max=2.0), regression([1.0]), overrides=[override])
    assert passing["verdict"] == "pass"


def test_release_tags_sort_as_versions(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x")
    for tag in ("v0.9.0", "v0.10.0", "v0.2.1", "vnext", "release-1"):
        git("tag", tag)
    assert release_tags(tmp_path) == ["v0.2.1", "v0.9.0", "v0.10.0"]


def test_no_git_means_no_release_tags(tmp_path: Path) -> None:
    assert release_tags(tmp_path) == []


def test_a_bake_ignored_by_an_enclosing_repository_has_no_releases(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text("build/\n")
    git("add", ".gitignore")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x")
    git("tag", "v1.0.0")
    inner = tmp_path / "build" / "model"
    inner.mkdir(parents=True)
    (inner / "dvc.yaml").write_text("stages: {}\n")
    assert release_tags(tmp_path) == ["v1.0.0"]
    assert release_tags(inner) == []

"""The generated pipeline end to end: dvc repro offline, gates against a released champion, broken data stopped.

Each test works on its own copy of a baked repo (the session bakes must keep their exact file tree).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import run

# dvc runs each stage's `python -m <package>`: the interpreter running the tests comes first on PATH, so that a
# version manager's shim never reads the baked .python-version.
ENV = {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def copy_of(baked: Callable[[str], Path], variant: str, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(baked(variant), repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return repo


def package(repo: Path) -> str:
    return json.loads((repo / ".cookiecutter.json").read_text())["cookiecutter"]["package_name"]


def dvc(repo: Path, *args: str, check: bool = True):
    return run(repo, "python", "-m", "dvc", *args, env=ENV, check=check)


def cli(repo: Path, *args: str, check: bool = True):
    return run(repo, "python", "-m", package(repo), *args, env=ENV, check=check)


def git(repo: Path, *args: str) -> str:
    return run(repo, "git", *args, env=ENV).stdout


def set_in_model_yaml(repo: Path, pattern: str, replacement: str) -> None:
    path = repo / "model.yaml"
    text, count = re.subn(pattern, replacement, path.read_text())
    assert count == 1, f"{pattern!r} not found once in model.yaml"
    path.write_text(text)


def few_epochs(repo: Path) -> None:
    """TensorFlow variants: a few epochs are enough to prove the pipeline (the shipped default is 200)."""
    if "epochs:" in (repo / "model.yaml").read_text():
        set_in_model_yaml(repo, r"epochs: \d+", "epochs: 15")


@pytest.mark.slow
def test_dvc_repro_runs_offline_and_then_does_nothing(repo: Path, variant: str, tmp_path: Path) -> None:
    repo = copy_of(lambda _: repo, variant, tmp_path)
    few_epochs(repo)
    # A fresh bake is not a git repository: DVC runs without git only with core.no_scm (make repro sets it).
    dvc(repo, "config", "--local", "core.no_scm", "true")
    first = dvc(repo, "repro")
    for stage in ("validate-data", "train", "evaluate"):
        assert f"Running stage '{stage}'" in first.stdout
    if variant.startswith("tensorflow"):
        assert "train: epoch 1/15" in first.stdout
    assert (repo / "dvc.lock").is_file()
    second = dvc(repo, "repro")
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date." in second.stdout

    metrics = json.loads((repo / "artifacts/metrics.json").read_text())
    assert metrics["rows"] > 0
    shown = dvc(repo, "metrics", "show", "--json")
    assert json.loads(shown.stdout)  # parses, names the metrics file
    assert "metrics.json" in shown.stdout
    plots = json.loads(dvc(repo, "plots", "show", "--json").stdout)
    assert "errors" not in plots
    names = {"roc", "precision-recall", "confusion"} if "classification" in variant else {"residuals"}
    assert names <= set(plots["data"])

    # The shipped gates pass on the shipped sample with the shipped estimator (no champion yet).
    gate = cli(repo, "gate")
    report = json.loads((repo / "artifacts/gate_report.json").read_text())
    assert report["passed"], gate.stdout
    assert {g["verdict"] for g in report["gates"]} <= {"pass", "skipped"}
    assert cli(repo, "report").returncode == 0
    text = (repo / "artifacts/report.md").read_text()
    assert text.startswith("<!-- modelops-report -->\n")
    pngs = {"roc", "pr", "confusion_matrix"} if "classification" in variant else {"predicted_vs_actual", "residuals"}
    for name in pngs:  # the report draws the plots from evaluate's CSVs
        assert (repo / f"artifacts/figures/{name}.png").read_bytes().startswith(b"\x89PNG\r\n"), name
        assert f"`{name}.png`" in text
    assert "```mermaid\nxychart-beta\n" in text  # the same plots, shown inside the PR comment
    assert "gates passed" in text
    assert "## Lineage" in (repo / "artifacts/model_card.md").read_text()
    lineage = metrics["lineage"]
    assert lineage["git_sha"] == "unknown"
    data_file = next((repo / "data").glob("*.csv.dvc"))
    assert f"md5: {lineage['data_md5']}" in data_file.read_text()


def release(repo: Path, c: str, tag: str) -> None:
    set_in_model_yaml(repo, r"C: [0-9.e-]+", f"C: {c}")
    dvc(repo, "repro")
    dvc(repo, "push")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"release {tag}")
    git(repo, "tag", tag)


@pytest.mark.slow
def test_gate_against_the_released_champion(baked: Callable[[str], Path], tmp_path: Path) -> None:
    """v0.9.0 is bad, v0.10.0 is the champion (versions, not strings, decide); a worse challenger fails."""
    repo = copy_of(baked, "sklearn-classification", tmp_path)
    git(repo, "init", "-q")
    release(repo, "0.0001", "v0.9.0")  # predicts one class: f1 0
    release(repo, "0.01", "v0.10.0")  # f1 about 0.86
    shutil.rmtree(repo / ".dvc/cache")  # the champion must come from the DVC remote, as on CI

    set_in_model_yaml(repo, r"C: [0-9.e-]+", "C: 0.001")  # f1 about 0.69: more than max_drop 0.02 below
    dvc(repo, "repro")
    worse = cli(repo, "gate", check=False)
    assert worse.returncode == 1, worse.stdout
    report = json.loads((repo / "artifacts/gate_report.json").read_text())
    assert report["champion"]["tag"] == "v0.10.0"
    f1_gate = next(g for g in report["gates"] if g["id"] == "f1-max-drop")
    assert f1_gate["verdict"] == "fail"
    assert f1_gate["champion_value"] > f1_gate["value"] + 0.02

    # The champion was re-scored on the current test rows: the same f1 its release recorded.
    released = json.loads(git(repo, "show", "v0.10.0:artifacts/metrics.json"))
    assert f1_gate["champion_value"] == pytest.approx(released["metrics"]["f1"])
    assert report["rows"] == released["rows"]
    assert (repo / "artifacts/champion/metadata.json").is_file()

    set_in_model_yaml(repo, r"C: [0-9.e-]+", "C: 1.0")  # the shipped model: f1 about 0.89
    dvc(repo, "repro")
    better = cli(repo, "gate", check=False)
    assert better.returncode == 0, better.stdout
    report = json.loads((repo / "artifacts/gate_report.json").read_text())
    f1_gate = next(g for g in report["gates"] if g["id"] == "f1-max-drop")
    assert f1_gate["verdict"] == "pass"
    assert f1_gate["value"] > f1_gate["champion_value"]
    cli(repo, "report")
    assert "| champion | vs champion |" in (repo / "artifacts/report.md").read_text()


@pytest.mark.slow
def test_an_override_is_recorded(baked: Callable[[str], Path], tmp_path: Path) -> None:
    repo = copy_of(baked, "sklearn-regression", tmp_path)
    set_in_model_yaml(repo, r"\{metric: r2, min: 0.3,", "{metric: r2, min: 0.9,")
    text = (
        (repo / "model.yaml")
        .read_text()
        .replace(
            "  bootstrap:",
            "  overrides:\n    - {gate: r2-min, reason: Sample data is small, approved_by: '@your-org'}\n  bootstrap:",
        )
    )
    (repo / "model.yaml").write_text(text)
    cli(repo, "train")
    cli(repo, "evaluate")
    assert cli(repo, "gate", check=False).returncode == 0
    r2 = next(g for g in json.loads((repo / "artifacts/gate_report.json").read_text())["gates"] if g["id"] == "r2-min")
    assert r2["verdict"] == "overridden"
    assert r2["override"] == {"reason": "Sample data is small", "approved_by": "@your-org"}
    cli(repo, "report")
    assert "Sample data is small (approved by @your-org)" in (repo / "artifacts/model_card.md").read_text()


@pytest.mark.slow
def test_evaluate_refuses_scores_of_other_data(baked: Callable[[str], Path], tmp_path: Path) -> None:
    """evaluate computes from the scores train wrote; once the data changed, they describe other rows."""
    repo = copy_of(baked, "sklearn-classification", tmp_path)
    cli(repo, "train")
    data = repo / "data/breast_cancer.csv"
    rows = data.read_text().splitlines()
    data.write_text("\n".join([*rows, rows[1]]) + "\n")  # one more row, still within the contract
    result = cli(repo, "evaluate", check=False)
    assert result.returncode == 1
    assert "test_scores.json was written from another version of data/breast_cancer.csv: run train" in result.stderr
    assert not (repo / "artifacts/metrics.json").exists()


# (id, how to break the CSV text, a rule the table must show); at least eight kinds.
BROKEN = [
    ("missing-column", lambda rows: [r.rsplit(",", 1)[0] for r in rows], "missing column"),
    (
        "extra-column",
        lambda rows: [r + (",extra" if i == 0 else ",1") for i, r in enumerate(rows)],
        "not in the contract",
    ),
    ("text-in-number", lambda rows: [rows[0], "abc" + rows[1][rows[1].index(",") :], *rows[2:]], "not a"),
    ("negative", lambda rows: [rows[0], "-5" + rows[1][rows[1].index(",") :], *rows[2:]], "below min"),
    (
        "unknown-category",
        lambda rows: [r.replace(",medium,", ",huge,").replace(",2,", ",3,", 1) for r in rows],
        "unknown category",
    ),
    ("null-feature", lambda rows: [rows[0], "," + rows[1].split(",", 1)[1], *rows[2:]], "null in a non-nullable"),
    ("null-target", lambda rows: [rows[0], rows[1].rsplit(",", 1)[0] + ",", *rows[2:]], "null target"),
    ("too-few-rows", lambda rows: rows[:50], "fewer than min_rows"),
]


@pytest.mark.slow
@pytest.mark.parametrize("variant_name", ["sklearn-classification", "sklearn-regression"])
@pytest.mark.parametrize(("breaker", "rule"), [(b, r) for _, b, r in BROKEN], ids=[i for i, _, _ in BROKEN])
def test_broken_data_stops_before_training(
    baked: Callable[[str], Path], tmp_path: Path, variant_name: str, breaker: Callable, rule: str
) -> None:
    repo = copy_of(baked, variant_name, tmp_path)
    data = next((repo / "data").glob("*.csv"))
    data.write_text("\n".join(breaker(data.read_text().splitlines())) + "\n")
    checked = cli(repo, "check-data", check=False)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert rule in checked.stderr
    trained = cli(repo, "train", check=False)
    assert trained.returncode == 1
    assert not (repo / "artifacts/model").exists()
    for verb in ("evaluate", "gate"):  # the stages after train refuse it too, with the same table, no traceback
        refused = cli(repo, verb, check=False)
        assert refused.returncode == 1
        assert rule in refused.stderr
        assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_dvc_repro_stops_at_validate_data(baked: Callable[[str], Path], tmp_path: Path) -> None:
    repo = copy_of(baked, "sklearn-classification", tmp_path)
    data = repo / "data/breast_cancer.csv"
    data.write_text(data.read_text().replace(",medium,", ",huge,"))
    dvc(repo, "config", "--local", "core.no_scm", "true")
    result = dvc(repo, "repro", check=False)
    assert result.returncode != 0
    assert "unknown category" in result.stderr + result.stdout
    assert "size_band" in result.stderr + result.stdout
    assert "Running stage 'train'" not in result.stdout
    assert not (repo / "artifacts/model").exists()


def fake_venv(repo: Path, tmp_path: Path) -> Path:
    """A .venv stand-in that runs this interpreter, so `make` targets run without installing the locks."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name, module in (("python", None), ("dvc", "dvc")):
        script = venv / "bin" / name
        script.write_text(f'#!/bin/sh\nexec {sys.executable} {"-m " + module if module else ""} "$@"\n')
        script.chmod(0o755)
    (venv / ".installed").touch()  # newer than requirements/dev.txt and pyproject.toml: setup is done
    return venv


@pytest.mark.slow
def test_make_pipeline_just_works_in_a_fresh_bake(baked: Callable[[str], Path], tmp_path: Path) -> None:
    repo = copy_of(baked, "sklearn-regression", tmp_path)
    venv = fake_venv(repo, tmp_path)
    result = run(repo, "make", "pipeline", f"VENV={venv}", env=ENV)
    assert "Running stage 'evaluate'" in result.stdout
    assert "gate: PASSED" in result.stdout
    assert (repo / "artifacts/report.md").is_file()
    assert "no_scm = true" in (repo / ".dvc/config.local").read_text()
    again = run(repo, "make", "pipeline", f"VENV={venv}", env=ENV)
    assert "Running stage" not in again.stdout
    # Once the folder is a git repository, DVC uses git again.
    git(repo, "init", "-q")
    run(repo, "make", "repro", f"VENV={venv}", env=ENV)
    assert "no_scm" not in (repo / ".dvc/config.local").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("variant_name", ["sklearn-classification", "tensorflow-regression"])
def test_same_data_and_params_give_the_same_metrics(
    baked: Callable[[str], Path], tmp_path: Path, variant_name: str
) -> None:
    """sklearn: identical; TensorFlow with op determinism: equal within 1e-6 relative (measured: identical)."""
    repo = copy_of(baked, variant_name, tmp_path)
    few_epochs(repo)
    runs = []
    for _ in range(2):
        cli(repo, "train")
        cli(repo, "evaluate")
        runs.append(json.loads((repo / "artifacts/metrics.json").read_text())["metrics"])
    if variant_name.startswith("sklearn"):
        assert runs[0] == runs[1]
    else:
        assert runs[0] == pytest.approx(runs[1], rel=1e-6)

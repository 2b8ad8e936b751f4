"""Monitoring in a baked repo: the Makefile targets the monitor workflow calls, and the alert rules under promtool.

The workflow's steps are `make <target>`; here they run for real with a stub `gh` that records its calls, so the
issue logic (create once, then edit the same issue) is tested without GitHub.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import run, tool, unavailable

VARIANT = "sklearn-classification"
PACKAGE = "clinical_risk_model"

# A profile and 300 logged rows whose first numeric feature moved by 3 standard deviations.
MAKE_TRAFFIC = """
import sys
from pathlib import Path
import pandas as pd
from {package}.config import load_config
from {package}.prediction_log import PredictionLogger
from {package}.profile import build_profile, write_profile

config = load_config("model.yaml")
data = pd.read_csv(config.data.path, dtype={{"size_band": str}})
labels = sorted(data[config.data.target].unique())
proba = [{{labels[0]: 0.7, labels[1]: 0.3}}] * len(data)
Path("artifacts/model").mkdir(parents=True, exist_ok=True)
write_profile(build_profile(config, data, [labels[0]] * len(data), proba), Path("artifacts/model"))
frame = data.sample(n=300, replace=True, random_state=0).reset_index(drop=True)
frame["radius_mean"] += 3 * data["radius_mean"].std()
names = list(config.data.feature_names)
with PredictionLogger(1.0, sys.argv[1], config.metadata.version, names) as logger:
    for start in range(0, 300, 10):
        chunk = frame.iloc[start : start + 10]
        logger.log(f"r{{start}}", {{n: chunk[n].tolist() for n in names}}, [labels[0]] * len(chunk), proba[:len(chunk)])
"""

STUB_GH = """#!/usr/bin/env bash
# Records each call; `gh issue list` answers with $STUB_ISSUE (the number of an open monitoring issue, or nothing).
echo "$*" >> "$STUB_LOG"
for arg in "$@"; do [ "${prev:-}" = "--body-file" ] && cp "$arg" "$STUB_BODY"; prev="$arg"; done
if [ "$1 $2" = "issue list" ]; then echo "${STUB_ISSUE:-}"; fi
"""


@pytest.fixture(scope="module")
def repo(baked: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the bake with a reference profile and drifted logs in monitoring/logs."""
    copy = tmp_path_factory.mktemp("monitoring") / "repo"
    shutil.copytree(baked(VARIANT), copy)
    (copy / "monitoring" / "logs").mkdir()
    run(copy, "python", "-c", MAKE_TRAFFIC.format(package=PACKAGE), "monitoring/logs/predictions.jsonl")
    return copy


def make(repo: Path, *targets: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """make without `setup` (the test's interpreter stands in for .venv), with the repo's src on the path."""
    command = ["make", "--no-print-directory", "-o", "setup", *targets, f"RUN={sys.executable} -m {PACKAGE}"]
    outer = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "LOG_LOCATION")}
    full_env = {**outer, "PYTHONPATH": str(repo / "src"), **(env or {})}
    return subprocess.run(command, cwd=repo, env=full_env, text=True, capture_output=True, timeout=300, check=False)


def test_monitor_ci_records_the_alarm_for_the_next_jobs(repo: Path, tmp_path: Path) -> None:
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    result = make(repo, "monitor-ci", env={"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert outputs.read_text().splitlines() == ["alarm=true", "on_alarm=issue"]
    assert "| psi | radius_mean |" in summary.read_text()


def test_monitor_ci_fails_on_bad_input(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "garbage.log").write_text("not a log\n")
    result = make(repo, "monitor-ci", f"LOGS={tmp_path / 'garbage.log'}", env={"GITHUB_OUTPUT": str(tmp_path / "o")})
    assert result.returncode != 0
    assert "no prediction record" in result.stderr
    assert not (tmp_path / "o").exists()


def test_make_monitor_exits_1_past_thresholds(repo: Path) -> None:
    result = make(repo, "monitor", "LOGS=monitoring/logs")
    assert result.returncode != 0
    assert "monitor: ALARM" in result.stdout
    assert "radius_mean: psi" in result.stdout


def test_monitor_fetch_copies_a_local_location_and_skips_when_unset(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "fetched"
    result = make(repo, "monitor-fetch", f"LOGS={target}", env={"LOG_LOCATION": str(repo / "monitoring/logs")})
    assert result.returncode == 0, result.stderr
    assert (target / "predictions.jsonl").read_bytes() == (repo / "monitoring/logs/predictions.jsonl").read_bytes()
    outputs = tmp_path / "outputs"
    result = make(repo, "monitor-fetch", f"LOGS={tmp_path / 'none'}", env={"GITHUB_OUTPUT": str(outputs)})
    assert result.returncode == 0, result.stderr
    assert outputs.read_text() == "skip=true\n"
    assert "monitoring.log_location is not set" in result.stdout


@pytest.mark.parametrize("existing", ["", "12"])
def test_monitor_issue_opens_one_issue_then_updates_it(repo: Path, tmp_path: Path, existing: str) -> None:
    assert make(repo, "monitor", "LOGS=monitoring/logs").returncode != 0  # writes the report
    stub = tmp_path / "bin" / "gh"
    stub.parent.mkdir()
    stub.write_text(STUB_GH)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    log, body = tmp_path / "calls.log", tmp_path / "body.md"
    env = {
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "STUB_BODY": str(body),
        "STUB_ISSUE": existing,
        "GH_REPO": "acme/model",
        "RUN_URL": "https://github.com/acme/model/actions/runs/1",
    }
    result = make(repo, "monitor-issue", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("label create model-monitoring")
    assert calls[1].startswith("issue list --label model-monitoring --state open")
    if existing:
        assert calls[2] == "issue edit 12 --body-file monitoring/issue.md"
    else:
        assert calls[2].startswith(
            "issue create --title Monitoring: drift or live-quality alarm --label model-monitoring"
        )
    assert len(calls) == 3
    text = body.read_text()
    assert text.startswith("<!-- modelops-monitor -->\n# Drift report")
    assert "**ALARM:**" in text
    assert text.rstrip().endswith("https://github.com/acme/model/actions/runs/1")


def test_retrain_pr_needs_a_dvc_import(repo: Path, tmp_path: Path) -> None:
    result = make(repo, "monitor-retrain-pr", env={"GH_REPO": "acme/model"})
    assert result.returncode == 0, result.stderr
    assert "is not a DVC import (dvc import-url)" in result.stderr


def test_alert_rules_pass_promtool(baked: Callable[[str], Path]) -> None:
    promtool = tool("promtool", "apt-get install prometheus; .ci/install-system.sh", "the alert rules")
    folder = baked(VARIANT) / "monitoring"
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        result = subprocess.run([promtool, *command], cwd=folder, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def _candidate_prometheus() -> str | None:
    """The upstream version of this machine's apt candidate for prometheus (2.42.0 on Debian 12), if any."""
    if shutil.which("apt-cache") is None:
        return None
    policy = subprocess.run(["apt-cache", "policy", "prometheus"], capture_output=True, text=True, check=False).stdout
    for line in policy.splitlines():
        if line.strip().startswith("Candidate:") and "+ds" in line:
            return line.split(":", 1)[1].strip().split("+ds")[0]
    return None


@pytest.mark.slow
def test_make_promtool_puts_the_archive_binary_where_the_alert_test_finds_it(
    baked: Callable[[str], Path], tmp_path: Path
) -> None:
    """`make promtool` (the generated CI's step before `make test`): the package's promtool, unpacked into the venv;
    the generated alert test finds it there with no promtool on PATH, and with CI set fails instead of skipping."""
    version = _candidate_prometheus()
    if version is None:
        unavailable("no apt archive with a prometheus package here", "`make promtool`")
    repo = tmp_path / "repo"
    shutil.copytree(baked(VARIANT), repo)
    venv = tmp_path / "venv"  # a venv seeing this interpreter's packages: the generated test looks beside python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = subprocess.run(
        [str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "outer.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")

    made = make(repo, "promtool", f"VENV={venv}", f"PROMTOOL_VERSION={version}")
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"promtool, version {version}+ds" in made.stdout
    again = make(repo, "promtool", f"VENV={venv}", f"PROMTOOL_VERSION={version}")
    assert f"promtool: {version} is in {venv}" in again.stdout, "a second run downloads nothing"

    def alert_test(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        command = [
            str(venv / "bin/python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/monitoring/test_alerts.py::test_alert_rules_fire_on_synthetic_series",
        ]
        clean = {k: v for k, v in os.environ.items() if k not in ("CI", "PATH")}
        return subprocess.run(
            command,
            cwd=repo,
            env={**clean, "PATH": "/nonexistent", **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    found = alert_test({"CI": "true"})
    assert found.returncode == 0, found.stdout + found.stderr
    assert "1 passed" in found.stdout

    (venv / "bin/promtool").unlink()
    on_ci = alert_test({"CI": "true"})
    assert on_ci.returncode == 1
    assert "promtool is not installed (make promtool); CI is set: the alert rules must be tested there" in on_ci.stdout
    local = alert_test({})
    assert local.returncode == 0
    assert "1 skipped" in local.stdout
    assert "promtool is not installed (make promtool)" in local.stdout

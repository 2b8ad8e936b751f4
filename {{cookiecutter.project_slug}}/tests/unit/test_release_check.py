"""release-check: a release needs the tag to equal v + metadata.version and a passed (or overridden) gate report."""

import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import load_config

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "a" * 64
PROVENANCE = {"git_sha": SHA, "image": "ghcr.io/o/m", "digest": DIGEST, "gate_report": {"verdict": "pass"}}


@pytest.fixture
def version(repo_root: Path) -> str:
    return load_config(repo_root / "model.yaml").metadata.version


def check(repo: Path, *args: str) -> int:
    return main(["--config", str(repo / "model.yaml"), "release-check", *args])


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_matching_tag_passes(repo_root: Path, version: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(repo_root, "--tag", f"v{version}") == 0
    assert f"v{version} may be released (tag checked)" in capsys.readouterr().out


def test_tag_not_matching_the_version_stops_the_release(
    repo_root: Path, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(repo_root, "--tag", "v9.9.9") == 1
    err = capsys.readouterr().err
    assert f"tag v9.9.9 does not match model.yaml metadata.version {version}; expected tag v{version}" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("tag", ["0.1.0", "v1", "v1.2", "release-1.0.0", "v01.2.3", ""])
def test_malformed_tag_is_bad_input(repo_root: Path, tag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(repo_root, "--tag", tag) == 2
    assert f"release-check: --tag: {tag!r} is not a release tag; expected v<major>.<minor>.<patch>" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("report", [{"verdict": "pass"}, {"verdict": "overridden"}, {"passed": True, "gates": []}])
def test_passed_or_overridden_report_passes(repo_root: Path, version: str, tmp_path: Path, report: dict) -> None:
    report = write(tmp_path / "gate_report.json", report)
    assert check(repo_root, "--tag", f"v{version}", "--gate-report", str(report)) == 0


def test_failed_gates_stop_the_release_and_are_named(
    repo_root: Path, version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gates = [{"id": "roc_auc-min", "verdict": "pass"}, {"id": "recall-min", "verdict": "fail"}]
    report = write(tmp_path / "gate_report.json", {"passed": False, "gates": gates})
    assert check(repo_root, "--tag", f"v{version}", "--gate-report", str(report)) == 1
    assert "gates failed on this commit (recall-min): it cannot be released" in capsys.readouterr().err


def test_missing_report_means_the_commit_never_passed(
    repo_root: Path, version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "gate_report.json"
    assert check(repo_root, "--tag", f"v{version}", "--gate-report", str(missing)) == 1
    assert f"no gate report at {missing}: this commit never passed CI on main" in capsys.readouterr().err


def test_wrong_tag_and_failed_gates_are_both_reported(
    repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = write(tmp_path / "gate_report.json", {"verdict": "fail"})
    assert check(repo_root, "--tag", "v9.9.9", "--gate-report", str(report)) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not readable JSON"),
        ("[1, 2]", "holds a list; expected a JSON object"),
        ('{"verdict": "maybe"}', "verdict 'maybe'; expected verdict pass/fail or passed true/false"),
        ('{"passed": "yes"}', "verdict 'yes'; expected verdict pass/fail or passed true/false"),
        ("{}", "verdict 'missing'; expected verdict pass/fail or passed true/false"),
    ],
)
def test_malformed_report_is_bad_input(
    repo_root: Path, version: str, tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "gate_report.json"
    report.write_text(content)
    assert check(repo_root, "--tag", f"v{version}", "--gate-report", str(report)) == 2
    assert message in capsys.readouterr().err


def test_provenance_must_be_for_the_tagged_commit(
    repo_root: Path, version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "provenance.json", PROVENANCE)
    assert check(repo_root, "--tag", f"v{version}", "--gate-report", str(path), "--commit", SHA) == 0
    assert check(repo_root, "--tag", f"v{version}", "--gate-report", str(path), "--commit", "f" * 40) == 1
    assert f"gate report is for commit {SHA}, not the tagged commit {'f' * 40}" in capsys.readouterr().err


def test_outputs_for_the_workflow(repo_root: Path, version: str, tmp_path: Path) -> None:
    path = write(tmp_path / "provenance.json", PROVENANCE)
    output = tmp_path / "github_output"
    assert check(repo_root, "--tag", f"v{version}", "--gate-report", str(path), "--github-output", str(output)) == 0
    assert output.read_text().splitlines() == [f"version={version}", "image=ghcr.io/o/m", "digest=sha256:" + "a" * 64]

"""provenance: what an image is built from, with the gate report embedded, for attestation and release."""

import hashlib
import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import provenance as provenance_module
from {{ cookiecutter.package_name }}.cli import build_parser, main
from {{ cookiecutter.package_name }}.config import load_config

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "cd" * 32


@pytest.fixture
def gated_repo(scratch_repo: Path) -> Path:
    (scratch_repo / "artifacts").mkdir()
    (scratch_repo / "artifacts/gate_report.json").write_text(json.dumps({"verdict": "pass", "gates": []}))
    return scratch_repo


def provenance(repo: Path, *args: str) -> int:
    return main(["--config", str(repo / "model.yaml"), "provenance", *args])


def test_records_commit_hashes_gate_report_and_digest(gated_repo: Path) -> None:
    output = gated_repo / "github_output"
    assert provenance(gated_repo, "--git-sha", SHA, "--digest", DIGEST, "--github-output", str(output)) == 0
    document = json.loads((gated_repo / "artifacts/provenance.json").read_text())
    config = load_config(gated_repo / "model.yaml")
    data = (gated_repo / config.data.path).read_bytes()
    assert document["git_sha"] == SHA
    assert document["digest"] == DIGEST
    assert document["model_yaml_sha256"] == hashlib.sha256((gated_repo / "model.yaml").read_bytes()).hexdigest()
    assert document["data_md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert document["gate_report"] == {"verdict": "pass", "gates": []}
    assert f"image={config.deploy.image}" in output.read_text().splitlines()
    assert f"digest={DIGEST}" in output.read_text().splitlines()


def without_data(repo: Path, *args: str) -> int:
    """The verb as a deploy job runs it: model.yaml and the .dvc file checked out, the data not pulled."""
    config = load_config(repo / "model.yaml")
    (repo / config.data.path).unlink()
    return provenance_module.run(config, build_parser().parse_args(["provenance", *args]))


def test_data_hash_is_dvc_s_when_the_data_was_not_pulled(gated_repo: Path) -> None:
    data = gated_repo / load_config(gated_repo / "model.yaml").data.path
    data.with_name(data.name + ".dvc").write_text(f"outs:\n- md5: {'f' * 32}\n  path: {data.name}\n")
    assert without_data(gated_repo, "--git-sha", SHA) == 0
    assert json.loads((gated_repo / "artifacts/provenance.json").read_text())["data_md5"] == "f" * 32


def test_needs_a_data_hash(gated_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(gated_repo / "model.yaml")
    assert without_data(gated_repo, "--git-sha", SHA) == 1
    assert f"provenance: no {config.data.path} and no {config.data.path}.dvc to hash; run `dvc pull`" in (
        capsys.readouterr().err
    )


def test_needs_a_gate_report(scratch_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert provenance(scratch_repo, "--git-sha", SHA) == 1
    assert "gate_report.json; run `make gate` first" in capsys.readouterr().err
    assert not (scratch_repo / "artifacts/provenance.json").exists()


@pytest.mark.parametrize(("option", "value"), [("--git-sha", "HEAD"), ("--digest", "sha256:1")])
def test_bad_input(gated_repo: Path, option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--git-sha", SHA, option, value] if option == "--digest" else [option, value]
    assert provenance(gated_repo, *args) == 2
    assert f"provenance: {option}: {value!r} is not" in capsys.readouterr().err

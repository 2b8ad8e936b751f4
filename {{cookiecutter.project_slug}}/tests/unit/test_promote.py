"""promote: pins a digest in an overlay, keeps it in step with model.yaml, and is idempotent."""

import shutil
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import load_config

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def deploy_repo(scratch_repo: Path, repo_root: Path) -> Path:
    shutil.copytree(repo_root / "deploy", scratch_repo / "deploy")
    return scratch_repo


def promote(repo: Path, *args: str) -> int:
    return main(["--config", str(repo / "model.yaml"), "promote", *args])


def overlay(repo: Path, env: str) -> dict:
    return yaml.safe_load((repo / "deploy" / env / "kustomization.yaml").read_text())


@pytest.mark.parametrize("env", ["staging", "production"])
def test_shipped_overlays_agree_with_model_yaml(repo_root: Path, env: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = (repo_root / "deploy" / env / "kustomization.yaml").read_text()
    assert promote(repo_root, "--env", env) == 0  # sync only: rewrites nothing when in step
    assert "unchanged" in capsys.readouterr().out
    assert (repo_root / "deploy" / env / "kustomization.yaml").read_text() == before


def test_pins_the_digest_for_one_environment_only(deploy_repo: Path) -> None:
    production_before = (deploy_repo / "deploy/production/kustomization.yaml").read_text()
    assert promote(deploy_repo, "--env", "staging", "--digest", DIGEST) == 0
    config = load_config(deploy_repo / "model.yaml")
    assert overlay(deploy_repo, "staging")["images"] == [
        {"name": "model-server", "newName": config.deploy.image, "digest": DIGEST}
    ]
    assert (deploy_repo / "deploy/production/kustomization.yaml").read_text() == production_before


def test_is_idempotent(deploy_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(deploy_repo, "--env", "production", "--digest", DIGEST) == 0
    first = (deploy_repo / "deploy/production/kustomization.yaml").read_text()
    assert promote(deploy_repo, "--env", "production", "--digest", DIGEST) == 0
    assert (deploy_repo / "deploy/production/kustomization.yaml").read_text() == first
    assert "unchanged" in capsys.readouterr().out.splitlines()[-1]


def test_syncs_replicas_and_resources_from_model_yaml_keeping_the_digest(deploy_repo: Path) -> None:
    assert promote(deploy_repo, "--env", "production", "--digest", DIGEST) == 0
    text = (deploy_repo / "model.yaml").read_text()
    spec = yaml.safe_load(text)
    spec["deploy"]["production"]["replicas"] = 5
    spec["deploy"]["resources"]["limits"]["memory"] = "1Gi"
    (deploy_repo / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert promote(deploy_repo, "--env", "production") == 0
    written = overlay(deploy_repo, "production")
    assert written["images"][0]["digest"] == DIGEST
    deployment_patch = yaml.safe_load(written["patches"][0]["patch"])
    assert {"op": "replace", "path": "/spec/replicas", "value": 5} in deployment_patch
    resources = next(p["value"] for p in deployment_patch if p["path"].endswith("/resources"))
    assert resources["limits"] == {"cpu": spec["deploy"]["resources"]["limits"]["cpu"], "memory": "1Gi"}


@pytest.mark.parametrize(
    "digest", ["sha256:abc", "ab" * 32, "sha256:" + "AB" * 32, "sha512:" + "ab" * 32, "sha256:" + "g" * 64]
)
def test_bad_digest_is_bad_input_and_writes_nothing(
    deploy_repo: Path, digest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (deploy_repo / "deploy/staging/kustomization.yaml").read_text()
    assert promote(deploy_repo, "--env", "staging", "--digest", digest) == 2
    assert f"promote: --digest: {digest!r} is not an image digest; expected sha256: and 64 lowercase hex" in (
        capsys.readouterr().err
    )
    assert (deploy_repo / "deploy/staging/kustomization.yaml").read_text() == before


def test_bad_image_is_bad_input(deploy_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(deploy_repo, "--env", "staging", "--digest", DIGEST, "--image", "ghcr.io/o/m:latest") == 2
    assert "promote: --image: 'ghcr.io/o/m:latest' is not an image repository" in capsys.readouterr().err


def test_unknown_environment_is_a_usage_error(deploy_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        promote(deploy_repo, "--env", "qa", "--digest", DIGEST)
    assert exit_info.value.code == 2
    assert "argument --env: invalid choice: 'qa'" in capsys.readouterr().err


def test_missing_overlay_folder_is_reported(deploy_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(deploy_repo / "deploy/staging")
    assert promote(deploy_repo, "--env", "staging", "--digest", DIGEST) == 1
    assert "deploy/staging: no such overlay folder; expected deploy/staging/" in capsys.readouterr().err


def test_overlay_without_a_digest_needs_one(deploy_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (deploy_repo / "deploy/staging/kustomization.yaml").write_text("resources: [../base]\n")
    assert promote(deploy_repo, "--env", "staging") == 2
    assert "images: no model-server digest; expected one, or pass --digest" in capsys.readouterr().err

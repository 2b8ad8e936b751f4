"""Shared fixtures: the repository root, a writable copy of it for tests that change model.yaml, the config, and the
shipped model trained once per session by the real `train` stage (with its exported runtime)."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ModelConfig, load_config
from {{ cookiecutter.package_name }}.runtime import MANIFEST

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def spec() -> dict:
    """model.yaml as plain data, to be broken on purpose by a test."""
    return yaml.safe_load((ROOT / "model.yaml").read_text())


def copy_inputs(target: Path) -> Path:
    """model.yaml, its schema and the data copied into ``target``: a repo the test may change or train in."""
    for part in ("model.yaml", "schemas", "data"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("*.dvc", ".gitignore"))
        else:
            shutil.copy(source, target / part)
    return target


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """model.yaml, its schema and the data in a temporary folder."""
    return copy_inputs(tmp_path)


@pytest.fixture(scope="session")
def config() -> ModelConfig:
    return load_config(ROOT / "model.yaml")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """artifacts/model (the training contract's layout) and artifacts/runtime, in a temporary folder."""
    out = tmp_path_factory.mktemp("artifacts")
    paths = ["--out", str(out / "model"), "--scores", str(out / "test_scores.json"), "--runtime", str(out / "runtime")]
    assert main(["--config", str(ROOT / "model.yaml"), "train", *paths]) == 0  # train exports the runtime too
    manifest = json.loads((out / "runtime" / MANIFEST).read_text())
    assert manifest["parity"]["passed"], manifest["parity"]
    return out

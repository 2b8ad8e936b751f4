"""Shared fixtures: the repository root and a writable copy of it for tests that change model.yaml."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

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


@pytest.fixture(scope="session")
def inputs_copier() -> Callable[[Path], Path]:
    """copy_inputs, for fixtures with a wider scope than tmp_path's."""
    return copy_inputs


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """model.yaml, its schema and the data in a temporary folder."""
    return copy_inputs(tmp_path)

"""A trained artifact (the real `train` stage) and its exported runtime, once per session; a client of the app."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ModelConfig, load_config
from {{ cookiecutter.package_name }}.runtime import MANIFEST
from {{ cookiecutter.package_name }}.serve import App

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def artifact_copy(artifacts: Path, tmp_path: Path) -> Path:
    """A copy to break on purpose."""
    shutil.copytree(artifacts, tmp_path / "artifacts")
    return tmp_path / "artifacts"


def make_client(config: ModelConfig, artifacts: Path) -> TestClient:
    return TestClient(App(config, artifacts / "model", artifacts / "runtime"))


@pytest.fixture
def client(config: ModelConfig, artifacts: Path) -> Iterator[TestClient]:
    with make_client(config, artifacts) as test_client:
        yield test_client


def example_rows(config: ModelConfig, count: int) -> list[dict[str, Any]]:
    from {{ cookiecutter.package_name }}.export import parity_rows

    columns, _ = parity_rows(config, [{"name": f.name, "type": f.type} for f in config.data.features])
    return [{name: column[i] for name, column in columns.items()} for i in range(count)]

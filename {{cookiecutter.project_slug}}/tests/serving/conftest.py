"""A copy of the trained artifacts (tests/conftest.py trains them once per session) to break; a client of the app."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from {{ cookiecutter.package_name }}.config import ModelConfig
from {{ cookiecutter.package_name }}.serve import App

ROOT = Path(__file__).resolve().parents[2]


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

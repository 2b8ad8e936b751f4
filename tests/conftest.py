"""Bake the template into temporary folders, once per variant and session, and run things inside the result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]

# framework x task, the options that interact; the independent ones are cycled so each value is baked once.
VARIANTS: dict[str, dict[str, str]] = {
    "sklearn-classification": {
        "framework": "sklearn",
        "task": "classification",
        "python_version": "3.11",
        "dvc_remote": "local",
        "license": "MIT",
    },
    "sklearn-regression": {
        "framework": "sklearn",
        "task": "regression",
        "python_version": "3.12",
        "dvc_remote": "s3",
        "license": "Apache-2.0",
    },
    "tensorflow-classification": {
        "framework": "tensorflow",
        "task": "classification",
        "python_version": "3.11",
        "dvc_remote": "gcs",
        "license": "BSD-3-Clause",
    },
    "tensorflow-regression": {
        "framework": "tensorflow",
        "task": "regression",
        "python_version": "3.12",
        "dvc_remote": "azure",
        "license": "Proprietary",
    },
}


def bake(output_dir: Path, **answers: str) -> Path:
    """Bake with --no-input and these answers; return the generated repository."""
    return Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(output_dir), extra_context=answers))


def run(
    repo: Path, *command: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run a command in a baked repo with this interpreter and the repo's src on the path.

    The command runs with sys.executable, not `python` from PATH: a version manager's shim would read the baked
    .python-version and may pick an interpreter that is not installed.
    """
    if command[0] == "python":
        command = (sys.executable, *command[1:])
    full_env = {**os.environ, "PYTHONPATH": str(repo / "src"), **(env or {})}
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run(
        command, cwd=repo, env=full_env, text=True, capture_output=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """baked("sklearn-classification") -> the repo for that variant, baked once per session."""
    cache: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in cache:
            cache[variant] = bake(tmp_path_factory.mktemp(variant), **VARIANTS[variant])
        return cache[variant]

    return get


@pytest.fixture(params=list(VARIANTS), ids=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def repo(baked: Callable[[str], Path], variant: str) -> Path:
    return baked(variant)


def unavailable(reason: str, needed_for: str) -> NoReturn:
    """Skip on a developer machine that lacks a tool; fail when CI is set, where .ci/run must have installed it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: {needed_for} must run here; see .ci/run)")
    pytest.skip(reason)


def tool(name: str, install: str, needed_for: str) -> str:
    """The path of a command-line tool; unavailable() without it (``install``: how to get it)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed ({install})", needed_for)
    return path


def docker_engine(base_image: str, needed_for: str) -> Any:
    """A Docker SDK client of a running engine that has the local base stand-in; unavailable() otherwise."""
    try:
        import docker
    except ImportError:
        unavailable("the Docker SDK for Python is not installed", needed_for)
    try:
        client = docker.from_env()
        client.ping()
    except Exception as err:
        unavailable(f"no Docker engine answers: {err}", needed_for)
    try:
        client.images.get(base_image)
    except Exception:
        unavailable(f"base image {base_image} is missing: run .ci/base-image.sh", needed_for)
    return client

"""Each baked repo passes its own gate: ruff lint, ruff format and its full test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run


def test_ruff_lint_is_clean(repo: Path) -> None:
    run(repo, "python", "-m", "ruff", "check", "--no-cache", ".")


def test_ruff_format_is_clean(repo: Path) -> None:
    """Output the formatter would change is a bug of the template."""
    run(repo, "python", "-m", "ruff", "format", "--check", "--no-cache", ".")


@pytest.mark.slow
def test_own_test_suite_passes(repo: Path, tmp_path: Path) -> None:
    # hypothesis keeps its examples outside the shared bake, whose exact file tree test_bake checks (in any order)
    env = {"HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hypothesis")}
    result = run(repo, "python", "-m", "pytest", "-q", "-m", "", "-p", "no:cacheprovider", env=env)
    assert " passed" in result.stdout
    assert " failed" not in result.stdout

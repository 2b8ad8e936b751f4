"""The README's two commands are real: they exist in the Makefile, and `make demo` works end to end."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md must start with a bash block of commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_demo_then_test() -> None:
    assert readme_commands() == ["make demo", "make test"]


def test_ci_runs_the_readmes_test_command() -> None:
    assert re.search(r"^make test\b", (ROOT / ".ci/run").read_text(), re.M)


@pytest.mark.slow
def test_make_demo_bakes_and_runs_the_pipeline(tmp_path: Path) -> None:
    """README command 1: bake with the defaults, set up the generated repo from its lock, run its pipeline and tests."""
    result = subprocess.run(
        ["make", "demo", f"DEMO_DIR={tmp_path}"],
        cwd=ROOT,
        env={**os.environ, "MAKEFLAGS": ""},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    repo = tmp_path / "clinical-risk-model"
    assert (repo / ".venv/.installed").exists()
    assert " passed" in result.stdout

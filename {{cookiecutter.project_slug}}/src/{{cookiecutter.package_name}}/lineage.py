"""Where a model comes from: the git commit, the data's DVC md5 and model.yaml's sha256; and the release tags."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .config import ModelConfig
from .data import file_md5

RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


def git_output(root: Path, *args: str) -> str | None:
    """stdout of a git command in ``root``, or None when git is missing or fails."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed program, arguments from this package
            ["git", *args],  # noqa: S607 - git from PATH, fixed arguments
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def in_git(root: Path) -> bool:
    """True when ``root`` is tracked by git: inside a work tree and not git-ignored (a bake inside another repo)."""
    if git_output(root, "rev-parse", "--is-inside-work-tree") is None:
        return False
    return git_output(root, "check-ignore", "-q", "dvc.yaml") is None


def git_sha(root: Path) -> str:
    sha = git_output(root, "rev-parse", "HEAD") if in_git(root) else None
    return sha.strip() if sha else "unknown"


def lineage(config: ModelConfig) -> dict[str, str]:
    """The lineage triple: code (git sha or "unknown"), data (DVC md5), spec (model.yaml sha256)."""
    return {
        "git_sha": git_sha(config.root),
        "data_md5": file_md5(config.path(config.data.path)),
        "model_yaml_sha256": config.source_sha256,
    }


def release_tags(root: Path) -> list[str]:
    """v-tags that are versions, oldest first (v0.10.0 after v0.9.0); [] without git."""
    listed = git_output(root, "tag", "-l", "v*") if in_git(root) else None
    tags = [t for t in (listed or "").split() if RELEASE_TAG.match(t)]
    return sorted(tags, key=lambda t: tuple(int(p) for p in RELEASE_TAG.match(t).groups()))  # type: ignore[union-attr]

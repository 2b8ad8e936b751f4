"""Answers are data: hostile ones are rejected with one ERROR line, or stored literally; never executed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, bake

# (id, answers, the words the ERROR line must contain)
REJECTED = [
    ("empty-slug", {"project_slug": ""}, "project_slug: '': must be lowercase"),
    ("slug-with-spaces", {"project_slug": "my model"}, "project_slug: 'my model': must be lowercase"),
    ("slug-reserved", {"project_slug": "tests"}, "project_slug: 'tests': is reserved"),
    ("slug-uppercase", {"project_slug": "MyModel"}, "project_slug: 'MyModel'"),
    ("package-not-identifier", {"package_name": "my-model"}, "package_name: 'my-model': must be a lowercase Python"),
    ("package-keyword", {"package_name": "class"}, "package_name: 'class'"),
    ("package-shadows-stdlib", {"package_name": "json"}, "package_name: 'json': would shadow"),
    ("package-shadows-dependency", {"package_name": "sklearn"}, "package_name: 'sklearn': would shadow"),
    ("owner-bad-login", {"github_owner": "-bad-"}, "github_owner: '-bad-': must be a GitHub login"),
    ("owner-injection", {"github_owner": 'x"; rm -rf /'}, "github_owner:"),
    ("code-owner-not-handle", {"code_owner": "someone"}, "code_owner: 'someone': must be @user or @org/team"),
    ("name-with-newline", {"project_name": "two\nlines"}, "project_name: 'two\\nlines': must be one non-empty line"),
    ("description-empty", {"description": "   "}, "description: '   ': must be one non-empty line"),
    ("remote-url-with-quote", {"dvc_remote_url": "x'y"}, 'dvc_remote_url: "x\'y": must be a URL or path'),
]
# Combinations that are each valid alone.
REJECTED_COMBINATIONS = [
    (
        "s3-remote-with-gs-url",
        {"dvc_remote": "s3", "dvc_remote_url": "gs://bucket/x"},
        "dvc_remote_url: 'gs://bucket/x': dvc_remote s3 needs a URL starting with s3://",
    ),
    (
        "local-remote-with-url",
        {"dvc_remote": "local", "dvc_remote_url": "s3://bucket/x"},
        "dvc_remote local needs a folder path",
    ),
    (
        "team-of-another-org",
        {"github_owner": "acme", "code_owner": "@other/ml"},
        "code_owner: '@other/ml': a team must belong to the repository's organisation @acme",
    ),
]


@pytest.mark.parametrize(
    ("answers", "words"),
    [(a, w) for _, a, w in REJECTED + REJECTED_COMBINATIONS],
    ids=[i for i, _, _ in REJECTED + REJECTED_COMBINATIONS],
)
def test_bad_answers_are_rejected_with_one_error_line(answers: dict[str, str], words: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(out),
            str(ROOT),
            *(f"{key}={value}" for key, value in answers.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors, result.stderr
    assert any(words in line for line in errors), errors
    assert not out.exists() or not any(out.iterdir()), "a rejected bake left files behind"


@pytest.mark.parametrize(("key", "value"), [("framework", "pytorch"), ("python_version", "3.8"), ("dvc_remote", "ftp")])
def test_choices_are_checked_even_from_a_replay_file(key: str, value: str, tmp_path: Path) -> None:
    """cookiecutter checks choices typed at the prompt; a replay file bypasses that, the hook does not."""
    answers = json.loads((ROOT / "cookiecutter.json").read_text())
    context = {k: v[0] if isinstance(v, list) else v for k, v in answers.items() if not k.startswith("_")}
    context.update(
        project_slug="replayed",
        package_name="replayed",
        code_owner="@your-org",
        dvc_remote_url=".dvc-storage",
        _template=str(ROOT),
        **{key: value},
    )
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": context}))
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--replay-file", str(replay), "-o", str(tmp_path / "out"), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"ERROR: {key}: {value!r}: must be one of" in result.stderr
    assert not (tmp_path / "out" / "replayed").exists()


HOSTILE = [
    "__import__('os').system('touch PWNED')",
    "quote \" and ' and \\ backslash",
    "$(touch PWNED) `touch PWNED`",
    "'''\"\"\" end of strings",
]


@pytest.mark.parametrize("text", HOSTILE, ids=["python-call", "quotes-backslash", "shell", "triple-quotes"])
def test_hostile_free_text_is_stored_literally_never_run(text: str, tmp_path: Path) -> None:
    repo = bake(tmp_path, project_name="Safe Name", description=text)
    assert not list(tmp_path.rglob("PWNED"))
    assert not Path("PWNED").exists()
    assert json.loads((repo / ".cookiecutter.json").read_text())["cookiecutter"]["description"] == text
    assert yaml.safe_load((repo / "model.yaml").read_text())["metadata"]["description"] == text
    import tomllib

    assert tomllib.loads((repo / "pyproject.toml").read_text())["project"]["description"] == text


def test_hostile_project_name_becomes_a_rejected_slug(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="Hook script failed"):
        bake(tmp_path, project_name="__import__('os').system('touch PWNED')")
    assert not list(tmp_path.rglob("*"))

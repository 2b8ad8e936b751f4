"""What a bake writes: the exact tree per option, no template leftovers, the schema copy and the answers file."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import yaml

from .conftest import ROOT, VARIANTS, run

LEFTOVER = re.compile(r"\{\{ ?cookiecutter|\{%|%\}|\{#")


def expected_tree(answers: dict[str, str]) -> set[str]:
    out = set()
    for line in (ROOT / "tests/expected_tree.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, _, condition = line.partition(" [")
        conditions = dict(c.split("=") for c in condition.rstrip("]").split(",") if c)
        if all(answers[key] == value for key, value in conditions.items()):
            out.add(path.format(package=answers["package_name"]))
    return out


def written_tree(repo: Path) -> set[str]:
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def answers_of(repo: Path) -> dict[str, str]:
    return json.loads((repo / ".cookiecutter.json").read_text())["cookiecutter"]


def test_exact_file_tree(repo: Path) -> None:
    assert written_tree(repo) == expected_tree(answers_of(repo))


def test_no_template_syntax_left(repo: Path) -> None:
    offenders = [
        path
        for path in written_tree(repo)
        if not path.endswith(".csv") and LEFTOVER.search((repo / path).read_text(errors="replace"))
    ]
    assert offenders == []


def test_schema_is_a_byte_identical_copy(repo: Path) -> None:
    assert (repo / "schemas/model.schema.json").read_bytes() == (ROOT / "schemas/model.schema.json").read_bytes()


def test_answers_file_records_the_answers(repo: Path, variant: str) -> None:
    answers = answers_of(repo)
    for key, value in VARIANTS[variant].items():
        assert answers[key] == value
    assert not any(key.startswith("_") and key != "_template" for key in answers)


def test_model_yaml_matches_the_answers(repo: Path, variant: str) -> None:
    spec = yaml.safe_load((repo / "model.yaml").read_text())
    assert spec["model"]["framework"] == VARIANTS[variant]["framework"]
    assert spec["model"]["task"] == VARIANTS[variant]["task"]
    assert spec["deploy"]["image"] == f"ghcr.io/your-org/{answers_of(repo)['project_slug']}"


def test_validate_passes(repo: Path) -> None:
    result = run(repo, "python", "-m", answers_of(repo)["package_name"], "validate")
    assert "valid:" in result.stdout


def test_lock_files_match_the_framework(repo: Path, variant: str) -> None:
    dev = (repo / "requirements/dev.txt").read_text()
    serve = (repo / "requirements/serve.txt").read_text()
    assert ("tensorflow-cpu==" in dev) == variant.startswith("tensorflow")
    assert "tensorflow-cpu==" not in serve, "the serving image must not carry the training stack"
    remote = VARIANTS[variant]["dvc_remote"]
    plugin = {"local": None, "s3": "dvc-s3==", "gcs": "dvc-gs==", "azure": "dvc-azure=="}[remote]
    for other in ("dvc-s3==", "dvc-gs==", "dvc-azure=="):
        assert (other in dev) == (other == plugin), f"{other} in dev.txt of a {remote} repo"
    assert "dvc" not in serve
    pin = re.compile(r"^[a-z0-9_.-]+==[^\s;]+", re.M)
    dev_pins, serve_pins = set(pin.findall(dev)), set(pin.findall(serve))
    assert serve_pins <= dev_pins, f"serve.txt pins what dev.txt does not: {sorted(serve_pins - dev_pins)}"


def test_default_bake(tmp_path: Path, baked: Callable[[str], Path]) -> None:
    from .conftest import bake

    repo = bake(tmp_path)
    assert repo.name == "clinical-risk-model"
    assert written_tree(repo) == written_tree(baked("sklearn-classification"))

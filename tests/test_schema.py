"""schemas/model.schema.json is the one source of truth: valid 2020-12, documented field by field, strict."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from .conftest import ROOT

SCHEMA = json.loads((ROOT / "schemas/model.schema.json").read_text())


def properties(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, subschema) under a `properties` keyword, anywhere in the schema."""
    if isinstance(node, dict):
        for name, child in node.get("properties", {}).items():
            yield f"{path}.{name}", child
        for key, child in node.items():
            if key != "if":  # conditions name a property only to test its value
                yield from properties(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from properties(child, f"{path}[{i}]")


def objects(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield path, node
        for key, child in node.items():
            yield from objects(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from objects(child, f"{path}[{i}]")


def test_is_a_valid_2020_12_schema_with_id_and_version() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"].startswith("https://")
    assert SCHEMA["x-schema-version"].count(".") == 2


def test_every_property_has_a_description_and_an_example() -> None:
    missing = [
        path
        for path, child in properties(SCHEMA)
        if "$ref" not in child and not (child.get("description") and child.get("examples"))
    ]
    assert missing == []


def test_every_object_rejects_unknown_keys() -> None:
    """A typo must not pass silently."""
    lax = [
        path
        for path, node in objects(SCHEMA)
        if node.get("additionalProperties") is not False and not path.endswith("/properties/params")
    ]
    assert lax == []


def test_examples_are_valid_against_their_own_property() -> None:
    bad = []
    for path, child in properties(SCHEMA):
        if "$ref" in child:
            continue
        sub = {**child, "$defs": SCHEMA["$defs"]}
        bad += [f"{path}: {ex!r}" for ex in child["examples"] if not jsonschema.Draft202012Validator(sub).is_valid(ex)]
    assert bad == []


def test_reference_doc_is_current() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts/schema_docs.py")], capture_output=True, text=True, check=True
    ).stdout
    assert (ROOT / "docs/model-yaml.md").read_text() == generated, "run `make docs`"


@pytest.mark.parametrize("key", ["line-length", "target-version"])
def test_ruff_settings_match_the_generated_repo(key: str) -> None:
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"][key]
    generated = (ROOT / "{{cookiecutter.project_slug}}/pyproject.toml").read_text()
    assert f"{key} = {json.dumps(ours)}" in generated

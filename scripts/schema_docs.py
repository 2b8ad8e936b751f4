"""Print docs/model-yaml.md, the model.yaml reference, from schemas/model.schema.json (the one source of truth).

Run from the template root: python scripts/schema_docs.py > docs/model-yaml.md (or `make docs`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "model.schema.json"


def resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[1]] if ref else node


def kind(node: dict[str, Any]) -> str:
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    types = node.get("type", "any")
    text = " or ".join(types) if isinstance(types, list) else types
    limits = [
        f"{sign} {node[key]}"
        for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in node
    ]
    if "pattern" in node:
        limits.append(f"pattern `{node['pattern']}`")
    return text + (f" ({', '.join(limits)})" if limits else "")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(node: dict[str, Any], schema: dict[str, Any], prefix: str) -> Iterator[str]:
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        child = resolve(child, schema)
        path = f"{prefix}.{name}" if prefix else name
        items = resolve(child.get("items", {}), schema) if child.get("type") == "array" else {}
        default = f"`{json.dumps(child['default'])}`" if "default" in child else ""
        example = json.dumps(child["examples"][0]) if child.get("examples") else ""
        yield (
            f"| `{path}` | {cell(kind(child))} | {'yes' if name in required else ''} | {default} | "
            f"{cell(child.get('description', ''))} | `{cell(example)}` |"
        )
        if child.get("type") == "object" and "properties" in child:
            yield from rows(child, schema, path)
        if items.get("type") == "object":
            yield from rows(items, schema, f"{path}[]")


def main() -> None:
    schema = json.loads(SCHEMA.read_text())
    print("# model.yaml reference\n")
    print(
        f"Generated from `schemas/model.schema.json` (`$id` {schema['$id']}, schema version "
        f"{schema['x-schema-version']}) by `make docs`; do not edit by hand.\n"
    )
    print(schema["description"] + "\n")
    header = "| field | type | required | default | description | example |\n|---|---|---|---|---|---|"
    for section, node in schema["properties"].items():
        node = resolve(node, schema)
        print(f"## `{section}`\n\n{node['description']}\n")
        if "properties" in node:
            print(header)
            print("\n".join(rows(node, schema, section)))
        else:
            print(f"{kind(node)}; example: `{json.dumps(node['examples'][0])}`")
        print()
    print(
        "## Estimator parameters\n\n`model.params` is checked against the estimator's own list; anything else is "
        "rejected.\n"
    )
    for name, node in schema["$defs"].items():
        if name.startswith("params_"):
            print(f"### {name.removeprefix('params_')}\n")
            print(header)
            print("\n".join(rows(node, schema, "model.params")))
            print()


if __name__ == "__main__":
    main()

"""`release-check`: may this commit be released under this tag?

Two questions, each answered with one line: does the tag equal `v` + metadata.version, and did this commit's gate
report pass (or was a failed gate overridden in model.yaml, reviewed and recorded)? The release workflow runs this
before it re-tags the image and promotes it; a tag on a commit that never passed its gates stops here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from .config import ModelConfig

TAG = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$")
PASSED = frozenset({"pass", "passed", "overridden"})
FAILED = frozenset({"fail", "failed"})
NEEDS_DATA = False  # the release job checks out the tag only: no `dvc pull`


class BadInput(ValueError):
    """Exit 2: the tag or the report is malformed (as opposed to well-formed but not releasable)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", required=True, help="the git tag being released, e.g. v1.2.0")
    parser.add_argument(
        "--gate-report",
        type=Path,
        help="gate_report.json of this commit, or the provenance.json that embeds it (omit to check the tag only)",
    )
    parser.add_argument("--commit", help="the tagged commit; must equal git_sha in a provenance document")
    parser.add_argument(
        "--github-output", type=Path, help="on success append version, image and digest lines to this file"
    )


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    document: dict[str, Any] | None = None
    try:
        problems = [*tag_problems(args.tag, config.metadata.version)]
        if args.gate_report is not None:
            document = load_report(args.gate_report)
            problems += report_problems(document, args.gate_report, args.commit)
    except BadInput as err:
        print(f"release-check: {err}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"release-check: {problem}", file=sys.stderr)
    if problems:
        return 1
    if args.github_output:
        found = document or {}
        outputs = {"version": config.metadata.version, "image": found.get("image"), "digest": found.get("digest")}
        with args.github_output.open("a") as stream:
            stream.writelines(f"{key}={value}\n" for key, value in outputs.items() if value)
    checked = "tag" if args.gate_report is None else "tag and gate report"
    print(f"release-check: {args.tag} may be released ({checked} checked)")
    return 0


def tag_problems(tag: str, version: str) -> list[str]:
    if not TAG.match(tag):
        raise BadInput(f"--tag: {tag!r} is not a release tag; expected v<major>.<minor>.<patch>, e.g. v{version}")
    if tag != f"v{version}":
        return [
            f"tag {tag} does not match model.yaml metadata.version {version}; expected tag v{version} "
            "(bump metadata.version in a pull request first, or tag the commit that has it)"
        ]
    return []


def load_report(path: Path) -> dict[str, Any] | None:
    """The report, or None when there is none (the commit never passed CI on main)."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadInput(f"--gate-report: {path} is not readable JSON ({err}); expected a gate_report.json") from None
    if not isinstance(document, dict):
        raise BadInput(f"--gate-report: {path} holds a {type(document).__name__}; expected a JSON object")
    return document


def report_problems(document: dict[str, Any] | None, path: Path, commit: str | None) -> list[str]:
    if document is None:
        return [f"no gate report at {path}: this commit never passed CI on main; tag a commit whose gates passed"]
    problems = []
    if "gate_report" in document:  # a provenance document: the report plus what it was measured on
        built_from = document.get("git_sha")
        if commit and built_from != commit:
            problems.append(f"{path}: gate report is for commit {built_from}, not the tagged commit {commit}")
        document = document["gate_report"]
        if not isinstance(document, dict):
            raise BadInput(f"--gate-report: {path}: gate_report is not an object; expected the gate report")
    verdict = gate_verdict(document)
    if verdict == "fail":
        failed = ", ".join(failed_gates(document)) or "see the report"
        problems.append(f"gates failed on this commit ({failed}): it cannot be released; fix the model or override")
    elif verdict is None:
        found = document.get("verdict", document.get("passed", "missing"))
        raise BadInput(f"--gate-report: {path}: verdict {found!r}; expected verdict pass/fail or passed true/false")
    return problems


def gate_verdict(report: dict[str, Any]) -> str | None:
    """'pass' or 'fail' from a gate report's top-level `verdict` (or its `passed` flag); None when it has neither."""
    verdict = str(report.get("verdict", "")).lower()
    if verdict in PASSED:
        return "pass"
    if verdict in FAILED:
        return "fail"
    passed = report.get("passed")
    return None if not isinstance(passed, bool) else "pass" if passed else "fail"


def failed_gates(report: dict[str, Any]) -> list[str]:
    gates = report.get("gates", [])
    if not isinstance(gates, list):
        return []
    return [str(g.get("id") or g.get("metric")) for g in gates if isinstance(g, dict) and _failed(g)]


def _failed(gate: dict[str, Any]) -> bool:
    return gate.get("passed") is False or str(gate.get("verdict", gate.get("status"))).lower() in FAILED

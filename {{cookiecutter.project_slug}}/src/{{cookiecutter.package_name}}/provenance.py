"""`provenance`: what an image was built from, as one JSON document (and key=value lines for CI).

CI attaches it to the image as a signed attestation and keeps it as release evidence, so a tag can later be checked
against the exact gate report of the commit the image came from, with no retraining and no rebuild.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from .config import ModelConfig
from .data import file_md5
from .lineage import git_output
from .promote import PromoteError, check_digest
from .release_check import gate_verdict

GIT_SHA = re.compile(r"^[0-9a-f]{40}$")
NEEDS_DATA = False  # the data hash comes from DVC's .dvc file when the data itself was not pulled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="where gate_report.json is")
    parser.add_argument("--out", type=Path, default=Path("artifacts/provenance.json"), help="the JSON to write")
    parser.add_argument("--git-sha", help="the commit built (default: git rev-parse HEAD)")
    parser.add_argument("--digest", help="the pushed image digest, sha256:<64 hex>, once known")
    parser.add_argument("--github-output", type=Path, help="also append key=value lines to this file ($GITHUB_OUTPUT)")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    try:
        git_sha = args.git_sha or head_commit(config.root)
        if not GIT_SHA.match(git_sha):
            raise PromoteError(f"--git-sha: {git_sha!r} is not a commit; expected 40 lowercase hex digits")
        digest = check_digest(args.digest) if args.digest else None
    except PromoteError as err:
        print(f"provenance: {err}", file=sys.stderr)
        return 2
    report_path = config.path(args.artifacts) / "gate_report.json"
    if not report_path.exists():
        print(f"provenance: no {report_path}; run `make gate` first", file=sys.stderr)
        return 1
    data_md5 = data_hash(config.path(config.data.path))
    if data_md5 is None:
        where = config.data.path
        print(f"provenance: no {where} and no {where}.dvc to hash; run `dvc pull`", file=sys.stderr)
        return 1
    document = build(config, git_sha, json.loads(report_path.read_text()), digest, data_md5)
    out = config.path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    if args.github_output:
        with args.github_output.open("a") as stream:
            stream.writelines(f"{key}={document[key]}\n" for key in OUTPUT_KEYS if document.get(key) is not None)
    print(f"{out}: {document['image']} {document['version']} from {git_sha[:12]}, gates {document['verdict']}")
    return 0


OUTPUT_KEYS = (
    "name",
    "version",
    "git_sha",
    "data_md5",
    "model_yaml_sha256",
    "image",
    "digest",
    "verdict",
)


def build(
    config: ModelConfig, git_sha: str, gate_report: dict[str, Any], digest: str | None, data_md5: str
) -> dict[str, Any]:
    return {
        "name": config.metadata.name,
        "version": config.metadata.version,
        "image": config.deploy.image if config.deploy else "",
        "digest": digest,
        "git_sha": git_sha,
        "model_yaml_sha256": config.source_sha256,
        "data_md5": data_md5,
        "verdict": gate_verdict(gate_report),
        "gate_report": gate_report,
    }


def data_hash(path: Path) -> str | None:
    """DVC's md5 of the data: from its .dvc file (always checked out), else of the file itself, else None."""
    dvc_file = path.with_name(path.name + ".dvc")
    if dvc_file.exists():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
        if re.fullmatch(r"[0-9a-f]{32}", str(outs[0].get("md5", ""))):
            return str(outs[0]["md5"])
    return file_md5(path) if path.exists() else None


def head_commit(root: Path) -> str:
    out = git_output(root, "rev-parse", "HEAD")
    if out is None:
        raise PromoteError("--git-sha: not given and this is not a git repository; expected --git-sha <commit>")
    return out.strip()

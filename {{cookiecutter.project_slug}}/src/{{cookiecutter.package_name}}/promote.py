"""`promote`: pin an image digest in a deploy overlay and sync replicas, resources and port from model.yaml.

The overlay (deploy/<env>/kustomization.yaml) is written whole from model.yaml and the digest, so model.yaml stays
the source of truth and the same inputs always give the same bytes: promoting the pinned digest again is a no-op.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

from .config import ModelConfig

ENVIRONMENTS = ("staging", "production")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
UNPROMOTED = "sha256:" + "0" * 64  # what a fresh repo pins until main builds its first image
CONTAINER = "model-server"  # the Deployment, container and image placeholder name in deploy/base
NEEDS_DATA = False  # deploy jobs check out the code only: no `dvc pull`


class PromoteError(ValueError):
    """Bad input for promote: one line naming the option and what was expected."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS, help="the overlay to write")
    parser.add_argument(
        "--digest", help="image digest sha256:<64 hex> to pin; omit to keep the pinned one and sync model.yaml only"
    )
    parser.add_argument("--image", help="image repository (default: model.yaml deploy.image); no tag, no digest")
    parser.add_argument("--deploy-dir", type=Path, default=Path("deploy"), help="folder with base/ and the overlays")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    if config.deploy is None:
        print("model.yaml: deploy: missing; expected a deploy section with deploy.image to promote", file=sys.stderr)
        return 2
    path = config.path(args.deploy_dir) / args.env / "kustomization.yaml"
    try:
        digest = check_digest(args.digest) if args.digest else pinned_digest(path)
        image = check_image(args.image) if args.image else config.deploy.image
    except PromoteError as err:
        print(f"promote: {err}", file=sys.stderr)
        return 2
    if not path.parent.is_dir():
        print(f"promote: {path.parent}: no such overlay folder; expected deploy/{args.env}/", file=sys.stderr)
        return 1
    text = render_overlay(config, args.env, image, digest)
    if path.exists() and path.read_text() == text:
        print(f"{path}: unchanged ({image}@{digest})")
        return 0
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: an interrupted run never leaves half an overlay
    print(f"{path}: pinned {image}@{digest}")
    return 0


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise PromoteError(f"--digest: {digest!r} is not an image digest; expected sha256: and 64 lowercase hex digits")
    return digest


def check_image(image: str) -> str:
    if not re.match(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$", image):
        raise PromoteError(
            f"--image: {image!r} is not an image repository; expected e.g. ghcr.io/org/name, without tag or digest"
        )
    return image


def pinned_digest(path: Path) -> str:
    """The digest the overlay pins now (the placeholder when there is no overlay file yet)."""
    if not path.exists():
        return UNPROMOTED
    try:
        document = yaml.safe_load(path.read_text()) or {}
        digest = next(i["digest"] for i in document.get("images", []) if i.get("name") == CONTAINER)
    except (yaml.YAMLError, StopIteration, KeyError, TypeError, AttributeError):
        raise PromoteError(f"{path}: images: no {CONTAINER} digest; expected one, or pass --digest") from None
    return check_digest(str(digest))


def render_overlay(config: ModelConfig, env: str, image: str, digest: str) -> str:
    """The overlay's kustomization.yaml; the bake writes the same bytes (a test checks it)."""
    if config.deploy is None:
        raise PromoteError("model.yaml: deploy: missing; expected a deploy section with deploy.image")
    target = getattr(config.deploy, env)
    res = config.deploy.resources
    scale = target.autoscaling
    low, high = (scale.min_replicas, scale.max_replicas) if scale else (target.replicas, target.replicas)
    cpu_target = scale.target_cpu_utilization if scale else 80
    resources = {
        "requests": {"cpu": res.requests.cpu, "memory": res.requests.memory},
        "limits": {"cpu": res.limits.cpu, "memory": res.limits.memory},
    }
    deployment = [
        ("/spec/replicas", target.replicas),
        ("/spec/template/spec/containers/0/resources", json.dumps(resources)),
        ("/spec/template/spec/containers/0/ports/0/containerPort", config.serving.port),
    ]
    hpa = [
        ("/spec/minReplicas", low),
        ("/spec/maxReplicas", high),
        ("/spec/metrics/0/resource/target/averageUtilization", cpu_target),
    ]
    return "\n".join(
        [
            f"# Written by `python -m {__package__} promote --env {env}` from model.yaml (replicas, resources,",
            "# autoscaling, port) and the promoted image digest. Do not edit by hand: change model.yaml, then",
            "# `make deploy-sync`.",
            "apiVersion: kustomize.config.k8s.io/v1beta1",
            "kind: Kustomization",
            f"namespace: {config.metadata.name}-{env}",
            "resources:",
            "  - ../base",
            "images:",
            f"  - name: {CONTAINER}",
            f"    newName: {image}",
            f"    digest: {digest}",
            "patches:",
            *_patch("Deployment", deployment),
            *_patch("HorizontalPodAutoscaler", hpa),
            "",
        ]
    )


def _patch(kind: str, operations: list[tuple[str, object]]) -> list[str]:
    """A JSON 6902 patch of the base object, one replace per line."""
    lines = ["  - target:", f"      kind: {kind}", f"      name: {CONTAINER}", "    patch: |-"]
    return lines + [f"      - op: replace\n        path: {path}\n        value: {value}" for path, value in operations]

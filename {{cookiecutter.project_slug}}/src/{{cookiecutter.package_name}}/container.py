"""`container build` / `container smoke`: the serving image, through the Docker SDK for Python.

build: the Dockerfile with the base image, version and lineage as build arguments (OCI labels).
smoke: run the image, wait until ready, send a real /predict, compare with in-process predictions, stop it with
SIGTERM and expect a clean exit. The rows come from the data file when it is here, else from the reference profile
saved with the model (CI's publish job has the artifacts, not the data).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig
from .export import parity_rows
from .profile import PROFILE_FILE, ProfileError, load_profile
from .runtime import MANIFEST, ModelLoadError, load_predictor, read_verified

NEEDS_DATA = False  # the build context leaves data out, and smoke takes its rows from the profile without it
MODEL_DIR, RUNTIME_DIR = Path("artifacts/model"), Path("artifacts/runtime")
CA_IN_CONTEXT = ".build-ca.crt"  # copied into the builder stage only; see the Dockerfile
CONTAINER_PORT = 8080
SMOKE_ROWS = 8


class ContainerError(Exception):
    """The engine, the build or the running image failed; the message says which and why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build", "smoke"], help="build the image, or run it and call it")
    parser.add_argument("--tag", help="image tag (default: <metadata.name>:<metadata.version>)")
    parser.add_argument("--base-image", help="BASE_IMAGE build argument (default: the Dockerfile's pinned digest)")
    parser.add_argument(
        "--build-ca",
        type=Path,
        help="CA bundle for pip in the builder stage only, for TLS-intercepting networks (default: $PIP_CERT)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ready (smoke)")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    tag = args.tag or f"{config.metadata.name}:{config.metadata.version}"
    try:
        if args.action == "build":
            check_artifacts(config)  # before the engine: a missing model is the likelier problem
            build(engine(), config, tag, args.base_image, args.build_ca or _env_ca())
        else:
            smoke(engine(), config, tag, args.timeout)
    except ContainerError as err:
        print(f"container {args.action}: {err}", file=sys.stderr)
        return 1
    return 0


def engine() -> Any:
    try:
        import docker
    except ImportError:
        raise ContainerError("the Docker SDK for Python is not installed (pip install docker, or make setup)") from None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as err:
        raise ContainerError(f"no Docker engine answers ({err}); start Docker or set DOCKER_HOST") from None
    return client


def _env_ca() -> Path | None:
    import os

    value = os.environ.get("PIP_CERT")
    return Path(value) if value else None


def build_args(config: ModelConfig, base_image: str | None) -> dict[str, str]:
    metadata = json.loads(config.path(MODEL_DIR / "metadata.json").read_text())
    lineage = metadata.get("lineage", {})
    image = config.deploy.image if config.deploy else ""
    parts = image.split("/")
    source = f"https://github.com/{parts[1]}/{parts[2]}" if image.startswith("ghcr.io/") and len(parts) == 3 else image
    args = {
        "MODEL_NAME": config.metadata.name,
        "VERSION": str(metadata.get("version", config.metadata.version)),
        "GIT_SHA": str(lineage.get("git_sha", "unknown")),
        "DATA_MD5": str(lineage.get("data_md5", "unknown")),
        "MODEL_YAML_SHA256": str(lineage.get("model_yaml_sha256", "unknown")),
        "SOURCE": source,
    }
    if base_image:
        args["BASE_IMAGE"] = base_image
    return args


def check_artifacts(config: ModelConfig) -> None:
    """The image carries the trained artifact and the exported runtime: both must be there and intact."""
    try:
        read_verified(config.path(MODEL_DIR), "metadata.json")
        read_verified(config.path(RUNTIME_DIR), MANIFEST, allow_empty=True)
    except ModelLoadError as err:
        raise ContainerError(f"{err}; run the pipeline (train, export) before building the image") from None


def build(client: Any, config: ModelConfig, tag: str, base_image: str | None, ca: Path | None) -> None:
    ca_copy = config.path(CA_IN_CONTEXT)
    if ca is not None:
        if not ca.is_file():
            raise ContainerError(f"--build-ca {ca} is not a file")
        shutil.copyfile(ca, ca_copy)
    started = time.monotonic()
    log: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(config.root.resolve()),
            tag=tag,
            buildargs=build_args(config, base_image),
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "stream" in chunk:
                log.append(chunk["stream"].rstrip())
            if "error" in chunk:
                tail = "\n".join(line for line in log[-15:] if line)
                raise ContainerError(f"docker build failed: {chunk['error'].strip()}\n{tail}")
    except ContainerError:
        raise
    except Exception as err:
        raise ContainerError(f"docker build failed: {err}") from None
    finally:
        ca_copy.unlink(missing_ok=True)
    image = client.images.get(tag)
    size = image.attrs["Size"]
    message = f"built {tag} ({image.id[:19]}) in {time.monotonic() - started:.0f}s, {size / 2**20:.0f} MiB"
    if base_image:
        try:
            base = client.images.get(base_image).attrs["Size"]
            message += f" ({(size - base) / 2**20:.0f} MiB over {base_image})"
        except Exception:  # noqa: S110 - the base size is a nicety
            pass
    print(f"container build: {message}")


def smoke(client: Any, config: ModelConfig, tag: str, timeout: float) -> None:
    try:
        client.images.get(tag)
    except Exception:
        raise ContainerError(f"image {tag} not found; run `container build` first") from None
    started = time.monotonic()
    container = client.containers.run(tag, detach=True, ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", None)})
    try:
        base = f"http://127.0.0.1:{_host_port(container)}"
        ready_after = _wait_ready(container, base, timeout)
        rows, source = smoke_rows(config)
        status, headers, answer = _post(base + "/predict", {"instances": rows})
        if status != 200:
            raise ContainerError(f"/predict answered {status}: {answer}")
        _compare(config, rows, answer)
        if headers.get("x-model-version") != config.metadata.version:
            raise ContainerError(f"x-model-version header is {headers.get('x-model-version')!r}")
        container.stop(timeout=20)  # SIGTERM: uvicorn drains and exits 0
        code = container.wait(timeout=30)["StatusCode"]
        if code != 0:
            raise ContainerError(f"the server exited {code} after SIGTERM; expected a clean exit 0")
    except ContainerError as err:
        logs = container.logs(tail=30).decode(errors="replace")
        raise ContainerError(f"{err}\n--- container log (last 30 lines) ---\n{logs}") from None
    finally:
        container.remove(force=True)
    print(
        f"container smoke: {tag} ready {ready_after:.1f}s after start, /predict on {SMOKE_ROWS} rows from {source} "
        f"matched in-process predictions, clean exit on SIGTERM ({time.monotonic() - started:.1f}s in all)"
    )


def smoke_rows(config: ModelConfig) -> tuple[list[dict[str, Any]], str]:
    """SMOKE_ROWS request rows and where they came from: the data file's first rows when it is here; else values
    from the reference profile (training quantiles, categories), and the data contract for features it leaves out."""
    if config.path(config.data.path).is_file():
        columns, _ = parity_rows(config, [_feature(f) for f in config.data.features])
        return [{name: col[i] for name, col in columns.items()} for i in range(SMOKE_ROWS)], config.data.path
    path = config.path(MODEL_DIR / PROFILE_FILE)
    try:
        profiled = load_profile(path)["features"]
    except ProfileError as err:
        raise ContainerError(f"no {config.data.path} and {err}") from None
    rows = [
        {f.name: _profiled(f, profiled.get(f.name) or {}, i) for f in config.data.features} for i in range(SMOKE_ROWS)
    ]
    return rows, f"the reference profile ({MODEL_DIR / PROFILE_FILE})"


def _profiled(feature: Any, stats: dict[str, Any], i: int) -> Any:
    """Row i's value: numbers spread over the training quantiles, categories in turn (as the data file types them)."""
    if feature.type in ("number", "integer"):
        bounds = [b for b in (feature.min, feature.max) if b is not None]
        choices = stats.get("edges") or [v for v in (stats.get("mean"), *bounds) if v is not None][:1] or [0.0]
        value = float(choices[i * len(choices) // SMOKE_ROWS])
        return float(round(value)) if feature.type == "integer" else value
    if feature.type == "boolean":
        return i % 2 == 0
    choices = sorted(stats.get("counts") or {}) or list(feature.values)
    return choices[i % len(choices)] if choices else None


def _feature(feature: Any) -> dict[str, Any]:
    return {"name": feature.name, "type": feature.type}


def _host_port(container: Any) -> int:
    for _ in range(50):
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{CONTAINER_PORT}/tcp")
        if bindings:
            return int(bindings[0]["HostPort"])
        time.sleep(0.1)
    raise ContainerError("the container published no port")


def _wait_ready(container: Any, base: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        container.reload()
        if container.status in ("exited", "dead"):
            raise ContainerError(f"the container exited ({container.attrs['State'].get('ExitCode')}) before ready")
        try:
            with urllib.request.urlopen(base + "/v2/health/ready", timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise ContainerError(f"not ready within {timeout:.0f}s")


def _post(url: str, payload: Any) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}, err.read().decode(errors="replace")


def _compare(config: ModelConfig, rows: list[dict[str, Any]], answer: dict[str, Any]) -> None:
    """The container's answer equals this process's predictions from the same artifact."""
    predictor, _ = load_predictor(
        config.path(MODEL_DIR), config.path(RUNTIME_DIR), config.serving.runtime, config.model.task
    )
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    predictions, proba = predictor.predict_columns(columns, len(rows))
    if config.model.task == "regression":
        if not np.allclose(answer["predictions"], predictions, rtol=1e-9, atol=1e-9):
            raise ContainerError(f"predictions {answer['predictions']} differ from in-process {predictions}")
        return
    if answer["predictions"] != predictions:
        raise ContainerError(f"predictions {answer['predictions']} differ from in-process {predictions}")
    if proba is not None and predictor.classes is not None:
        got = np.array([[row[str(c)] for c in predictor.classes] for row in answer["probabilities"]])
        if not np.allclose(got, proba, rtol=1e-9, atol=1e-9):
            raise ContainerError(f"probabilities differ from in-process ones by {np.abs(got - proba).max():.3g}")

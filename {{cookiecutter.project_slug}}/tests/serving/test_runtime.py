"""The exported runtime: the numpy preprocessing equals the fitted ColumnTransformer bit for bit; the server
process itself starts with several workers, sums their metrics, replaces a crashed worker, stops when a worker
cannot start and exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.artifact import load_skops
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ConfigError, ModelConfig, load_config
from {{ cookiecutter.package_name }}.export import describe_column_transformer, parity_rows
from {{ cookiecutter.package_name }}.runtime import MANIFEST, Predictor, Preprocessor
from {{ cookiecutter.package_name }}.serve import App

from .conftest import ROOT, example_rows


def test_numpy_preprocessing_is_bitwise_equal(config: ModelConfig, artifacts: Path) -> None:
    model_dir = artifacts / "model"
    fitted = (
        load_skops(model_dir / "model.skops").named_steps["preprocess"]
        if config.model.framework == "sklearn"
        else load_skops(model_dir / "preprocess.skops")
    )
    columns, rows = parity_rows(config, [{"name": f.name, "type": f.type} for f in config.data.features])
    frame = pd.DataFrame({k: [np.nan if v is None else v for v in col] for k, col in columns.items()})
    expected = np.asarray(fitted.transform(frame), dtype=np.float64)
    got = Preprocessor(describe_column_transformer(fitted)).transform(columns, rows)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)  # exact, NaNs imputed and unseen categories included


def test_export_records_a_passed_parity_check(artifacts: Path) -> None:
    manifest = json.loads((artifacts / "runtime" / MANIFEST).read_text())
    assert manifest["parity"]["passed"] is True
    assert manifest["parity"]["label_mismatches"] == 0
    assert manifest["parity"]["max_difference"] <= manifest["parity"]["tolerance"]
    assert manifest["parity"]["rows"] > 100
    assert "numpy" in manifest["library_versions"]


def test_serving_needs_model_yaml_but_not_the_data(tmp_path: Path) -> None:
    for part in ("model.yaml", "schemas"):
        source = ROOT / part
        (tmp_path / part).symlink_to(source, target_is_directory=source.is_dir())
    assert load_config(tmp_path / "model.yaml", require_data=False).metadata.name
    with pytest.raises(ConfigError, match=r"\$\.data\.path: .* does not exist"):
        load_config(tmp_path / "model.yaml")


@pytest.mark.slow
def test_server_process_with_two_workers_drains_and_exits_on_sigterm(artifacts: Path) -> None:
    server, base = _start_server(ROOT / "model.yaml", artifacts)
    try:
        _wait_ready(base + "/v2/health/ready", server)
        body = json.dumps({"instances": example_rows(load_config(ROOT / "model.yaml"), 2)}).encode()
        for _ in range(6):
            request = urllib.request.Request(base + "/predict", body, {"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert answer.status == 200
        assert _predict_count(base, 6) == 6  # summed over both workers
        first = _workers(server.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)  # a crashed worker is replaced, forked from the parent's loaded model
        deadline, workers = time.monotonic() + 30, first
        while (first[0] in workers or len(workers) != 2) and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _workers(server.pid)
        assert len(workers) == 2
        assert first[0] not in workers
        _wait_ready(base + "/v2/health/ready", server)
        assert _predict_count(base, 6) == 6  # a dead worker's counts stay in the sum: counters never go back
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        log = server.stderr.read() if server.stderr else ""
    assert code == 0, log
    assert log.count("Finished server process") == 2, log  # both live workers drained
    for pid in workers:
        with pytest.raises(ProcessLookupError):  # reaped by the server: no worker outlives it
            os.kill(pid, 0)


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_server(artifacts: Path, scratch_repo: Path) -> None:
    model_yaml = scratch_repo / "model.yaml"
    unwritable = model_yaml / "predictions.jsonl"  # under a file: the directory cannot be made
    text = model_yaml.read_text()
    assert "destination: stdout}" in text
    logging_on = "sample_rate: 1.0, destination: " + str(unwritable) + "}"
    model_yaml.write_text(text.replace("sample_rate: 0.0, destination: stdout}", logging_on))
    server, _ = _start_server(model_yaml, artifacts)
    try:
        code = server.wait(timeout=60)
    finally:
        server.kill()
        log = server.stderr.read() if server.stderr else ""
    assert code == 1, log
    assert f"cannot open {unwritable}" in log


def _start_server(model_yaml: Path, artifacts: Path) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--config", str(model_yaml), "serve"]
    command += ["--port", str(port), "--workers", "2", "--model-dir", str(artifacts / "model")]
    command += ["--runtime-dir", str(artifacts / "runtime")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    return server, f"http://127.0.0.1:{port}"


def _workers(pid: int) -> list[int]:
    """The server's worker processes (its children; pgrep works on Linux and macOS)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return sorted(int(child) for child in found.stdout.split())


def _predict_count(base: str, expected: float) -> float:
    """http_requests_total of /predict 200 as /metrics reports it; polled, as a worker counts after answering."""
    deadline, total = time.monotonic() + 5, 0.0
    while total != expected and time.monotonic() < deadline:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('http_requests_total{route="/predict",status="200"}')
        )
    return total


def _wait_ready(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in 60s")


def test_container_build_without_a_trained_model_says_what_to_run(
    scratch_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(scratch_repo / "model.yaml"), "container", "build"]) == 1
    err = capsys.readouterr().err
    assert "container build: " in err
    assert "metadata.json is missing" in err
    assert "run the pipeline (train, export) before building the image" in err


def test_concurrent_requests_to_a_slow_predictor_share_one_model_call(config: ModelConfig, artifacts: Path) -> None:
    app = App(config, artifacts / "model", artifacts / "runtime")
    app.load()
    real = app.predictor
    assert real is not None
    calls: list[int] = []

    def counting(columns: Any, rows: int) -> Any:
        calls.append(rows)
        return real.predict_columns(columns, rows)

    app.use(Predictor("native", real.classes, counting))  # as slow per call as the native Pipeline: batched
    sizes = [1, 3, 1, 5, 2, 1, 4, 1]
    requests = [example_rows(config, k) for k in sizes]

    async def call(rows: list[dict[str, Any]]) -> tuple[int, Any]:
        body = json.dumps({"instances": rows}).encode()
        sent: list[dict[str, Any]] = []
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/predict",
            "headers": [(b"content-type", b"application/json")],
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    async def burst() -> list[tuple[int, Any]]:
        return await asyncio.gather(*(call(rows) for rows in requests))

    answers = asyncio.run(burst())
    assert calls == [sum(sizes)]  # one model call for the whole burst
    for rows, (status, body) in zip(requests, answers, strict=True):
        assert status == 200
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        alone, _ = real.predict_columns(columns, len(rows))
        expected = pytest.approx(alone) if isinstance(alone[0], float) else alone
        assert body["predictions"] == expected


def test_native_runtime_and_the_fallback_from_a_failed_parity_check(config: ModelConfig, artifact_copy: Path) -> None:
    rows = example_rows(config, 6)
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    exported = App(config, artifact_copy / "model", artifact_copy / "runtime")
    exported.load()
    native_config = dataclasses.replace(config, serving=dataclasses.replace(config.serving, runtime="native"))
    native = App(native_config, artifact_copy / "model", artifact_copy / "runtime")
    native.load()
    manifest_path = artifact_copy / "runtime" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["parity"]["passed"] = False
    manifest_path.write_text(json.dumps(manifest))
    fallback = App(config, artifact_copy / "model", artifact_copy / "runtime")
    fallback.load()
    assert exported.predictor is not None
    assert exported.predictor.kind.startswith("exported:")
    assert native.predictor is not None
    assert native.predictor.kind == "native"
    assert fallback.predictor is not None
    assert fallback.predictor.kind == "native"  # auto never serves a runtime whose parity check failed
    want, want_proba = exported.predictor.predict_columns(columns, len(rows))
    for app in (native, fallback):
        assert app.predictor is not None
        got, got_proba = app.predictor.predict_columns(columns, len(rows))
        if config.model.task == "regression":
            np.testing.assert_allclose(got, want, rtol=1e-5)
        else:
            assert got == want
            np.testing.assert_allclose(got_proba, want_proba, rtol=1e-5, atol=1e-6)


def test_smoke_rows_without_the_data_come_from_the_profile_and_are_served(
    scratch_repo: Path, artifacts: Path, client: Any
) -> None:
    """CI's publish job has the artifacts, not the data: `container smoke` then sends rows made from the reference
    profile (and the contract), which the server accepts and predicts on like any request."""
    from {{ cookiecutter.package_name }}.container import SMOKE_ROWS, ContainerError, smoke_rows

    shutil.copytree(artifacts / "model", scratch_repo / "artifacts/model")
    for data in (scratch_repo / "data").glob("*.csv"):
        data.unlink()
    config = load_config(scratch_repo / "model.yaml", require_data=False)
    rows, source = smoke_rows(config)
    assert source == "the reference profile (artifacts/model/profile.json)"
    assert len(rows) == SMOKE_ROWS
    assert all(set(row) == {f.name for f in config.data.features} for row in rows)
    answer = client.post("/predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == SMOKE_ROWS

    (scratch_repo / "artifacts/model/profile.json").unlink()
    with pytest.raises(ContainerError, match=r"no data/\S+\.csv and cannot read the reference profile"):
        smoke_rows(config)

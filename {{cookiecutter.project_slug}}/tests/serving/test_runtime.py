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

from {{ cookiecutter.package_name }}.artifact import load_skops, save_artifact
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ESTIMATORS, ConfigError, ModelConfig, load_config
from {{ cookiecutter.package_name }}.data import read_frame, split
from {{ cookiecutter.package_name }}.export import (
    TREE_ENSEMBLES,
    TREE_LINKS,
    TREES_FILE,
    _sklearn_estimator,
    describe_column_transformer,
    export,
    parity_rows,
)
from {{ cookiecutter.package_name }}.lineage import lineage
from {{ cookiecutter.package_name }}.runtime import (
    LINKS,
    MANIFEST,
    Predictor,
    Preprocessor,
    exported_predictor,
    native_predictor,
)
from {{ cookiecutter.package_name }}.serve import App
from {{ cookiecutter.package_name }}.train import artifact_metadata, fit_sklearn

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


TREE_CASES = [
    pytest.param(estimator, False, id=estimator)
    for estimator in ESTIMATORS[("sklearn", "{{ cookiecutter.task }}")]
    if estimator in TREE_ENSEMBLES
]
{%- if cookiecutter.task == 'classification' %}
TREE_CASES += [
    pytest.param(estimator, True, id=f"{estimator}-multiclass")
    for estimator in ESTIMATORS[("sklearn", "classification")]
    if estimator in TREE_ENSEMBLES
]
{%- endif %}
# Loads the exported runtime in a fresh interpreter and lists the heavy modules that came with it.
LOAD_ALONE = """
import json, sys
from pathlib import Path
from {{ cookiecutter.package_name }}.runtime import exported_predictor
predictor = exported_predictor(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
predictor.predict_columns(json.loads(sys.argv[4]), 1)
print(json.dumps([name for name in ("sklearn", "skops", "scipy", "pandas") if name in sys.modules]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("estimator", "multiclass"), TREE_CASES)
def test_tree_ensembles_export_as_node_arrays_and_predict_like_the_model(
    config: ModelConfig, estimator: str, multiclass: bool, tmp_path: Path
) -> None:
    """Every allowed forest and boosting model is served by numpy alone: parity passed at export, the same
    predictions as the trained model on rows it never saw, and no scikit-learn or skops imported to load it."""
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, framework="sklearn", estimator=estimator, params={})
    )
    frame = read_frame(config)
{%- if cookiecutter.task == 'classification' %}
    if multiclass:  # as test_behaviour's multiclass target: a third class for the smaller half
        target = config.data.target
        frame[target] = np.where(frame["area_mean"] > frame["area_mean"].median(), frame[target], "unsure")
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, positive_class=None))
{%- endif %}
    train_rows, _ = split(config, frame)
    pipeline = fit_sklearn(config, train_rows)
    classes = [str(c) for c in pipeline.classes_] if config.model.task == "classification" else None
    metadata = {**artifact_metadata(config, lineage(config)), "classes": classes}
    save_artifact(tmp_path / "model", metadata=metadata, features=config.data.features, pipeline=pipeline)
    manifest = export(config, tmp_path / "model", tmp_path / "runtime")

    assert manifest["estimator"]["kind"] == "trees", manifest["estimator"]
    assert manifest["parity"]["passed"] is True, manifest["parity"]
    assert set(manifest["library_versions"]) == {"numpy"}  # the server needs neither scikit-learn nor skops
    assert (tmp_path / "runtime" / TREES_FILE).is_file()
    assert classes == (["benign", "malignant", "unsure"] if multiclass else classes)

    columns, rows = _fresh_rows(config, 300)
    exported = exported_predictor(tmp_path / "runtime", tmp_path / "model", config.model.task)
    native = native_predictor(tmp_path / "model")
    assert exported.kind == "exported:trees"
    got, got_proba = exported.predict_columns(columns, rows)
    want, want_proba = native.predict_columns(columns, rows)
    if classes is None:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    else:
        assert got_proba is not None
        assert want_proba is not None
        np.testing.assert_allclose(got_proba, want_proba, rtol=1e-12, atol=1e-15)
        top_two = np.sort(want_proba, axis=1)[:, -2:]
        untied = top_two[:, 1] - top_two[:, 0] > 1e-9
        assert [g for g, u in zip(got, untied, strict=True) if u] == [w for w, u in zip(want, untied, strict=True) if u]

    one_row = json.dumps({name: values[:1] for name, values in columns.items()})
    command = [sys.executable, "-c", LOAD_ALONE, str(tmp_path / "runtime"), str(tmp_path / "model")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    alone = subprocess.run([*command, config.model.task, one_row], env=env, capture_output=True, text=True, check=True)
    assert json.loads(alone.stdout) == []


def _fresh_rows(config: ModelConfig, count: int) -> tuple[dict[str, list[Any]], int]:
    """Rows the model never saw: the data's rows with every number moved by up to 20% of its value, some values
    missing and some categories unseen."""
    columns, rows = parity_rows(config, [{"name": f.name, "type": f.type} for f in config.data.features])
    rng = np.random.default_rng(7)
    picked = rng.integers(0, rows, count)
    fresh: dict[str, list[Any]] = {}
    for feature in config.data.features:
        values = [columns[feature.name][i] for i in picked]
        pairs = list(zip(values, rng.random(count).tolist(), strict=True))
        if feature.is_categorical:
            fresh[feature.name] = [None if r < 0.05 else "never-seen" if r < 0.1 else v for v, r in pairs]
        else:  # moved by -20% to +20%; missing when the draw is in its top 5%
            fresh[feature.name] = [None if v is None or r > 0.95 else float(v) * (0.8 + 0.4 * r) for v, r in pairs]
    return fresh, count


def test_a_tree_ensemble_the_export_cannot_read_is_served_as_the_fitted_estimator(tmp_path: Path) -> None:
    """Native categorical splits are not exported: the runtime keeps the fitted estimator (kind sklearn), says why."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(200, 2)).astype(np.float64)
    model = HistGradientBoostingClassifier(categorical_features=[0], max_iter=5).fit(x, x[:, 0] > 1)
    spec, libraries = _sklearn_estimator(model, "HistGradientBoostingClassifier", tmp_path)
    assert spec["kind"] == "sklearn"
    assert "categorical" in spec["why"]
    assert libraries == ["scikit-learn", "skops"]
    assert not (tmp_path / TREES_FILE).exists()
    assert set(TREE_LINKS.values()) <= set(LINKS)  # every link the export names, the runtime can invert


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

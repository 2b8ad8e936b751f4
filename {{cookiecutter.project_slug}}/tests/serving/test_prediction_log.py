"""The server's prediction log: X-Request-ID in and out, sampled rows written after the answer, never PII."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from {{ cookiecutter.package_name }}.config import ModelConfig, PredictionLog
from {{ cookiecutter.package_name }}.serve import App

from .conftest import example_rows


def logging_config(config: ModelConfig, destination: Path, rate: float = 1.0, pii: str | None = None) -> ModelConfig:
    features = tuple(dataclasses.replace(f, pii=f.name == pii) for f in config.data.features)
    serving = dataclasses.replace(config.serving, prediction_log=PredictionLog(rate, str(destination)))
    return dataclasses.replace(config, serving=serving, data=dataclasses.replace(config.data, features=features))


def test_logged_rows_carry_the_request_id_and_the_answer(config: ModelConfig, artifacts: Path, tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    pii = config.data.features[0].name
    rows = example_rows(config, 3)
    with TestClient(App(logging_config(config, path, pii=pii), artifacts / "model", artifacts / "runtime")) as client:
        given = client.post("/predict", json={"instances": rows}, headers={"X-Request-ID": "order-42"})
        made = client.post("/predict", json={"instances": rows[:1]})
        metrics = client.get("/metrics").text
    assert given.headers["x-request-id"] == "order-42"
    assert len(made.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # the app's shutdown flushed the log
    expected = [("order-42", 0), ("order-42", 1), ("order-42", 2), (made.headers["x-request-id"], 0)]
    assert [(r["request_id"], r["row"]) for r in lines] == expected
    assert [r["prediction"] for r in lines[:3]] == given.json()["predictions"]
    if "probabilities" in given.json():
        assert lines[0]["probabilities"] == given.json()["probabilities"][0]
    assert f'"{pii}"' not in path.read_text()  # marked pii: never written
    assert set(lines[0]["features"]) == set(config.data.feature_names) - {pii}
    assert "feature_rows_total 4.0" in metrics


@pytest.mark.parametrize("reason", ["unknown_category", "out_of_range", "null", "type"])
def test_rejected_values_are_counted_per_feature_and_reason(config: ModelConfig, artifacts: Path, reason: str) -> None:
    category = next(f for f in config.data.features if f.type == "category")
    bounded = next(f for f in config.data.features if f.type in ("number", "integer") and f.min is not None)
    not_nullable = next(f for f in config.data.features if not f.nullable)
    feature, value = {
        "unknown_category": (category, "never_seen"),
        "out_of_range": (bounded, bounded.min - 1),
        "null": (not_nullable, None),
        "type": (bounded, "a string"),
    }[reason]
    row = {**example_rows(config, 1)[0], feature.name: value}
    with TestClient(App(config, artifacts / "model", artifacts / "runtime")) as client:
        assert client.post("/predict", json={"instances": [row]}).status_code == 422
        metrics = client.get("/metrics").text
    series = 'feature_rejections_total{feature="' + feature.name + '",reason="' + reason + '"}'
    assert f"{series} 1.0" in metrics


def test_sample_rate_zero_writes_no_log(config: ModelConfig, artifacts: Path, tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    with TestClient(App(logging_config(config, path, rate=0.0), artifacts / "model", artifacts / "runtime")) as client:
        assert client.post("/predict", json={"instances": example_rows(config, 2)}).status_code == 200
    assert not path.exists()


def test_an_unwritable_log_destination_fails_the_start(config: ModelConfig, artifacts: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    app = App(logging_config(config, tmp_path / "file" / "log.jsonl"), artifacts / "model", artifacts / "runtime")
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "lifespan.startup"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app.lifespan(receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert sent[0]["message"].startswith("serving.prediction_log.destination: cannot open")

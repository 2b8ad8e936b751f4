"""The prediction log: sampled, complete records, never PII, and never blocking a request."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.monitor import read_logs
from {{ cookiecutter.package_name }}.prediction_log import (
    PredictionLogError,
    PredictionLogger,
    TrafficMetrics,
    request_id,
)
from {{ cookiecutter.package_name }}.profile import build_profile


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_carry_request_row_version_features_and_outputs(config, traffic, tmp_path: Path) -> None:
    frame = traffic.sample(3, seed=0)
    predictions, probabilities = traffic.predict(frame)
    columns = {**traffic.columns(frame), "not_in_contract": ["x"] * 3}
    from_config = PredictionLogger.from_config(config, model_version="9.9.9")
    assert (from_config.sample_rate, from_config.destination) == (config.serving.prediction_log.sample_rate, "stdout")
    assert from_config.fields == config.data.feature_names
    path = tmp_path / "log.jsonl"
    logger = PredictionLogger(1.0, str(path), "9.9.9", [f.name for f in config.data.features])
    with logger:
        assert logger.log("abc", columns, predictions, probabilities) == 3
    lines = read(path)
    assert [(r["request_id"], r["row"], r["model_version"]) for r in lines] == [("abc", i, "9.9.9") for i in range(3)]
    assert [r["prediction"] for r in lines] == list(predictions)
    assert set(lines[0]["features"]) == set(config.data.feature_names)  # the target and unknown fields are not logged
    assert lines[0]["ts"].endswith("Z")
    assert lines[0]["probabilities"] == (probabilities[0] if probabilities else None)
    assert (logger.logged, logger.dropped) == (3, 0)


def test_sample_rate_zero_writes_nothing_and_starts_no_thread(config, tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    before = threading.active_count()
    with PredictionLogger(0.0, str(path), "1", ["a"]) as logger:
        assert logger.log("r", {"a": [1]}, [0]) == 0
        assert threading.active_count() == before
    assert not path.exists()


def test_sample_rate_is_the_share_of_rows_logged(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with PredictionLogger(0.25, str(path), "1", ["a"], rng=random.Random(0)) as logger:  # noqa: S311
        for i in range(100):
            logger.log(f"r{i}", {"a": list(range(20))}, [0] * 20)
    assert 0.22 < len(read(path)) / 2000 < 0.28


def test_a_blocked_destination_drops_and_counts_instead_of_blocking(tmp_path: Path, monkeypatch) -> None:
    read_end, write_end = os.pipe()  # nobody reads: once the pipe buffer is full, the writer thread blocks
    monkeypatch.setattr(PredictionLogger, "_open", lambda self: write_end)
    logger = PredictionLogger(1.0, "pipe", "1", ["a"], queue_size=10).start()
    big = {"a": ["x" * 1000] * 50}
    queued = sum(logger.log(f"r{i}", big, [0] * 50) for i in range(200))  # returns: the request path never waits
    assert logger.dropped > 0
    assert queued + logger.dropped == 200 * 50
    os.close(read_end)  # unblocks the writer (EPIPE), which counts the failed rows as dropped
    logger.close(timeout=5)  # also closes the write end
    assert logger.logged + logger.dropped == 200 * 50


def test_request_id_keeps_a_sane_header_and_replaces_anything_else() -> None:
    assert request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "a b", 'x"\n{"injected": 1}', "x" * 129):
        new = request_id(bad)
        assert new != bad
        assert len(new) == 32


def test_unwritable_destination_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    logger = PredictionLogger(1.0, str(tmp_path / "file" / "log.jsonl"), "1", ["a"])
    with pytest.raises(PredictionLogError, match=r"^serving.prediction_log.destination: cannot open .*log.jsonl"):
        logger.start()


def test_pii_features_never_reach_the_logs_profile_or_report(scratch_repo: Path, traffic, tmp_path: Path) -> None:
    spec = yaml.safe_load((scratch_repo / "model.yaml").read_text())
    pii = [f for f in spec["data"]["features"] if f["type"] in ("number", "integer")][:2]
    for feature in pii:
        feature["pii"] = True
    spec["serving"]["prediction_log"] = {"sample_rate": 1.0, "destination": str(tmp_path / "log.jsonl")}
    (scratch_repo / "model.yaml").write_text(yaml.safe_dump(spec))
    config = load_config(scratch_repo / "model.yaml")
    frame = traffic.sample(300, seed=11)
    predictions, probabilities = traffic.predict(frame)
    with PredictionLogger.from_config(config) as logger:
        for start in range(0, 300, 7):
            chunk = traffic.columns(frame.iloc[start : start + 7])
            logger.log(f"r{start}", chunk, predictions[start : start + 7], None)
    text = (tmp_path / "log.jsonl").read_text()
    assert len(text.splitlines()) == 300
    profile = json.dumps(build_profile(config, frame, predictions, probabilities))
    for feature in pii:
        assert f'"{feature["name"]}"' not in text
        assert f'"{feature["name"]}"' not in profile
    records, _ = read_logs(tmp_path / "log.jsonl")
    assert all(not set(r["features"]) & {f["name"] for f in pii} for r in records)


def test_probabilities_aligned_with_classes_are_logged_by_class(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with PredictionLogger(1.0, str(path), "1", ["a"]) as logger:
        logger.log("r", {"a": [1, 2]}, ["no", "yes"], np.array([[0.75, 0.25], [0.5, 0.5]]), classes=["no", "yes"])
    assert [r["probabilities"] for r in read(path)] == [{"no": 0.75, "yes": 0.25}, {"no": 0.5, "yes": 0.5}]


def test_traffic_metrics_count_nulls_rejections_and_log_health(config) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    category = next(f for f in config.data.features if f.type == "category")
    metrics = TrafficMetrics(config, registry)
    logger = metrics.attach(PredictionLogger(1.0, "stdout", "1", []))
    logger.on_write(7)
    logger.on_drop(2)
    metrics.observe({category.name: ["x", "y", "z"]}, 3)
    metrics.reject(f"instances[2].{category.name}", "unknown_category")
    metrics.reject(f"instances[0].{category.name}", "null")
    metrics.reject("instances[0].no_such_feature", "type")
    value = registry.get_sample_value
    assert value("feature_rows_total") == 3
    assert value("feature_rejections_total", {"feature": category.name, "reason": "unknown_category"}) == 1
    assert value("feature_rejections_total", {"feature": category.name, "reason": "null"}) == 1
    assert value("prediction_log_rows_total") == 7
    assert value("prediction_log_dropped_rows_total") == 2
    assert b"no_such_feature" not in generate_latest(registry)


def test_traffic_metrics_count_nulls_of_nullable_features(scratch_repo: Path) -> None:
    from prometheus_client import CollectorRegistry

    spec = yaml.safe_load((scratch_repo / "model.yaml").read_text())
    feature = next(f for f in spec["data"]["features"] if f["type"] == "number")
    feature["nullable"] = True
    (scratch_repo / "model.yaml").write_text(yaml.safe_dump(spec))
    registry = CollectorRegistry()
    metrics = TrafficMetrics(load_config(scratch_repo / "model.yaml"), registry)
    metrics.observe({feature["name"]: [None, 1.0, None]}, 3)
    assert registry.get_sample_value("feature_nulls_total", {"feature": feature["name"]}) == 2

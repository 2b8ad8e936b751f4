"""The server: every route, every kind of bad request, parity with the trained model, metrics, failure modes."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from {{ cookiecutter.package_name }}.artifact import load_predictor as load_artifact_predictor
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ModelConfig, load_config
from {{ cookiecutter.package_name }}.runtime import MANIFEST, VersionMismatch

from .conftest import ROOT, example_rows, make_client

CONFIG = load_config(ROOT / "model.yaml")
FEATURES = {f.name: f for f in CONFIG.data.features}
NAME = CONFIG.metadata.name
NUMERIC = [f for f in CONFIG.data.features if f.type in ("number", "integer")]
CATEGORY = next(f for f in CONFIG.data.features if f.type == "category")
WITH_MIN = next(f for f in NUMERIC if f.min is not None)
WITH_MAX = next(f for f in NUMERIC if f.max is not None)
ROW = example_rows(CONFIG, 1)[0]
CLASSIFICATION = CONFIG.model.task == "classification"


def post(client: TestClient, path: str, body: Any, **kwargs: Any) -> Any:
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}, **kwargs)


def with_value(name: str, value: Any) -> dict[str, Any]:
    return {"instances": [{**ROW, name: value}]}


def infer_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = []
    for f in CONFIG.data.features:
        datatype = {"number": "FP64", "integer": "INT64", "category": "BYTES", "boolean": "BOOL"}[f.type]
        inputs.append({"name": f.name, "shape": [len(rows)], "datatype": datatype, "data": [r[f.name] for r in rows]})
    return {"id": "req-1", "inputs": inputs}


# ---- routes ------------------------------------------------------------------------------------------------------


def test_health_routes(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    model_ready = client.get(f"/v2/models/{NAME}/ready")
    assert (model_ready.status_code, model_ready.json()) == (200, {"name": NAME, "ready": True})
    assert client.get("/v2").json()["version"] == CONFIG.metadata.version


def test_model_metadata_carries_version_and_lineage(client: TestClient, artifacts: Path) -> None:
    lineage = json.loads((artifacts / "model" / "metadata.json").read_text())["lineage"]
    answer = client.get(f"/v2/models/{NAME}")
    body = answer.json()
    assert body["name"] == NAME
    assert body["versions"] == [CONFIG.metadata.version]
    assert [i["name"] for i in body["inputs"]] == list(CONFIG.data.feature_names)
    assert body["parameters"]["git_sha"] == lineage["git_sha"]
    assert body["parameters"]["data_md5"] == lineage["data_md5"]
    assert body["parameters"]["runtime"].startswith("exported:")
    assert answer.headers["x-model-version"] == CONFIG.metadata.version
    assert answer.headers["x-model-git-sha"] == lineage["git_sha"]
    assert answer.headers["x-model-data-md5"] == lineage["data_md5"]
    versioned = client.get(f"/v2/models/{NAME}/versions/{CONFIG.metadata.version}")
    assert versioned.json() == body


def test_predict_matches_the_trained_model(client: TestClient, artifacts: Path) -> None:
    rows = example_rows(CONFIG, 25)
    answer = post(client, "/predict", {"instances": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == CONFIG.metadata.version
    labels, proba = reference_predictions(artifacts / "model", rows)
    tolerance = 1e-9 if CONFIG.model.framework == "sklearn" else 1e-5
    if CLASSIFICATION:
        assert body["predictions"] == labels
        got = np.array([[p[str(c)] for c in proba_classes(artifacts)] for p in body["probabilities"]])
        np.testing.assert_allclose(got, proba, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    else:
        np.testing.assert_allclose(body["predictions"], labels, rtol=tolerance, atol=tolerance)


def test_infer_equals_predict(client: TestClient) -> None:
    rows = example_rows(CONFIG, 7)
    answer = post(client, f"/v2/models/{NAME}/infer", infer_body(rows))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (NAME, CONFIG.metadata.version, "req-1")
    outputs = {o["name"]: o for o in body["outputs"]}
    predicted = post(client, "/predict", {"instances": rows}).json()
    assert outputs["predictions"]["shape"] == [7]
    assert outputs["predictions"]["data"] == predicted["predictions"]
    if CLASSIFICATION:
        k = len(predicted["probabilities"][0])
        assert outputs["probabilities"]["shape"] == [7, k]
        flat = [v for p in predicted["probabilities"] for v in p.values()]
        assert outputs["probabilities"]["data"] == pytest.approx(flat)


def test_infer_accepts_nested_column_data(client: TestClient) -> None:
    body = infer_body(example_rows(CONFIG, 3))
    for tensor in body["inputs"]:
        tensor["shape"], tensor["data"] = [3, 1], [[v] for v in tensor["data"]]
    assert post(client, f"/v2/models/{NAME}/infer", body).status_code == 200


def test_openapi_describes_the_real_request(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    instance = document["components"]["schemas"]["Instance"]
    assert instance["required"] == list(CONFIG.data.feature_names)
    assert instance["additionalProperties"] is False
    assert instance["properties"][CATEGORY.name]["enum"] == list(CATEGORY.values)
    assert instance["properties"][WITH_MIN.name]["minimum"] == WITH_MIN.min
    request = document["components"]["schemas"]["PredictRequest"]["properties"]["instances"]
    assert request["maxItems"] == CONFIG.serving.max_batch_rows
    assert {"/predict", f"/v2/models/{NAME}/infer", "/v2/health/ready", "/metrics"} <= set(document["paths"])


def test_metrics_count_what_happened(config: ModelConfig, artifacts: Path) -> None:
    with make_client(config, artifacts) as client:
        for size in (1, 3, 5):
            assert post(client, "/predict", {"instances": example_rows(CONFIG, size)}).status_code == 200
        assert post(client, "/predict", {"instances": []}).status_code == 422
        assert client.get("/nope").status_code == 404
        text = client.get("/metrics").text
    assert metric(text, 'http_requests_total{route="/predict",status="200"}') == 3
    assert metric(text, 'http_requests_total{route="/predict",status="422"}') == 1
    assert metric(text, 'http_errors_total{route="unmatched",status="404"}') == 1
    assert metric(text, 'http_request_duration_seconds_count{route="/predict"}') == 4
    assert metric(text, "prediction_batch_rows_count") == 3
    assert metric(text, "prediction_batch_rows_sum") == 9
    if CLASSIFICATION:
        assert sum(float(v) for v in re.findall(r"^predictions_total\{.*\} (\S+)$", text, re.M)) == 9
    else:
        assert metric(text, "prediction_value_count") == 9


def metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in /metrics:\n{text}")


# ---- bad requests: a 4xx naming the field and the reason, never a 5xx --------------------------------------------

Case = tuple[str, Callable[[TestClient], Any], int, str, str]


def _raw(body: bytes, content_type: str | None = "application/json", path: str = "/predict") -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return lambda c: c.post(path, content=body, headers=headers)


def _json(body: Any, path: str = "/predict") -> Any:
    return lambda c: post(c, path, body)


def _infer(change: Callable[[dict[str, Any]], None]) -> Any:
    body = infer_body(example_rows(CONFIG, 2))
    change(body)
    return _json(body, f"/v2/models/{NAME}/infer")


def _set(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["inputs"][index].__setitem__(key, value)


too_many = {"instances": [ROW] * (CONFIG.serving.max_batch_rows + 1)}
first, second = CONFIG.data.features[0].name, CONFIG.data.features[1].name
BAD: list[Case] = [
    ("malformed JSON", _raw(b'{"instances": ['), 400, "body", "is not valid JSON"),
    ("NaN literal", _raw(b'{"instances": [{"x": NaN}]}'), 400, "body", "is not valid JSON"),
    ("Infinity literal", _raw(b'{"instances": [{"x": Infinity}]}'), 400, "body", "is not valid JSON"),
    ("wrong content type", _raw(b"{}", "text/plain"), 415, "content-type", "'text/plain' is not supported"),
    ("no content type", _raw(b"{}", None), 415, "content-type", "'none' is not supported"),
    ("body is an array", _json([ROW]), 422, "$", "expected an object with `instances`"),
    ("no instances", _json({}), 422, "instances", "expected an array of objects"),
    ("extra top-level field", _json({"instances": [ROW], "x": 1}), 422, "x", "is not a known field"),
    ("instances not an array", _json({"instances": ROW}), 422, "instances", "expected an array of objects"),
    ("empty batch", _json({"instances": []}), 422, "instances", "is empty"),
    ("batch over max_batch_rows", _json(too_many), 413, "instances", "is over serving.max_batch_rows"),
    ("row is not an object", _json({"instances": [ROW, 3]}), 422, "instances[1]", "expected an object of features"),
    (
        "missing feature",
        _json({"instances": [{k: v for k, v in ROW.items() if k != second}]}),
        422,
        f"instances[0].{second}",
        "is missing",
    ),
    ("extra feature", _json({"instances": [{**ROW, "zzz": 1}]}), 422, "instances[0].zzz", "is not a feature"),
    ("string for a number", _json(with_value(first, "12")), 422, f"instances[0].{first}", "has the wrong type"),
    ("boolean for a number", _json(with_value(first, True)), 422, f"instances[0].{first}", "has the wrong type"),
    ("null, not nullable", _json(with_value(first, None)), 422, f"instances[0].{first}", "is not nullable"),
    (
        "number overflowing to infinity",
        _raw(json.dumps(with_value(first, 123456789)).encode().replace(b"123456789", b"1e999")),
        400,
        "body",
        "number is infinity",
    ),
    (
        "below the contract's minimum",
        _json(with_value(WITH_MIN.name, WITH_MIN.min - 1)),
        422,
        f"instances[0].{WITH_MIN.name}",
        "is below the minimum",
    ),
    (
        "above the contract's maximum",
        _json(with_value(WITH_MAX.name, WITH_MAX.max + 1)),
        422,
        f"instances[0].{WITH_MAX.name}",
        "is above the maximum",
    ),
    (
        "unknown category",
        _json(with_value(CATEGORY.name, "no-such-category")),
        422,
        f"instances[0].{CATEGORY.name}",
        "is not a known category",
    ),
    (
        "number for a category",
        _json(with_value(CATEGORY.name, 1)),
        422,
        f"instances[0].{CATEGORY.name}",
        "has the wrong type",
    ),
    ("infer: no inputs", _json({"inputs": []}, f"/v2/models/{NAME}/infer"), 422, "inputs", "one input tensor"),
    ("infer: unknown input", _infer(_set(0, "name", "zzz")), 422, "inputs[0].name", "is not a feature"),
    ("infer: input twice", _infer(_set(1, "name", first)), 422, "inputs[1].name", "is given twice"),
    ("infer: wrong datatype", _infer(_set(0, "datatype", "BYTES")), 422, "inputs[0].datatype", "expected"),
    ("infer: shape and data disagree", _infer(_set(0, "shape", [3])), 422, "inputs[0].data", "shape [3] says 3"),
    ("infer: shape of a matrix", _infer(_set(0, "shape", [2, 2])), 422, "inputs[0].shape", "expected [rows]"),
    ("infer: unknown model", _json({"inputs": []}, "/v2/models/zzz/infer"), 404, "model", "is not served here"),
    ("unknown route", lambda c: c.get("/zzz"), 404, "path", "is not a route"),
    ("wrong method", lambda c: c.get("/predict"), 405, "method", "GET is not allowed on /predict; use POST"),
    ("unknown model version", lambda c: c.get(f"/v2/models/{NAME}/versions/9.9.9"), 404, "version", "is not served"),
]
if any(f.type == "integer" for f in CONFIG.data.features):
    whole = next(f for f in CONFIG.data.features if f.type == "integer")
    BAD.append(
        ("fraction for an integer", _json(with_value(whole.name, 1.5)), 422, f"instances[0].{whole.name}", "not whole")
    )


@pytest.mark.parametrize(("case", "call", "status", "field", "reason"), BAD, ids=[c[0] for c in BAD])
def test_bad_request(client: TestClient, case: str, call: Any, status: int, field: str, reason: str) -> None:
    answer = call(client)
    assert answer.status_code == status, (case, answer.text)
    body = answer.json()
    assert body["field"] == field, body
    assert reason in body["error"], body


def test_body_over_max_body_bytes(config: ModelConfig, artifacts: Path) -> None:
    limit = config.serving.max_body_bytes
    with make_client(config, artifacts) as client:
        answer = client.post("/predict", content=b" " * (limit + 1), headers={"content-type": "application/json"})
        assert answer.status_code == 413
        assert answer.json() == {
            "field": "body",
            "error": f"{limit + 1} bytes is over serving.max_body_bytes ({limit})",
        }
        assert client.get("/v2/health/ready").status_code == 200  # and the server is still up


# ---- property-based: any body built from the OpenAPI schema's shapes gets 200 iff it is valid, and never a 5xx ----

OPENAPI_REQUEST: dict[str, Any] = {}


def _value(feature: Any) -> st.SearchStrategy[Any]:
    junk = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.integers(), st.floats(allow_nan=False))
    if feature.type == "category":
        valid = st.sampled_from(list(feature.values))
    elif feature.type == "boolean":
        valid = st.booleans()
    else:
        low = -1e6 if feature.min is None else feature.min
        high = 1e6 if feature.max is None else feature.max
        valid = st.integers(math.ceil(low), math.floor(high)) | (
            st.floats(low, high, allow_nan=False) if feature.type == "number" else st.nothing()
        )
    return st.one_of(valid, valid, valid, junk)


rows_strategy = st.fixed_dictionaries(
    {f.name: _value(f) for f in CONFIG.data.features},
    optional={"zzz": st.integers()},
)
bodies = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(rows_strategy, max_size=4)}),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_any_body_gets_200_iff_valid_and_never_5xx(client: TestClient, body: Any) -> None:
    document = OPENAPI_REQUEST or OPENAPI_REQUEST.update(client.get("/openapi.json").json()) or OPENAPI_REQUEST
    schema = {**document["components"]["schemas"]["PredictRequest"], "components": document["components"]}
    valid = jsonschema.Draft202012Validator(_resolve(schema, document)).is_valid(body)
    answer = post(client, "/predict", body)
    assert answer.status_code < 500, answer.text
    assert (answer.status_code == 200) == valid, (body, answer.text)
    if answer.status_code != 200:
        assert set(answer.json()) == {"error", "field"}


def _resolve(node: Any, document: dict[str, Any]) -> Any:
    """Inline the document's #/components refs so jsonschema can check a body without a resolver."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _resolve(document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]], document)
        return {k: _resolve(v, document) for k, v in node.items() if k != "components"}
    if isinstance(node, list):
        return [_resolve(v, document) for v in node]
    return node


# ---- the model is missing, corrupt or made with other libraries ------------------------------------------------


def test_corrupt_artifact_is_not_ready_and_predict_is_503(
    config: ModelConfig, artifact_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    victim = next(p for p in (artifact_copy / "model").iterdir() if p.name != "metadata.json")
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with caplog.at_level(logging.ERROR), make_client(config, artifact_copy) as client:
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert "sha256" in ready.json()["error"]
        answer = post(client, "/predict", {"instances": [ROW]})
        assert answer.status_code == 503
        assert answer.json()["field"] == "model"
        assert "sha256" in answer.json()["error"]
        assert client.get(f"/v2/models/{NAME}/ready").json()["ready"] is False
        assert client.get("/v2/health/live").status_code == 200
    assert f"{victim}: sha256" in caplog.text


def test_missing_artifact_is_not_ready(config: ModelConfig, tmp_path: Path) -> None:
    with make_client(config, tmp_path) as client:
        answer = client.get("/v2/health/ready")
        assert answer.status_code == 503
        assert "metadata.json is missing" in answer.json()["error"]


def test_library_version_mismatch_refuses_to_start(
    config: ModelConfig, artifact_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest_path = artifact_copy / "runtime" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    have = manifest["library_versions"]["numpy"]
    manifest["library_versions"]["numpy"] = "1.0.0"
    manifest_path.write_text(json.dumps(manifest))
    app = make_client(config, artifact_copy).app
    with pytest.raises(VersionMismatch, match=rf"numpy {re.escape(have)} is installed but .* numpy 1\.0\.0"):
        app.load()  # type: ignore[attr-defined]
    args = ["--config", str(ROOT / "model.yaml"), "serve", "--model-dir", str(artifact_copy / "model")]
    assert main([*args, "--runtime-dir", str(artifact_copy / "runtime"), "--port", "1"]) == 1
    assert f"refusing to start: numpy {have} is installed but" in capsys.readouterr().err


# ---- helpers -------------------------------------------------------------------------------------------------------


def proba_classes(artifacts: Path) -> list[Any]:
    return json.loads((artifacts / "model" / "metadata.json").read_text())["classes"]


def reference_predictions(model_dir: Path, rows: list[dict[str, Any]]) -> tuple[list[Any], np.ndarray]:
    """The trained model itself (artifact.load_predictor, a DataFrame through the fitted Pipeline or Keras)."""
    import pandas as pd

    predictions, proba = load_artifact_predictor(model_dir).predict_frame(pd.DataFrame(rows))
    return np.asarray(predictions).tolist(), np.empty(0) if proba is None else proba

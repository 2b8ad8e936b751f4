"""`serve`: the model over HTTP. A small ASGI app on uvicorn (uvloop + httptools), loading the artifact once.

Routes: POST /predict ({"instances": [{feature: value}]}), the Open Inference Protocol v2 (/v2/health/live,
/v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready, /v2/models/{name}/infer) so the image runs as a
KServe custom runtime, GET /metrics (Prometheus), GET /openapi.json. Bad requests get a 4xx JSON body
{"error", "field"}; nothing a client sends produces a 5xx. A broken model leaves the server up but not ready (503).
With serving.workers > 1 the process loads the model once and forks the workers from it (prefork.py).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .config import ModelConfig
from .inputs import Contract, RequestError
from .prediction_log import PredictionLogError, PredictionLogger, TrafficMetrics, request_id
from .runtime import (
    BATCHED_KINDS,
    MicroBatcher,
    ModelLoadError,
    Predictor,
    VersionMismatch,
    load_predictor,
    read_verified,
)

log = logging.getLogger(__name__)

NEEDS_DATA = False  # the serving image carries model.yaml and the artifact, not the data
MODEL_DIR = Path("artifacts/model")
RUNTIME_DIR = Path("artifacts/runtime")
JSON_TYPES = (b"application/json",)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, help="port (default: serving.port)")
    parser.add_argument("--workers", type=int, help="worker processes (default: serving.workers)")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR, help="trained artifact (default: %(default)s)")
    parser.add_argument("--runtime-dir", type=Path, default=RUNTIME_DIR, help="exported runtime (%(default)s)")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker: scale out with workers and replicas
    model_dir, runtime_dir = config.path(args.model_dir), config.path(args.runtime_dir)
    workers = args.workers or config.serving.workers
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port or config.serving.port,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "none",  # no websocket routes: nothing to import for them
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 20,
        "log_config": None,
    }
    try:  # once, before any worker: forked workers start with the model loaded
        model = load_model(config, model_dir, runtime_dir)
    except VersionMismatch as err:
        print(f"serve: refusing to start: {err}", file=sys.stderr)
        return 1
    if workers == 1:
        uvicorn.run(App(config, model_dir, runtime_dir, model), **options)
        return 0
    from . import prefork

    with tempfile.TemporaryDirectory(prefix="prometheus-") as metrics_dir:
        # Set before prometheus_client is first imported (it reads the variable then): each worker writes its own
        # files there and /metrics, answered by any worker, sums them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        preload_worker_libraries()
        factory = functools.partial(App, config, model_dir, runtime_dir, model)
        return prefork.serve(uvicorn.Config(factory, factory=True, **options), workers)


def preload_worker_libraries() -> None:
    """Import in the parent what every forked worker would import after the fork; limit BLAS to one thread."""
    import prometheus_client  # noqa: F401
    import uvloop  # noqa: F401

    try:  # numpy was imported before OMP_NUM_THREADS was set: its OpenBLAS sized its pool from the CPU count
        from threadpoolctl import threadpool_limits
    except ImportError:  # not in every serve lock; the image sets OMP_NUM_THREADS before Python starts
        return
    threads = os.environ["OMP_NUM_THREADS"]
    threadpool_limits(int(threads) if threads.isdigit() else 1, user_api="blas")


class Metrics:
    """Prometheus metrics of one app; in multi-worker mode prometheus_client shares them through files."""

    def __init__(self, task: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series double the exposition and no dashboard reads them
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        r = self.registry
        self.requests = Counter("http_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.errors = Counter("http_errors", "4xx and 5xx answers by route and status", ["route", "status"], registry=r)
        self.latency = Histogram(
            "http_request_duration_seconds", "Time to answer", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.rows = Histogram("prediction_batch_rows", "Rows per prediction request", buckets=ROW_BUCKETS, registry=r)
        if task == "classification":
            self.classes = Counter("predictions", "Predicted rows by class", ["class"], registry=r)
        else:
            self.values = Histogram(
                "prediction_value", "Predicted values", buckets=_value_buckets(), registry=r
            )  # a fixed, wide log-spaced scale: the target's unit is unknown here
        self.task = task
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:  # labels() costs a lock and a dict lookup per call: resolve each series once
            code = str(status)
            children = (
                self.requests.labels(route, code),
                self.errors.labels(route, code) if status >= 400 else None,
                self.latency.labels(route),
            )
            self._children[(route, status)] = children
        children[0].inc()
        if children[1] is not None:
            children[1].inc()
        children[2].observe(seconds)

    def observe_predictions(self, predictions: list[Any]) -> None:
        self.rows.observe(len(predictions))
        if self.task == "classification":
            counts: dict[Any, int] = {}
            for label in predictions:
                counts[label] = counts.get(label, 0) + 1
            for label, count in counts.items():
                self.classes.labels(str(label)).inc(count)
        else:
            for value in predictions:
                self.values.observe(value)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _value_buckets() -> tuple[float, ...]:
    return tuple(sorted({-(10.0**e) for e in range(-2, 5)} | {0.0} | {10.0**e for e in range(-2, 5)}))


@dataclass(frozen=True)
class LoadedModel:
    """The artifact loaded for serving: a predictor and the artifact's metadata, or no predictor and why not."""

    predictor: Predictor | None
    metadata: dict[str, Any]
    reason: str  # which predictor and why; or, without one, the error that keeps the server not ready


def load_model(config: ModelConfig, model_dir: Path, runtime_dir: Path) -> LoadedModel:
    """Load the artifact; VersionMismatch propagates (refuse to start), anything else is a LoadedModel not ready."""
    try:
        metadata = read_verified(model_dir, "metadata.json")
        wanted = [_contract(f) for f in config.data.features]
        got = [{k: f.get(k) for k in wanted[0]} for f in metadata.get("features", [])]
        if _normalise(got) != _normalise(wanted):
            raise ModelLoadError(
                f"{model_dir}/metadata.json: the artifact's data contract differs from model.yaml's "
                "data.features; retrain (make pipeline) before serving"
            )
        predictor, reason = load_predictor(model_dir, runtime_dir, config.serving.runtime, config.model.task)
    except VersionMismatch:
        raise
    except ModelLoadError as err:
        log.error("model not loaded, ready is false: %s", err)
        return LoadedModel(None, {}, str(err))
    except Exception as err:  # a corrupt file can fail inside any library: stay up, not ready, say why
        log.exception("model not loaded, ready is false")
        return LoadedModel(None, {}, f"{type(err).__name__}: {err}")
    return LoadedModel(predictor, metadata, reason)


class App:
    """The ASGI application. Plain ASGI (no framework): each request costs a few dict lookups before the model."""

    def __init__(
        self, config: ModelConfig, model_dir: Path, runtime_dir: Path, preloaded: LoadedModel | None = None
    ) -> None:
        self.config = config
        self.model_dir, self.runtime_dir = model_dir, runtime_dir
        self.preloaded = preloaded  # loaded by the parent of forked workers; else load() loads it
        self.name = config.metadata.name
        self.version = config.metadata.version
        self.max_body = config.serving.max_body_bytes
        self.predictor: Predictor | None = None
        self.batcher: MicroBatcher | None = None
        self.error: str | None = "the model is not loaded yet"
        self.metadata: dict[str, Any] = {}
        self.contract = Contract([_contract(f) for f in config.data.features], config.serving.max_batch_rows)
        self.metrics = Metrics(config.model.task)
        self.traffic = TrafficMetrics(config, self.metrics.registry)
        self.prediction_log = self.traffic.attach(PredictionLogger.from_config(config))
        self.headers: list[tuple[bytes, bytes]] = []
        self._set_headers({})

    # ---- lifecycle ----

    def load(self) -> None:
        """Serve the preloaded model, or load it; VersionMismatch propagates (refuse to start)."""
        loaded = self.preloaded
        if loaded is None:
            loaded = load_model(self.config, self.model_dir, self.runtime_dir)
        if loaded.predictor is None:
            self.error = loaded.reason
            return
        self.metadata, self.error = loaded.metadata, None
        self.use(loaded.predictor)
        self.contract = Contract(loaded.metadata["features"], self.config.serving.max_batch_rows)
        self.version = str(loaded.metadata.get("version", self.version))
        self._set_headers(loaded.metadata.get("lineage", {}))
        kind = loaded.predictor.kind
        log.info("serving %s %s with the %s predictor (%s)", self.name, self.version, kind, loaded.reason)

    def use(self, predictor: Predictor) -> None:
        """Serve this predictor; slow-per-call ones through a micro-batcher."""
        self.predictor = predictor
        batched = predictor.kind in BATCHED_KINDS
        self.batcher = MicroBatcher(predictor, self.config.serving.max_batch_rows) if batched else None

    async def _predict_columns(self, predictor: Predictor, columns: Any, rows: int) -> Any:
        if self.batcher is not None:
            return await self.batcher.predict_columns(columns, rows)
        return predictor.predict_columns(columns, rows)

    def _set_headers(self, lineage: Mapping[str, Any]) -> None:
        self.headers = [
            (b"content-type", b"application/json"),
            (b"x-model-name", self.name.encode()),
            (b"x-model-version", self.version.encode()),
            (b"x-model-git-sha", str(lineage.get("git_sha", "unknown")).encode()),
            (b"x-model-data-md5", str(lineage.get("data_md5", "unknown")).encode()),
        ]

    # ---- ASGI ----

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.load()
                    self.prediction_log.model_version = self.version
                    self.prediction_log.start()  # here, not in __init__: after uvicorn forked the worker
                except (VersionMismatch, PredictionLogError) as err:
                    log.error("refusing to start: %s", err)
                    await send({"type": "lifespan.startup.failed", "message": str(err)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                log.info("shutting down (in-flight requests were answered)")
                self.prediction_log.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        method, path = scope["method"], scope["path"]
        route = "unmatched"  # raw paths would make one metric series per URL a client invents
        rid = request_id(next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None))
        try:
            route, handler = self.route(method, path)
            if method == "POST":
                body = await self.read_json(scope, receive)
                status, payload = await handler(body, rid)
            else:
                status, payload = handler(None)
            await self.respond(send, status, payload, rid)
        except RequestError as err:
            status = err.status
            self.traffic.reject(err.field, err.kind)
            await self.respond(send, status, {"error": err.reason, "field": err.field}, rid)
        except Exception:  # a bug of ours, never the client's: answer 500 and keep serving
            log.exception("unhandled error on %s %s", method, path)
            status = 500
            await self.respond(send, status, {"error": "internal error; see the server log", "field": None}, rid)
        self.metrics.observe_request(route, status, time.perf_counter() - start)

    def route(self, method: str, path: str) -> tuple[str, Callable[..., Any]]:
        gets: dict[str, Callable[[Any], Any]] = {
            "/v2/health/live": lambda _: (200, {"live": True}),
            "/v2/health/ready": lambda _: self.ready_answer({}),
            "/v2": lambda _: (200, {"name": __package__, "version": self.version, "extensions": []}),
            "/openapi.json": lambda _: (200, self.openapi()),
            "/metrics": lambda _: (200, self.metrics),
        }
        if path == "/predict":
            return self._method(path, method, "POST", self.predict)
        if path in gets:
            return self._method(path, method, "GET", gets[path])
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            name, rest = parts[2], parts[3:]
            if len(rest) >= 2 and rest[0] == "versions":  # /v2/models/{name}/versions/{version}/...
                if rest[1] != self.version:
                    raise RequestError(404, "version", f"{rest[1]!r} is not served; this server has {self.version!r}")
                rest = rest[2:]
            if name != self.name:
                raise RequestError(404, "model", f"{name!r} is not served here; this server serves {self.name!r}")
            template = "/v2/models/{name}" + ("/" + "/".join(rest) if rest else "")
            if not rest:
                return self._method(template, method, "GET", lambda _: (200, self.model_metadata()))
            if rest == ["ready"]:
                return self._method(template, method, "GET", lambda _: self.ready_answer({"name": self.name}))
            if rest == ["infer"]:
                return self._method(template, method, "POST", self.infer)
        raise RequestError(404, "path", f"{path!r} is not a route; see /openapi.json")

    @staticmethod
    def _method(route: str, method: str, allowed: str, handler: Callable[[Any], Any]) -> Any:
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            raise RequestError(405, "method", f"{method} is not allowed on {route}; use {allowed}")
        return route, handler

    async def read_json(self, scope: Scope, receive: Receive) -> Any:
        content_type = b""
        length = -1
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
            elif key == b"content-length" and value.isdigit():
                length = int(value)
        if content_type not in JSON_TYPES:
            shown = content_type.decode("latin-1") or "none"
            raise RequestError(415, "content-type", f"{shown!r} is not supported; send application/json")
        if length > self.max_body:
            raise RequestError(413, "body", f"{length} bytes is over serving.max_body_bytes ({self.max_body})")
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise RequestError(413, "body", f"more than serving.max_body_bytes ({self.max_body}) bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as err:
            raise RequestError(400, "body", f"is not valid JSON ({err})") from None

    async def respond(self, send: Send, status: int, payload: Any, rid: str = "") -> None:
        headers = [*self.headers, (b"x-request-id", rid.encode())] if rid else self.headers
        if isinstance(payload, Metrics):
            body, content_type = payload.exposition()
            headers = [(b"content-type", content_type.encode()), *headers[1:]]
        else:
            body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # ---- handlers ----

    def ready_answer(self, extra: dict[str, Any]) -> tuple[int, Any]:
        if self.predictor is None:
            return 503, {**extra, "ready": False, "error": self.error}
        return 200, {**extra, "ready": True}

    def _predictor(self) -> Predictor:
        if self.predictor is None:
            raise RequestError(503, "model", f"the model is not ready: {self.error}")
        return self.predictor

    async def _predict_and_record(
        self, predictor: Predictor, columns: Any, rows: int, rid: str
    ) -> tuple[list[Any], Any]:
        """What /predict and the OIP infer route share: predict one validated batch, count it, log it."""
        predictions, proba = await self._predict_columns(predictor, columns, rows)
        self.metrics.observe_predictions(predictions)
        self.traffic.observe(columns, rows)
        self.prediction_log.log(rid, columns, predictions, proba, predictor.classes)
        return predictions, proba

    async def predict(self, body: Any, rid: str = "") -> tuple[int, Any]:
        predictor = self._predictor()
        columns, rows = self.contract.instances(body)
        predictions, proba = await self._predict_and_record(predictor, columns, rows, rid)
        answer: dict[str, Any] = {"model": self.name, "model_version": self.version, "predictions": predictions}
        if proba is not None and predictor.classes is not None:
            classes = [str(c) for c in predictor.classes]
            answer["probabilities"] = [dict(zip(classes, row, strict=True)) for row in proba.tolist()]
        return 200, answer

    async def infer(self, body: Any, rid: str = "") -> tuple[int, Any]:
        predictor = self._predictor()
        columns, rows = self.contract.inference_inputs(body)
        predictions, proba = await self._predict_and_record(predictor, columns, rows, rid)
        outputs = [{"name": "predictions", "shape": [rows], "datatype": _datatype(predictions), "data": predictions}]
        if proba is not None:
            outputs.append(
                {"name": "probabilities", "shape": list(proba.shape), "datatype": "FP64", "data": proba.ravel()}
            )
        answer: dict[str, Any] = {"model_name": self.name, "model_version": self.version, "outputs": outputs}
        if isinstance(body.get("id"), str):
            answer["id"] = body["id"]
        return 200, answer

    def model_metadata(self) -> dict[str, Any]:
        features = self.contract.features
        outputs = [
            {"name": "predictions", "datatype": "BYTES" if self.config.model.task == "classification" else "FP64"}
        ]
        if self.predictor is not None and self.predictor.classes is not None:
            outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(self.predictor.classes)]})
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": f"modelops_{self.config.model.framework}",
            "inputs": [{"name": f["name"], "datatype": _feature_datatype(f), "shape": [-1]} for f in features],
            "outputs": [{"shape": [-1], **o} for o in outputs],
            "parameters": {
                "task": self.config.model.task,
                "estimator": self.metadata.get("estimator", self.config.model.estimator),
                "classes": None if self.predictor is None else self.predictor.classes,
                "runtime": None if self.predictor is None else self.predictor.kind,
                **dict(self.metadata.get("lineage", {}).items()),
            },
        }

    def openapi(self) -> dict[str, Any]:
        return openapi_document(self.name, self.version, self.contract, self.config)


def _contract(feature: Any) -> dict[str, Any]:
    return {
        "name": feature.name,
        "type": feature.type,
        "min": feature.min,
        "max": feature.max,
        "values": list(feature.values) or None,
        "nullable": feature.nullable,
    }


def _normalise(features: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            f["name"],
            f["type"],
            None if f.get("min") is None else float(f["min"]),
            None if f.get("max") is None else float(f["max"]),
            tuple(f.get("values") or ()),
            bool(f.get("nullable")),
        )
        for f in features
    ]


def _datatype(values: list[Any]) -> str:
    sample = values[0] if values else 0.0
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    if isinstance(sample, str):
        return "BYTES"
    return "FP64"


def _feature_datatype(feature: Mapping[str, Any]) -> str:
    return {"number": "FP64", "integer": "INT64", "category": "BYTES", "boolean": "BOOL"}[feature["type"]]


def feature_schema(feature: Mapping[str, Any]) -> dict[str, Any]:
    """JSON Schema of one feature value, from the data contract."""
    kind = feature["type"]
    schema: dict[str, Any] = {
        "type": {"number": "number", "integer": "integer", "boolean": "boolean"}.get(kind, "string")
    }
    if kind == "category":
        schema["enum"] = list(feature.get("values") or [])
    if feature.get("min") is not None:
        schema["minimum"] = feature["min"]
    if feature.get("max") is not None:
        schema["maximum"] = feature["max"]
    if feature.get("nullable"):
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def openapi_document(name: str, version: str, contract: Contract, config: ModelConfig) -> dict[str, Any]:
    """OpenAPI 3.1 with the real request schema: every feature, its type, range and categories."""
    classification = config.model.task == "classification"
    max_rows = config.serving.max_batch_rows
    error = {"$ref": "#/components/schemas/Error"}
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": error}}}
        for code, text in [
            (400, "body is not valid JSON"),
            (404, "unknown route or model"),
            (413, "body over serving.max_body_bytes or batch over serving.max_batch_rows"),
            (415, "content type is not application/json"),
            (422, "a field breaks the data contract (missing, extra, wrong type, out of range, unknown category)"),
            (503, "the model is not loaded"),
        ]
    }
    prediction = {"type": "string"} if classification else {"type": "number"}

    def ok(schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": "predictions", "content": {"application/json": {"schema": schema}}}

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    simple_get = {"200": {"description": "OK"}, "503": errors["503"]}
    model_path = "/v2/models/" + name
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": version, "description": config.metadata.description},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict rows keyed by feature name",
                    "requestBody": body({"$ref": "#/components/schemas/PredictRequest"}),
                    "responses": {"200": ok({"$ref": "#/components/schemas/PredictResponse"}), **errors},
                }
            },
            model_path + "/infer": {
                "post": {
                    "summary": "Open Inference Protocol v2: one tensor per feature",
                    "requestBody": body({"$ref": "#/components/schemas/InferenceRequest"}),
                    "responses": {"200": ok({"type": "object"}), **errors},
                }
            },
            "/v2/health/live": {"get": {"summary": "liveness", "responses": {"200": {"description": "live"}}}},
            "/v2/health/ready": {"get": {"summary": "readiness", "responses": simple_get}},
            model_path: {"get": {"summary": "model metadata and lineage", "responses": {"200": {"description": "OK"}}}},
            model_path + "/ready": {"get": {"summary": "model readiness", "responses": simple_get}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
        },
        "components": {
            "schemas": {
                "Instance": {
                    "type": "object",
                    "properties": {f["name"]: feature_schema(f) for f in contract.features},
                    "required": list(contract.names),
                    "additionalProperties": False,
                },
                "PredictRequest": {
                    "type": "object",
                    "properties": {
                        "instances": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Instance"},
                            "minItems": 1,
                            "maxItems": max_rows,
                        }
                    },
                    "required": ["instances"],
                    "additionalProperties": False,
                },
                "PredictResponse": {
                    "type": "object",
                    "properties": {
                        "model": {"type": "string"},
                        "model_version": {"type": "string"},
                        "predictions": {"type": "array", "items": prediction},
                        **(
                            {
                                "probabilities": {
                                    "type": "array",
                                    "items": {"type": "object", "additionalProperties": {"type": "number"}},
                                }
                            }
                            if classification
                            else {}
                        ),
                    },
                    "required": ["model", "model_version", "predictions"],
                },
                "InferenceRequest": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"enum": list(contract.names)},
                                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                    "datatype": {"type": "string"},
                                    "data": {"type": "array"},
                                },
                                "required": ["name", "shape", "datatype", "data"],
                            },
                        },
                    },
                    "required": ["inputs"],
                },
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
                    "required": ["error", "field"],
                },
            }
        },
    }

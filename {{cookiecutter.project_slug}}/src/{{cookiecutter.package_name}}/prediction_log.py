"""Sampled prediction log and the drift counters the server exposes on /metrics.

The request path only samples rows, copies the contract's non-PII fields and hands them to a bounded queue
(``put_nowait``); a background thread serialises and writes JSON lines. When the queue is full the rows are
dropped and counted, so a slow disk or a blocked stdout never delays a prediction.

One line per logged row::

    {"ts": "2026-11-30T23:01:02.345Z", "request_id": "...", "row": 0, "model_version": "0.1.0",
     "features": {...}, "prediction": "benign", "probabilities": {"benign": 0.93, "malignant": 0.07}}

Features marked ``pii: true`` and fields outside the data contract are never written.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import re
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import ModelConfig

DEFAULT_QUEUE_SIZE = 10_000  # requests waiting to be written; past this they are dropped and counted
MAX_BATCH_LINES = 1_000
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STOP = object()

try:  # orjson is in the serve extra; json keeps the module usable without it (training, tests)
    import orjson

    def _dumps(record: Mapping[str, Any]) -> bytes:
        return orjson.dumps(record, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover - depends on the environment

    def _dumps(record: Mapping[str, Any]) -> bytes:
        return json.dumps(record, default=_plain, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values; anything else as its string."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class PredictionLogError(Exception):
    """The log destination cannot be opened."""


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a new one (a header never injects into logs)."""
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class PredictionLogger:
    """Call ``start()`` in each server process (after any fork), ``log()`` per request, ``close()`` at shutdown."""

    def __init__(
        self,
        sample_rate: float,
        destination: str,
        model_version: str,
        fields: Sequence[str],
        queue_size: int = DEFAULT_QUEUE_SIZE,
        rng: random.Random | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.destination = destination
        self.model_version = model_version
        self.fields = tuple(fields)
        self.logged = 0
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._rng = rng or random.Random()  # noqa: S311 - sampling, not security
        self._thread: threading.Thread | None = None
        self._fd: int | None = None

    @classmethod
    def from_config(cls, config: ModelConfig, model_version: str | None = None, **kwargs: Any) -> PredictionLogger:
        """Rate and destination from ``serving.prediction_log``; logged fields: the contract minus ``pii: true``."""
        settings = config.serving.prediction_log
        fields = [f.name for f in config.data.features if not f.pii]
        version = model_version or config.metadata.version
        return cls(settings.sample_rate, settings.destination, version, fields, **kwargs)

    @property
    def enabled(self) -> bool:
        return self.sample_rate > 0

    def start(self) -> PredictionLogger:
        if not self.enabled or self._thread is not None:
            return self
        self._fd = self._open()
        self._thread = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def _open(self) -> int:
        if self.destination == "stdout":
            return sys.stdout.fileno()
        path = Path(self.destination)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: whole-line writes from several worker processes do not overwrite each other.
            return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as err:
            raise PredictionLogError(
                f"serving.prediction_log.destination: cannot open {path} ({err.strerror}); "
                "expected stdout or a writable file path"
            ) from None

    def log(
        self,
        request_id: str,
        rows: Sequence[Mapping[str, Any]],
        predictions: Sequence[Any],
        probabilities: Sequence[Mapping[str, float]] | None = None,
    ) -> int:
        """Queue the sampled rows of one request without blocking; return how many were queued."""
        if not self.enabled or self._thread is None:
            return 0
        rate, rng, fields = self.sample_rate, self._rng, self.fields
        picked = [i for i in range(len(rows)) if rate >= 1.0 or rng.random() < rate]
        if not picked:
            return 0
        sample = [
            (
                i,
                {name: rows[i][name] for name in fields if name in rows[i]},
                predictions[i],
                probabilities[i] if probabilities is not None else None,
            )
            for i in picked
        ]
        try:
            self._queue.put_nowait((time.time(), request_id, sample))
        except queue.Full:
            self.dropped += len(sample)
            return 0
        return len(sample)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to ``timeout`` seconds), then stop the thread and close the file."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None
        if self._fd is not None and self.destination != "stdout":
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> PredictionLogger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while len(items) < MAX_BATCH_LINES:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in items:
                stopping = True
                items = [item for item in items if item is not _STOP]
            lines = [line for item in items for line in self._lines(*item)]
            if lines:
                self._write(b"".join(lines), len(lines))

    def _lines(self, ts: float, request_id: str, sample: list[tuple[Any, ...]]) -> list[bytes]:
        stamp = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return [
            _dumps(
                {
                    "ts": stamp,
                    "request_id": request_id,
                    "row": row,
                    "model_version": self.model_version,
                    "features": features,
                    "prediction": prediction,
                    "probabilities": proba,
                }
            )
            + b"\n"
            for row, features, prediction, proba in sample
        ]

    def _write(self, data: bytes, count: int) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as err:
            self.dropped += count
            print(f"prediction log: write failed ({err.strerror}); {count} rows dropped", file=sys.stderr)
            return
        self.logged += count


class TrafficMetrics:
    """Drift-relevant Prometheus counters: nulls and unknown categories per feature, predictions, log health.

    Counts are summed per request and added once per feature, so the cost is one pass over the rows.
    """

    def __init__(self, config: ModelConfig, registry: Any, logger: PredictionLogger | None = None) -> None:
        from prometheus_client import Counter, Histogram
        from prometheus_client.core import CounterMetricFamily
        from prometheus_client.registry import Collector

        self._features = tuple(config.data.features)
        self._known = {f.name: frozenset(f.values) for f in self._features if f.type == "category" and f.values}
        rows = Counter("model_feature_rows", "Rows seen per feature (denominator of the rates)", registry=registry)
        nulls = Counter("model_feature_nulls", "Null values per feature", ["feature"], registry=registry)
        unknown = Counter(
            "model_feature_unknown_categories", "Values outside the declared categories", ["feature"], registry=registry
        )
        self._rows = rows
        self._nulls = {f.name: nulls.labels(feature=f.name) for f in self._features}
        self._unknown = {name: unknown.labels(feature=name) for name in self._known}
        self._classification = config.model.task == "classification"
        if self._classification:
            self._classes = Counter("model_predictions", "Predictions per class", ["class"], registry=registry)
        else:
            self._values = Histogram("model_prediction_value", "Predicted values", registry=registry)

        class LogHealth(Collector):
            def collect(self) -> Any:
                logged = CounterMetricFamily("model_prediction_log_rows", "Rows written to the prediction log")
                dropped = CounterMetricFamily("model_prediction_log_dropped", "Rows dropped: log queue full")
                logged.add_metric([], logger.logged if logger else 0)
                dropped.add_metric([], logger.dropped if logger else 0)
                return [logged, dropped]

        registry.register(LogHealth())

    def observe(self, rows: Sequence[Mapping[str, Any]], predictions: Sequence[Any]) -> None:
        self._rows.inc(len(rows))
        for feature in self._features:
            name = feature.name
            known = self._known.get(name)
            nulls = unknown = 0
            for row in rows:
                value = row.get(name)
                if value is None or value == "" or value != value:  # value != value: NaN
                    nulls += 1
                elif known is not None and str(value) not in known:
                    unknown += 1
            if nulls:
                self._nulls[name].inc(nulls)
            if unknown:
                self._unknown[name].inc(unknown)
        if self._classification:
            for prediction in predictions:
                self._classes.labels(**{"class": str(prediction)}).inc()
        else:
            for prediction in predictions:
                self._values.observe(float(prediction))

"""Sampled prediction log and the drift counters the server exposes on /metrics.

The request path only samples rows, copies the contract's non-PII fields and appends them to a bounded deque; a
background thread wakes every FLUSH_SECONDS, serialises the batch and writes it with one system call. When the
queue is full the rows are dropped and counted, so a slow disk or a blocked stdout never delays a prediction.

One line per logged row::

    {"ts": "2026-11-30T23:01:02.345Z", "request_id": "...", "row": 0, "model_version": "0.1.0",
     "features": {...}, "prediction": "benign", "probabilities": {"benign": 0.93, "malignant": 0.07}}

Features marked ``pii: true`` and fields outside the data contract are never written.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import ModelConfig

DEFAULT_QUEUE_SIZE = 10_000  # requests waiting to be written; past this they are dropped and counted
FLUSH_SECONDS = 0.05  # the writer wakes this often: one write and one GIL hand-over per batch, not per request
MAX_BATCH_ITEMS = 32  # per write: os.write releases the GIL, so a waiting request runs within ~0.2 ms
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

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
        self._queue: deque[tuple[Any, ...]] = deque()  # append and popleft are atomic: no lock per request
        self._queue_size = queue_size
        self._stop = threading.Event()
        self._second, self._second_text = -1, ""
        self._rng = rng or random.Random()  # noqa: S311 - sampling, not security
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        # Called with a row count; the server points them at Prometheus counters (they work across workers).
        self.on_write: Callable[[int], None] | None = None
        self.on_drop: Callable[[int], None] | None = None

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
        self._stop.clear()
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
        columns: Mapping[str, Sequence[Any]],
        predictions: Sequence[Any],
        probabilities: Any = None,
        classes: Sequence[Any] | None = None,
    ) -> int:
        """Queue the sampled rows of one request without blocking; return how many were queued.

        ``columns`` maps each feature to its values (the server's validated request); ``probabilities`` is one row
        per prediction, either a ``{class: p}`` mapping or a sequence aligned with ``classes``.
        """
        if not self.enabled or self._thread is None:
            return 0
        rate, rng = self.sample_rate, self._rng
        picked = range(len(predictions)) if rate >= 1.0 else [i for i in range(len(predictions)) if rng.random() < rate]
        if not picked:
            return 0
        kept = [(name, columns[name]) for name in self.fields if name in columns]
        sample = [
            (
                i,
                {name: values[i] for name, values in kept},
                predictions[i],
                None if probabilities is None else probabilities[i],
            )
            for i in picked
        ]
        if len(self._queue) >= self._queue_size:
            self._dropped(len(sample))
            return 0
        self._queue.append((time.time(), request_id, sample, classes))
        return len(sample)

    def _dropped(self, count: int) -> None:
        self.dropped += count
        if self.on_drop is not None:
            self.on_drop(count)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to ``timeout`` seconds), then stop the thread and close the file."""
        if self._thread is None:
            return
        self._stop.set()
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
            stopping = self._stop.wait(FLUSH_SECONDS)
            while self._queue:  # drain, in bounded batches
                items = []
                while self._queue and len(items) < MAX_BATCH_ITEMS:
                    items.append(self._queue.popleft())
                lines = [line for item in items for line in self._lines(*item)]
                self._write(b"".join(lines), len(lines))

    def _lines(
        self, ts: float, request_id: str, sample: list[tuple[Any, ...]], classes: Sequence[Any] | None
    ) -> list[bytes]:
        stamp = self._stamp(ts)
        return [
            _dumps(
                {
                    "ts": stamp,
                    "request_id": request_id,
                    "row": row,
                    "model_version": self.model_version,
                    "features": features,
                    "prediction": prediction,
                    "probabilities": _by_class(proba, classes),
                }
            )
            + b"\n"
            for row, features, prediction, proba in sample
        ]

    def _stamp(self, ts: float) -> str:
        """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second, not once per row."""
        second = int(ts)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{int((ts - second) * 1000):03d}Z"

    def _write(self, data: bytes, count: int) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as err:
            self._dropped(count)
            print(f"prediction log: write failed ({err.strerror}); {count} rows dropped", file=sys.stderr)
            return
        self.logged += count
        if self.on_write is not None:
            self.on_write(count)


def _by_class(proba: Any, classes: Sequence[Any] | None) -> Any:
    if proba is None or classes is None:
        return proba
    values = proba.tolist() if hasattr(proba, "tolist") else list(proba)
    return {str(c): p for c, p in zip(classes, values, strict=True)}


class TrafficMetrics:
    """Drift-relevant Prometheus counters beside the server's own: per feature, the nulls in accepted rows and the
    values the data contract rejected (unknown category, out of range, wrong type, null); and the log's health.

    Plain counters, so they also work in prometheus_client's multi-process mode (uvicorn workers).
    """

    def __init__(self, config: ModelConfig, registry: Any) -> None:
        from prometheus_client import Counter

        self.features = tuple(f.name for f in config.data.features)
        self.nullable = tuple(f.name for f in config.data.features if f.nullable)
        self.rows = Counter(
            "feature_rows", "Rows accepted for prediction (denominator of the rates)", registry=registry
        )
        nulls = Counter("feature_nulls", "Null values in accepted rows, per feature", ["feature"], registry=registry)
        self.nulls = {name: nulls.labels(name) for name in self.nullable}
        self.rejected = Counter(
            "feature_rejections",
            "Requests refused because of a feature's value, by reason",
            ["feature", "reason"],
            registry=registry,
        )
        self.log_rows = Counter("prediction_log_rows", "Rows written to the prediction log", registry=registry)
        self.log_dropped = Counter(
            "prediction_log_dropped_rows",
            "Rows not logged: the log queue was full or a write failed",
            registry=registry,
        )

    def attach(self, logger: PredictionLogger) -> PredictionLogger:
        logger.on_write = self.log_rows.inc
        logger.on_drop = self.log_dropped.inc
        return logger

    def observe(self, columns: Mapping[str, Sequence[Any]], rows: int) -> None:
        """An accepted request: one pass over the nullable columns only (the others cannot hold nulls)."""
        self.rows.inc(rows)
        for name in self.nullable:
            nulls = sum(1 for value in columns.get(name, ()) if value is None)
            if nulls:
                self.nulls[name].inc(nulls)

    def reject(self, field: str, kind: str) -> None:
        """A refused request: count it against the feature its error names (``instances[3].size_band``), by the
        error's kind (RequestError.kind)."""
        feature = field.rsplit(".", 1)[-1]
        if feature in self.features:
            self.rejected.labels(feature, kind).inc()

"""Request bodies -> validated feature columns, checked against the artifact's data contract.

Every problem becomes a RequestError naming the field (`instances[3].radius_mean`, `inputs[2].data[5]`) and the
reason; the server answers it with a 4xx and never reaches the model. Values are checked a column at a time with
a fast path for the common all-valid case; the slow path runs only to name the first offending value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

NUMERIC_DATATYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
DATATYPES = {
    "number": NUMERIC_DATATYPES,
    "integer": NUMERIC_DATATYPES,
    "category": frozenset({"BYTES"}),
    "boolean": frozenset({"BOOL"}),
}
_NUMBER_TYPES = frozenset({int, float})
SMALL_BATCH = 8  # up to this many rows, numbers are checked in plain Python (numpy's per-call cost dominates)


class RequestError(Exception):
    """A bad request: HTTP status, the offending field, why, and the kind of problem a feature's value has (the
    `feature_rejections_total` reason: type, null, out_of_range, unknown_category)."""

    def __init__(self, status: int, field: str, reason: str, kind: str = "type") -> None:
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason, self.kind = status, field, reason, kind


def describe(value: Any) -> str:
    """A value as it appeared in JSON, shortened, with its JSON type."""
    kind = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object" if isinstance(value, dict) else "null"
    )
    text = "null" if value is None else repr(value) if not isinstance(value, bool) else str(value).lower()
    return f"{text[:40]}{'...' if len(text) > 40 else ''} ({kind})"


class Contract:
    """The data contract of the served artifact (metadata.json `features`) and the serving limits."""

    def __init__(self, features: Sequence[Mapping[str, Any]], max_rows: int) -> None:
        self.features = [dict(f) for f in features]
        self.names = [f["name"] for f in self.features]
        self.name_set = frozenset(self.names)
        self.max_rows = max_rows
        self._allowed = {
            f["name"]: frozenset(f.get("values") or ()) | ({None} if f.get("nullable") else set())
            for f in self.features
            if f["type"] == "category"
        }

    # ---- /predict: {"instances": [{feature: value}, ...]} ----

    def instances(self, body: Any) -> tuple[dict[str, list[Any]], int]:
        if not isinstance(body, dict):
            raise RequestError(422, "$", f"the body is {describe(body)}; expected an object with `instances`")
        extra = sorted(set(body) - {"instances"})
        if extra:
            raise RequestError(422, extra[0], "is not a known field; expected only `instances`")
        rows = body.get("instances")
        if not isinstance(rows, list):
            raise RequestError(422, "instances", f"is {describe(rows)}; expected an array of objects")
        self._check_count(len(rows), "instances")
        names, name_set = self.names, self.name_set
        for i, row in enumerate(rows):
            if type(row) is not dict or row.keys() != name_set:
                self._row_problem(i, row)
        columns: dict[str, Any] = {name: [row[name] for row in rows] for name in names}
        for feature in self.features:
            name = feature["name"]
            checked = self._check_column(feature, columns[name], lambda i, n=name: f"instances[{i}].{n}")
            if checked is not None:
                columns[name] = checked
        return columns, len(rows)

    def _row_problem(self, i: int, row: Any) -> None:
        if not isinstance(row, dict):
            raise RequestError(422, f"instances[{i}]", f"is {describe(row)}; expected an object of features")
        missing = [n for n in self.names if n not in row]
        if missing:
            raise RequestError(422, f"instances[{i}].{missing[0]}", "is missing; every feature is required")
        extra = sorted(k for k in row if k not in self.name_set)
        raise RequestError(
            422, f"instances[{i}].{extra[0]}", "is not a feature of this model; expected only " + ", ".join(self.names)
        )

    def _check_count(self, rows: int, field: str) -> None:
        if rows == 0:
            raise RequestError(422, field, "is empty; expected at least 1 row")
        if rows > self.max_rows:
            raise RequestError(413, field, f"{rows} rows is over serving.max_batch_rows ({self.max_rows})")

    # ---- Open Inference Protocol v2: {"inputs": [{name, shape, datatype, data}, ...]} ----

    def inference_inputs(self, body: Any) -> tuple[dict[str, list[Any]], int]:
        if not isinstance(body, dict):
            raise RequestError(422, "$", f"the body is {describe(body)}; expected an inference request object")
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise RequestError(422, "inputs", f"is {describe(inputs)}; expected one input tensor per feature")
        by_name: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, tensor in enumerate(inputs):
            if not isinstance(tensor, dict):
                raise RequestError(422, f"inputs[{i}]", f"is {describe(tensor)}; expected a tensor object")
            name = tensor.get("name")
            if name not in self.name_set:
                raise RequestError(
                    422,
                    f"inputs[{i}].name",
                    f"{describe(name)} is not a feature; expected one of " + ", ".join(self.names),
                )
            if name in by_name:
                raise RequestError(422, f"inputs[{i}].name", f"{name!r} is given twice")
            by_name[name] = (i, tensor)
        missing = [n for n in self.names if n not in by_name]
        if missing:
            raise RequestError(422, "inputs", f"has no tensor for feature {missing[0]!r}; every feature is required")
        columns: dict[str, Any] = {}
        rows = -1
        for feature in self.features:
            i, tensor = by_name[feature["name"]]
            data = self._tensor_data(feature, i, tensor)
            if rows == -1:
                self._check_count(len(data), f"inputs[{i}].shape")
                rows = len(data)
            elif len(data) != rows:
                raise RequestError(422, f"inputs[{i}].shape", f"has {len(data)} rows; other inputs have {rows}")
            checked = self._check_column(feature, data, lambda j, i=i: f"inputs[{i}].data[{j}]")
            columns[feature["name"]] = data if checked is None else checked
        return columns, rows

    def _tensor_data(self, feature: Mapping[str, Any], i: int, tensor: Mapping[str, Any]) -> list[Any]:
        datatype, shape, data = tensor.get("datatype"), tensor.get("shape"), tensor.get("data")
        allowed = DATATYPES[feature["type"]]
        if datatype not in allowed:
            raise RequestError(
                422,
                f"inputs[{i}].datatype",
                f"{describe(datatype)} for {feature['type']} feature {feature['name']!r}; expected "
                + " or ".join(sorted(allowed)),
            )
        if not (isinstance(shape, list) and 1 <= len(shape) <= 2 and all(type(s) is int and s >= 0 for s in shape)):
            raise RequestError(422, f"inputs[{i}].shape", f"is {describe(shape)}; expected [rows] or [rows, 1]")
        if len(shape) == 2 and shape[1] != 1:
            raise RequestError(422, f"inputs[{i}].shape", f"is {shape}; expected [rows] or [rows, 1] (one feature)")
        if not isinstance(data, list):
            raise RequestError(422, f"inputs[{i}].data", f"is {describe(data)}; expected a flat array")
        if data and isinstance(data[0], list):  # row-major nested [[v], [v]] is allowed for shape [rows, 1]
            if not all(isinstance(v, list) and len(v) == 1 for v in data):
                raise RequestError(422, f"inputs[{i}].data", "nested rows must hold exactly one value each")
            data = [v[0] for v in data]
        if len(data) != shape[0]:
            raise RequestError(422, f"inputs[{i}].data", f"has {len(data)} values; shape {shape} says {shape[0]}")
        return data

    # ---- values ----

    def _check_column(
        self, feature: Mapping[str, Any], column: list[Any], field: Callable[[int], str]
    ) -> np.ndarray | None:
        """Raise RequestError for the first bad value; return a complete numeric column as float64 (reused)."""
        kind = feature["type"]
        if kind in ("number", "integer"):
            return self._check_numbers(feature, column, field)
        if kind == "category":
            if not self._allowed[feature["name"]].issuperset(column):
                self._category_problem(feature, column, field)
        elif not all(type(v) is bool or (v is None and feature.get("nullable")) for v in column):
            bad = next(j for j, v in enumerate(column) if type(v) is not bool)
            raise self._wrong_value(field(bad), feature, column[bad], "true or false")
        return None

    def _check_numbers(
        self, feature: Mapping[str, Any], column: list[Any], field: Callable[[int], str]
    ) -> np.ndarray | None:
        kinds = set(map(type, column))
        expected = "an integer" if feature["type"] == "integer" else "a number"
        complete = kinds <= _NUMBER_TYPES
        if not complete:
            for j, v in enumerate(column):
                if type(v) not in _NUMBER_TYPES and not (v is None and feature.get("nullable")):
                    raise self._wrong_value(field(j), feature, v, expected)
            values = [v for v in column if v is not None]
            if not values:
                return None
        else:
            values = column
            if len(column) <= SMALL_BATCH:
                self._check_small(feature, column, field, expected)
                return None
        array = np.asarray(values, dtype=np.float64)
        if not np.isfinite(array).all():  # JSON has no NaN, but 1e999 parses as inf
            j = _first_index(column, lambda v: v is not None and not math.isfinite(v))
            raise RequestError(422, field(j), f"{describe(column[j])} is not finite; expected {expected}")
        if feature["type"] == "integer" and float in kinds and not (array == np.floor(array)).all():
            j = _first_index(column, lambda v: v is not None and v != math.floor(v))
            raise RequestError(422, field(j), f"{describe(column[j])} is not whole; expected an integer")
        low, high = feature.get("min"), feature.get("max")
        if low is not None and array.min() < low:
            j = _first_index(column, lambda v: v is not None and v < low)
            raise _out_of_range(field(j), column[j], "below the minimum", low)
        if high is not None and array.max() > high:
            j = _first_index(column, lambda v: v is not None and v > high)
            raise _out_of_range(field(j), column[j], "above the maximum", high)
        return array if complete else None

    @staticmethod
    def _check_small(feature: Mapping[str, Any], column: list[Any], field: Callable[[int], str], expected: str) -> None:
        """The same checks in plain Python: for a few rows, cheaper than creating arrays."""
        low, high, whole = feature.get("min"), feature.get("max"), feature["type"] == "integer"
        for j, v in enumerate(column):
            if not math.isfinite(v):
                raise RequestError(422, field(j), f"{describe(v)} is not finite; expected {expected}")
            if whole and type(v) is float and not v.is_integer():
                raise RequestError(422, field(j), f"{describe(v)} is not whole; expected an integer")
            if low is not None and v < low:
                raise _out_of_range(field(j), v, "below the minimum", low)
            if high is not None and v > high:
                raise _out_of_range(field(j), v, "above the maximum", high)

    def _category_problem(self, feature: Mapping[str, Any], column: list[Any], field: Callable[[int], str]) -> None:
        allowed = self._allowed[feature["name"]]
        options = ", ".join(repr(v) for v in feature.get("values") or ())
        for j, value in enumerate(column):
            if value in allowed and (value is not None or feature.get("nullable")):
                continue
            if value is None or not isinstance(value, str):
                raise self._wrong_value(field(j), feature, value, f"a string, one of {options}")
            reason = f"{describe(value)} is not a known category; expected one of {options}"
            raise RequestError(422, field(j), reason, "unknown_category")

    @staticmethod
    def _wrong_value(field: str, feature: Mapping[str, Any], value: Any, expected: str) -> RequestError:
        if value is None:
            reason = f"is null but {feature['name']!r} is not nullable; expected {expected}"
            return RequestError(422, field, reason, "null")
        return RequestError(422, field, f"{describe(value)} has the wrong type; expected {expected}")


def _out_of_range(field: str, value: Any, side: str, bound: Any) -> RequestError:
    return RequestError(422, field, f"{value!r} is {side} {bound} of the data contract", "out_of_range")


def _first_index(column: list[Any], bad: Callable[[Any], bool]) -> int:
    return next(j for j, v in enumerate(column) if type(v) is not bool and bad(v))

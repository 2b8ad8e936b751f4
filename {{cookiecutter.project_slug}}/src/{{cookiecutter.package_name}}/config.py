"""Load model.yaml once, check it against the schema and its meaning, and return one immutable object.

Nothing else in the package reads YAML: every stage receives the ``ModelConfig`` built here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

SCHEMA_RELATIVE_PATH = Path("schemas/model.schema.json")

METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape"})
UNIT_INTERVAL_METRICS = frozenset({"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc"})

# The allow-list: model.yaml names one of these, never an import path.
ESTIMATORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("sklearn", "classification"): (
        "LogisticRegression",
        "RidgeClassifier",
        "RandomForestClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
    ),
    ("sklearn", "regression"): (
        "LinearRegression",
        "Ridge",
        "RandomForestRegressor",
        "GradientBoostingRegressor",
        "HistGradientBoostingRegressor",
    ),
    ("tensorflow", "classification"): ("KerasMLP",),
    ("tensorflow", "regression"): ("KerasMLP",),
}
TENSORFLOW_ONLY_TRAINING = ("epochs", "batch_size", "learning_rate", "optimizer", "validation_split", "early_stopping")
MIN_TEST_ROWS = 10
MIN_TRAIN_ROWS = 20


@dataclass(frozen=True)
class Problem:
    path: str
    what: str
    expected: str

    def __str__(self) -> str:
        return f"model.yaml: {self.path}: {self.what}; expected {self.expected}"


class ConfigError(Exception):
    """model.yaml is wrong; carries every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    description: str = ""
    owners: tuple[str, ...] = ()
    intended_use: str = ""
    limitations: str = ""
    license: str = ""


@dataclass(frozen=True)
class Feature:
    name: str
    type: Literal["number", "integer", "category", "boolean"]
    description: str = ""
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()
    nullable: bool = False
    max_null_rate: float | None = None
    pii: bool = False

    @property
    def is_categorical(self) -> bool:
        return self.type in ("category", "boolean")


@dataclass(frozen=True)
class Split:
    test_size: float = 0.2
    seed: int = 42
    stratify: bool | None = None  # None: stratify classification, not regression


@dataclass(frozen=True)
class Data:
    path: str
    target: str
    features: tuple[Feature, ...]
    positive_class: str | int | bool | None = None
    min_rows: int = 50
    split: Split = Split()

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


@dataclass(frozen=True)
class Model:
    task: Literal["classification", "regression"]
    framework: Literal["sklearn", "tensorflow"]
    estimator: str
    params: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))


@dataclass(frozen=True)
class EarlyStopping:
    patience: int = 10
    min_delta: float = 0.0


@dataclass(frozen=True)
class Training:
    seed: int = 42
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.001
    optimizer: str = "adam"
    validation_split: float = 0.2
    early_stopping: EarlyStopping | None = None


@dataclass(frozen=True)
class Gate:
    metric: str
    id: str = ""
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    min_gain: float | None = None
    against: str | None = None
    slice: str | None = None
    ci: float | None = None
    min_rows: int | None = None
    description: str = ""

    @property
    def kind(self) -> str:
        """Which bound this gate sets: min, max, max_drop or min_gain."""
        return next(k for k in ("min", "max", "max_drop", "min_gain") if getattr(self, k) is not None)

    @property
    def bound(self) -> float:
        return float(getattr(self, self.kind))

    @property
    def relative(self) -> bool:
        return self.kind in ("max_drop", "min_gain")


@dataclass(frozen=True)
class Override:
    gate: str
    reason: str
    approved_by: str


@dataclass(frozen=True)
class Bootstrap:
    samples: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Evaluation:
    metrics: tuple[str, ...]
    slices: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = ()
    bootstrap: Bootstrap = Bootstrap()
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class PredictionLog:
    sample_rate: float = 0.0
    destination: str = "stdout"


@dataclass(frozen=True)
class Serving:
    max_batch_rows: int = 1000
    max_body_bytes: int = 1_048_576
    workers: int = 2
    port: int = 8080
    runtime: Literal["auto", "native"] = "auto"
    prediction_log: PredictionLog = PredictionLog()


@dataclass(frozen=True)
class Quantity:
    cpu: str = "250m"
    memory: str = "256Mi"


@dataclass(frozen=True)
class Resources:
    requests: Quantity = Quantity()
    limits: Quantity = Quantity(cpu="1", memory="512Mi")


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int = 1
    max_replicas: int = 3
    target_cpu_utilization: int = 70


@dataclass(frozen=True)
class Environment:
    replicas: int = 1
    approval: Literal["required", "none"] = "none"
    autoscaling: Autoscaling | None = None


@dataclass(frozen=True)
class Deploy:
    image: str
    resources: Resources = Resources()
    staging: Environment = Environment()
    production: Environment = Environment(replicas=2, approval="required")


@dataclass(frozen=True)
class Monitoring:
    psi_threshold: float = 0.2
    prediction_psi_threshold: float = 0.2
    max_unknown_rate: float = 0.01
    max_null_rate_increase: float = 0.05
    min_rows: int = 200
    log_location: str = ""
    bins: int = 10
    on_alarm: Literal["issue", "retrain-pr"] = "issue"


@dataclass(frozen=True)
class ModelConfig:
    metadata: Metadata
    data: Data
    model: Model
    evaluation: Evaluation
    training: Training = Training()
    serving: Serving = Serving()
    deploy: Deploy | None = None
    monitoring: Monitoring = Monitoring()
    root: Path = Path()
    source_sha256: str = ""

    def path(self, relative: str | Path) -> Path:
        """A path from model.yaml, resolved against the repository root."""
        return self.root / relative

    @property
    def feature(self) -> Mapping[str, Feature]:
        return {f.name: f for f in self.data.features}

    @property
    def stratify(self) -> bool:
        split = self.data.split
        return self.model.task == "classification" if split.stratify is None else split.stratify


def load_config(
    path: str | Path = "model.yaml", schema_path: str | Path | None = None, require_data: bool = True
) -> ModelConfig:
    """Read, check and freeze model.yaml; raise ConfigError listing every problem.

    require_data=False skips the checks of the data file itself (the serving image carries no data).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([Problem("$", f"cannot read {path} ({err.strerror})", "a readable model.yaml")]) from None
    document = _parse_yaml(raw)
    schema = json.loads(Path(schema_path or path.parent / SCHEMA_RELATIVE_PATH).read_text())
    problems = list(schema_problems(document, schema))
    problems += _as_far_as_possible(meaning_problems(document, path.parent, require_data))
    if problems:
        raise ConfigError(problems)
    return _build(ModelConfig, document, root=path.parent, source_sha256=hashlib.sha256(raw).hexdigest())


class _UniqueKeys:
    """A SafeLoader mixin that refuses duplicate keys, which plain YAML silently resolves to the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """Pure Python: slower, but its error messages name the right line (libyaml's can point past the end)."""


class _FastUniqueKeyLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (in PyYAML's wheels), ~8x faster: every stage is a process that parses model.yaml first."""


def _parse_yaml(raw: bytes) -> Any:
    try:
        try:
            document = yaml.load(raw, Loader=_FastUniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError:  # parsed again for the pure parser's message
            document = yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError([Problem("$", f"not valid YAML{at}: {problem}", "a YAML mapping")]) from None
    if not isinstance(document, dict):
        raise ConfigError([Problem("$", f"is a {type(document).__name__}, not a mapping", "a YAML mapping")])
    return document


def _as_far_as_possible(found: Iterator[Problem]) -> list[Problem]:
    """Cross-field problems up to the first part the schema already rejected, so all are reported at once."""
    out: list[Problem] = []
    with contextlib.suppress(KeyError, TypeError, AttributeError, ValueError):
        out.extend(found)
    return out


def _json_path(parts: Iterator[Any] | typing.Sequence[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(error: jsonschema.ValidationError) -> str:
    schema, kind, arg = error.schema, error.validator, error.validator_value
    if kind in ("enum", "const"):
        options = arg if kind == "enum" else [arg]
        return "one of " + ", ".join(_describe(o) for o in options)
    if kind == "type":
        kinds = arg if isinstance(arg, list) else [arg]
        return " or ".join(kinds)
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        return f"a number {sign} {arg}"
    if kind == "pattern":
        example = schema.get("examples", [None])[0]
        return f"a string matching {arg}" + (f", like {_describe(example)}" if example is not None else "")
    if kind in ("minItems", "maxItems", "minLength", "maxLength"):
        unit = "items" if "Items" in kind else "characters"
        return f"{'at least' if kind.startswith('min') else 'at most'} {arg} {unit}"
    if kind == "uniqueItems":
        return "each item once"
    return str(schema.get("description", "a value the schema allows"))


def schema_problems(document: Any, schema: Mapping[str, Any]) -> Iterator[Problem]:
    """Schema errors as Problems, one per offending field, in a stable order."""
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "required":
            missing = [name for name in error.validator_value if name not in error.instance]
            for name in missing:
                sub = error.schema.get("properties", {}).get(name, {})
                yield Problem(_json_path([*path, name]), "is missing", sub.get("description", "a value"))
        elif error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            for name in sorted(set(error.instance) - set(allowed)):
                yield Problem(_json_path([*path, name]), "is not a known field", "one of " + ", ".join(allowed))
        else:
            yield Problem(_json_path(path), f"{_describe(error.instance)} is not allowed", _expected(error))


def meaning_problems(doc: Mapping[str, Any], root: Path, require_data: bool = True) -> Iterator[Problem]:
    """Cross-field rules the schema cannot express. Assumes the schema's structure; see _as_far_as_possible."""
    data, model, evaluation = doc["data"], doc["model"], doc["evaluation"]
    task, framework = model["task"], model["framework"]
    features = data["features"]
    by_name: dict[str, dict[str, Any]] = {}
    for i, feature in enumerate(features):
        at = f"$.data.features[{i}]"
        name, kind = feature["name"], feature["type"]
        if name in by_name:
            yield Problem(f"{at}.name", f"{name!r} is declared twice", "unique feature names")
        by_name.setdefault(name, feature)
        numeric = kind in ("number", "integer")
        for bound in ("min", "max"):
            if bound in feature and not numeric:
                yield Problem(f"{at}.{bound}", f"is set on a {kind} feature", "min/max on number or integer only")
        if numeric and "min" in feature and "max" in feature and feature["min"] > feature["max"]:
            yield Problem(f"{at}.min", f"{feature['min']} is above max {feature['max']}", "min <= max")
        if kind == "category" and "values" not in feature:
            yield Problem(f"{at}.values", "is missing for a category feature", "the list of allowed categories")
        if kind != "category" and "values" in feature:
            yield Problem(f"{at}.values", f"is set on a {kind} feature", "values on category features only")
        if "max_null_rate" in feature and not feature.get("nullable", False):
            yield Problem(f"{at}.max_null_rate", "is set on a feature that is not nullable", "nullable: true first")
    if data["target"] in by_name:
        yield Problem("$.data.target", f"{data['target']!r} is also a feature", "a column that is not a feature")
    if "positive_class" in data and task != "classification":
        yield Problem("$.data.positive_class", f"is set for a {task} model", "positive_class only for classification")
    if data.get("split", {}).get("stratify") and task != "classification":
        yield Problem("$.data.split.stratify", "is true for a regression model", "false (stratify needs classes)")

    allowed = ESTIMATORS[(framework, task)]
    if model["estimator"] not in allowed:
        yield Problem(
            "$.model.estimator",
            f"{model['estimator']!r} is not allowed for {framework} {task}",
            "one of " + ", ".join(allowed),
        )
    if framework == "sklearn":
        for key in TENSORFLOW_ONLY_TRAINING:
            if key in doc.get("training", {}):
                yield Problem(f"$.training.{key}", "applies to tensorflow models only", "no such key for sklearn")

    def categorical(name: str, at: str) -> Iterator[Problem]:
        feature = by_name.get(name)
        if feature is None:
            yield Problem(at, f"{name!r} is not a feature", "one of the categorical features in data.features")
        elif feature["type"] not in ("category", "boolean"):
            yield Problem(at, f"{name!r} is a {feature['type']} feature", "a category or boolean feature")

    computable = METRICS[task]
    for i, metric in enumerate(evaluation["metrics"]):
        if metric not in computable:
            yield Problem(f"$.evaluation.metrics[{i}]", f"{metric!r} is not a {task} metric", _one_of(computable))
    for i, name in enumerate(evaluation.get("slices", [])):
        yield from categorical(name, f"$.evaluation.slices[{i}]")

    ids: set[str] = set()
    for i, gate in enumerate(evaluation.get("gates", [])):
        at = f"$.evaluation.gates[{i}]"
        metric = gate["metric"]
        if metric not in computable:
            yield Problem(f"{at}.metric", f"{metric!r} cannot be computed for {task}", _one_of(computable))
        kinds = [k for k in ("min", "max", "max_drop", "min_gain") if k in gate]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            yield Problem(at, f"sets {found}", "exactly one of min, max, max_drop, min_gain")
        relative = bool(kinds) and kinds[0] in ("max_drop", "min_gain")
        if relative and gate.get("against") != "production":
            yield Problem(f"{at}.against", f"is missing for {kinds[0]}", "against: production")
        if not relative and "against" in gate:
            yield Problem(f"{at}.against", "is set on an absolute gate", "against only with max_drop or min_gain")
        for bound in ("min", "max"):
            if metric in UNIT_INTERVAL_METRICS and bound in gate and not 0 <= gate[bound] <= 1:
                yield Problem(f"{at}.{bound}", f"{gate[bound]} can never be met by {metric}", "a value from 0 to 1")
        if "slice" in gate:
            yield from categorical(gate["slice"], f"{at}.slice")
        gate_id = gate.get("id") or default_gate_id(gate)
        if gate_id in ids:
            yield Problem(f"{at}.id", f"{gate_id!r} is used by another gate", "a unique id per gate")
        ids.add(gate_id)
    for i, override in enumerate(evaluation.get("overrides", [])):
        if override["gate"] not in ids:
            known = ", ".join(sorted(ids)) or "no gates"
            yield Problem(f"$.evaluation.overrides[{i}].gate", f"{override['gate']!r} is no gate", f"one of {known}")

    if require_data:
        yield from _data_file_problems(data, root)
    for env in ("staging", "production"):
        scaling = doc.get("deploy", {}).get(env, {}).get("autoscaling")
        if scaling and scaling["min_replicas"] > scaling["max_replicas"]:
            at = f"$.deploy.{env}.autoscaling.min_replicas"
            yield Problem(at, f"{scaling['min_replicas']} is above max_replicas", "min_replicas <= max_replicas")


def _one_of(options: typing.Iterable[str]) -> str:
    return "one of " + ", ".join(options)


def _data_file_problems(data: Mapping[str, Any], root: Path) -> Iterator[Problem]:
    file = root / data["path"]
    if not file.is_file():
        yield Problem("$.data.path", f"{data['path']} does not exist", "a CSV file (run `dvc pull` if DVC tracks it)")
        return
    with file.open("rb") as handle:
        rows = max(sum(1 for _ in handle) - 1, 0)
    test_size = data.get("split", {}).get("test_size", 0.2)
    test_rows = math.ceil(rows * test_size)
    if test_rows < MIN_TEST_ROWS or rows - test_rows < MIN_TRAIN_ROWS:
        yield Problem(
            "$.data.split.test_size",
            f"{test_size} of {rows} rows leaves {test_rows} test and {rows - test_rows} training rows",
            f"at least {MIN_TEST_ROWS} test and {MIN_TRAIN_ROWS} training rows",
        )


def default_gate_id(gate: Mapping[str, Any]) -> str:
    """metric[-slice]-kind, e.g. ``recall-size_band-min``."""
    kind = next((k for k in ("min", "max", "max_drop", "min_gain") if k in gate), "gate")
    parts = [gate["metric"], gate.get("slice"), kind.replace("_", "-")]
    return "-".join(p for p in parts if p).replace("_", "-").lower()


def _build(cls: type, values: Mapping[str, Any], **extra: Any) -> Any:
    """Turn a schema-valid mapping into the frozen dataclass ``cls`` (recursively)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = dict(extra)
    for f in fields(cls):
        if f.name not in values:
            continue
        kwargs[f.name] = _convert(hints[f.name], values[f.name])
    if cls is Gate and not kwargs.get("id"):
        kwargs["id"] = default_gate_id(values)
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return None if value is None else _convert(inner[0], value) if len(inner) == 1 else value
    if is_dataclass(hint) and isinstance(value, Mapping):
        return _build(hint, value)
    if origin is tuple and isinstance(value, list):
        return tuple(_convert(args[0], item) for item in value)
    if origin is Mapping or hint is Mapping:
        return types.MappingProxyType(dict(value))
    return value

"""The reference profile: what the training data and the model's predictions looked like, saved with the model.

The monitor compares logged traffic with this file, so it records exactly what drift needs: per feature the null
share, for numbers the histogram over quantile bin edges, for categories their frequencies; and the distribution of
the predictions. Features marked ``pii: true`` are left out, as they are left out of the prediction logs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig

PROFILE_FORMAT = 1
PROFILE_FILE = "profile.json"
PROBABILITY_EDGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Proportions are floored at this before taking logs: an empty bin on one side must not make PSI infinite.
PSI_FLOOR = 1e-4


class ProfileError(Exception):
    """The profile file is missing or not one this code wrote."""


def is_null(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def numbers(values: Iterable[Any]) -> np.ndarray:
    """The non-null values as floats; a value that is no number counts as null (the server rejects those)."""
    out = []
    for value in values:
        if is_null(value) or isinstance(value, bool):
            continue
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            continue
    return np.asarray(out, dtype=float)


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Interior bin edges at the 1/bins ... (bins-1)/bins quantiles, without duplicates (integers repeat)."""
    if values.size == 0:
        return []
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return sorted({float(e) for e in edges})


def bin_counts(edges: Sequence[float], values: np.ndarray) -> list[int]:
    """Counts in the len(edges) + 1 bins (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1).astype(int).tolist()


def category_counts(values: Iterable[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        if not is_null(value):
            key = _category(value)
            counts[key] = counts.get(key, 0) + 1
    return counts


def _category(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two count (or share) vectors over the same bins."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.sum() == 0 or a.sum() == 0:
        return 0.0
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_profile(feature_type: str, values: Sequence[Any], bins: int) -> dict[str, Any]:
    rows = len(values)
    nulls = sum(1 for v in values if is_null(v))
    out: dict[str, Any] = {"type": feature_type, "rows": rows, "null_rate": nulls / rows if rows else 0.0}
    if feature_type in ("number", "integer"):
        x = numbers(values)
        edges = quantile_edges(x, bins)
        out |= {
            "mean": float(x.mean()) if x.size else None,
            "std": float(x.std()) if x.size else None,
            "min": float(x.min()) if x.size else None,
            "max": float(x.max()) if x.size else None,
            "edges": edges,
            "counts": bin_counts(edges, x),
        }
    else:
        counts = category_counts(values)
        total = sum(counts.values())
        out |= {
            "counts": dict(sorted(counts.items())),
            "frequencies": {k: v / total for k, v in sorted(counts.items())},
        }
    return out


def prediction_profile(
    task: str,
    predictions: Sequence[Any],
    probabilities: Sequence[Mapping[str, float]] | None,
    positive_class: str | None,
    bins: int,
) -> dict[str, Any]:
    """Classes: their frequencies (+ a histogram of the positive class's probability); numbers: a histogram."""
    if task == "regression":
        return {"kind": "number", **feature_profile("number", predictions, bins)}
    out: dict[str, Any] = {"kind": "class", **feature_profile("category", predictions, bins)}
    if probabilities and positive_class is not None:
        p = numbers(row.get(positive_class) for row in probabilities)
        out["positive_class"] = positive_class
        out["probability"] = {"edges": list(PROBABILITY_EDGES), "counts": bin_counts(PROBABILITY_EDGES, p)}
    return out


def positive_class(config: ModelConfig, classes: Sequence[str] | None = None) -> str | None:
    """The class whose probability is tracked: data.positive_class, else the last of the model's classes."""
    if config.model.task != "classification":
        return None
    if config.data.positive_class is not None:
        return _category(config.data.positive_class)
    return _category(sorted(classes)[-1]) if classes else None


def build_profile(
    config: ModelConfig,
    columns: Mapping[str, Sequence[Any]],
    predictions: Sequence[Any],
    probabilities: Sequence[Mapping[str, float]] | None = None,
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The profile of ``columns`` (feature name -> values, e.g. a DataFrame) and the model's predictions on them.

    ``probabilities`` holds one ``{class: probability}`` mapping per row (classification only).
    """
    bins = config.monitoring.bins
    features = {f.name: feature_profile(f.type, list(columns[f.name]), bins) for f in config.data.features if not f.pii}
    return {
        "format": PROFILE_FORMAT,
        "model": config.metadata.name,
        "model_version": config.metadata.version,
        "task": config.model.task,
        "rows": len(predictions),
        "bins": bins,
        "features": features,
        "prediction": prediction_profile(
            config.model.task, list(predictions), probabilities, positive_class(config, classes), bins
        ),
    }


def write_profile(profile: Mapping[str, Any], directory: Path) -> Path:
    """Write ``directory/profile.json`` atomically (a reader never sees half a file)."""
    path = directory / PROFILE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(profile, indent=1, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def load_profile(path: Path) -> dict[str, Any]:
    try:
        profile = json.loads(path.read_text())
    except OSError as err:
        raise ProfileError(f"cannot read the reference profile {path} ({err.strerror}); run `train` first") from None
    except json.JSONDecodeError as err:
        raise ProfileError(f"{path} is not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT or "features" not in profile:
        raise ProfileError(f"{path} is not a format-{PROFILE_FORMAT} reference profile; re-run `train`")
    return profile


def write_training_profile(config: ModelConfig, predictor: Any, model_dir: Path, rows: Any) -> Path:
    """Profile the training rows and the saved model's predictions on them (``predictor``: the artifact in
    ``model_dir``, reloaded); write it beside the model."""
    predictions, proba = predictor.predict_frame(rows)
    classes = None if predictor.classes is None else [str(c) for c in predictor.classes]
    probabilities = None
    if proba is not None and classes is not None:
        probabilities = [dict(zip(classes, p, strict=True)) for p in proba.tolist()]
    profile = build_profile(config, rows, np.asarray(predictions).tolist(), probabilities, classes)
    return write_profile(profile, model_dir)

"""Metrics per task as pure functions of arrays, and their bootstrap intervals. No files, no config.

Binary classification scores precision, recall, f1 and roc_auc for the positive class; multiclass uses macro
averages and one-vs-rest roc_auc. A metric that cannot be computed on the rows given (roc_auc with one class
present, r2 on one row) is None, never a made-up number.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import LOWER_IS_BETTER, METRICS


@dataclass(frozen=True)
class Scored:
    """Test rows as arrays: truth, predictions, probabilities (classification, columns in ``classes`` order)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    classes: tuple[str, ...] = ()
    positive: str | None = None

    def take(self, rows: np.ndarray) -> Scored:
        proba = None if self.proba is None else self.proba[rows]
        return Scored(self.y_true[rows], self.y_pred[rows], proba, self.classes, self.positive)

    def __len__(self) -> int:
        return len(self.y_true)


def positive_label(classes: Sequence[str], positive: str | None) -> str | None:
    """The class binary metrics are about: positive_class, else the last class in model order; None if multiclass."""
    if len(classes) != 2:
        return None
    return positive if positive in classes else classes[-1]


def compute(name: str, s: Scored) -> float | None:
    if len(s) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = _classification(name, s) if s.classes else _regression(name, s)
    return None if value is None or not np.isfinite(value) else float(value)


def compute_all(names: Sequence[str], s: Scored) -> dict[str, float | None]:
    return {name: compute(name, s) for name in names}


def _classification(name: str, s: Scored) -> float | None:
    from sklearn import metrics as m

    positive = positive_label(s.classes, s.positive)
    labels = list(s.classes)
    if name == "accuracy":
        return float(np.mean(s.y_true == s.y_pred))
    if name == "balanced_accuracy":
        present = [c for c in labels if np.any(s.y_true == c)]
        return float(np.mean([np.mean(s.y_pred[s.y_true == c] == c) for c in present]))
    if name in ("precision", "recall", "f1"):
        score = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
        if positive is not None:
            # Undefined, not 0: recall and f1 without a positive row, precision without a positive prediction.
            if not np.any((s.y_pred if name == "precision" else s.y_true) == positive):
                return None
            return score(s.y_true, s.y_pred, pos_label=positive, average="binary", zero_division=0)
        return score(s.y_true, s.y_pred, labels=labels, average="macro", zero_division=0)
    if s.proba is None:
        return None
    if name == "roc_auc":
        if len(np.unique(s.y_true)) < 2:
            return None
        if positive is not None:
            return m.roc_auc_score(s.y_true == positive, s.proba[:, labels.index(positive)])
        if len(np.unique(s.y_true)) < len(labels):
            return None
        return m.roc_auc_score(s.y_true, s.proba, multi_class="ovr", average="macro", labels=labels)
    if name == "log_loss":
        return m.log_loss(s.y_true, np.clip(s.proba, 1e-15, 1.0), labels=labels)
    raise KeyError(name)


def _regression(name: str, s: Scored) -> float | None:
    truth, pred = s.y_true.astype(np.float64), s.y_pred.astype(np.float64)
    error = pred - truth
    if name == "rmse":
        return float(np.sqrt(np.mean(error**2)))
    if name == "mae":
        return float(np.mean(np.abs(error)))
    if name == "mape":
        return float(np.mean(np.abs(error) / np.maximum(np.abs(truth), np.finfo(np.float64).eps)))
    if name == "r2":
        total = np.sum((truth - truth.mean()) ** 2)
        return None if len(truth) < 2 or total == 0 else float(1 - np.sum(error**2) / total)
    raise KeyError(name)


def task_metrics(task: str) -> tuple[str, ...]:
    return METRICS[task]


def better(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is (positive) or worse (negative), in the metric's own units."""
    return champion - challenger if metric in LOWER_IS_BETTER else challenger - champion


def bootstrap_indices(rows: int, samples: int, seed: int) -> np.ndarray:
    """(samples, rows) resampling indices; the same for every gate and both models, so comparisons are paired."""
    return np.random.default_rng(seed).integers(0, rows, size=(samples, rows))


def interval(values: Sequence[float | None], level: float) -> tuple[float, float] | None:
    """The central ``level`` percentile interval of bootstrap values (None values dropped)."""
    finite = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(finite) == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)

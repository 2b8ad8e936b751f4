"""Metrics per task as pure functions of arrays, and their bootstrap intervals. No files, no config.

numpy only, written to scikit-learn's definitions (its tie handling, curve points and clipping): evaluate then
imports neither scikit-learn nor the model's libraries, and bootstrapped gates skip sklearn's input validation.

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
    positive = positive_label(s.classes, s.positive)
    labels = list(s.classes)
    if name == "accuracy":
        return float(np.mean(s.y_true == s.y_pred))
    if name == "balanced_accuracy":
        present = [c for c in labels if np.any(s.y_true == c)]
        return float(np.mean([np.mean(s.y_pred[s.y_true == c] == c) for c in present]))
    if name in ("precision", "recall", "f1"):
        if positive is not None:
            # Undefined, not 0: recall and f1 without a positive row, precision without a positive prediction.
            if not np.any((s.y_pred if name == "precision" else s.y_true) == positive):
                return None
            return _prf(name, s.y_true == positive, s.y_pred == positive)
        return float(np.mean([_prf(name, s.y_true == c, s.y_pred == c) for c in labels]))
    if s.proba is None:
        return None
    if name == "roc_auc":
        if len(np.unique(s.y_true)) < 2:
            return None
        if positive is not None:
            return _auc(s.y_true == positive, s.proba[:, labels.index(positive)])
        if len(np.unique(s.y_true)) < len(labels):
            return None
        return float(np.mean([_auc(s.y_true == c, s.proba[:, i]) for i, c in enumerate(labels)]))  # one-vs-rest
    if name == "log_loss":
        proba = np.clip(s.proba, 1e-15, 1 - np.finfo(np.float64).eps)  # log(0) and log(1 - 1) stay finite
        column = np.asarray([labels.index(c) for c in s.y_true])
        return float(np.mean(-np.log(proba[np.arange(len(column)), column])))
    raise KeyError(name)


def _prf(name: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Precision, recall or f1 of one class from boolean masks; 0 where the denominator is 0 (zero_division=0)."""
    hits = float(np.sum(truth & predicted))
    positives, predictions = float(np.sum(truth)), float(np.sum(predicted))
    denominator = {"precision": predictions, "recall": positives, "f1": (positives + predictions) / 2}[name]
    return 0.0 if denominator == 0 else hits / denominator


def _counts_at_thresholds(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positives, true positives) at each distinct score, highest first."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    scores, truth = np.asarray(scores, dtype=np.float64)[order], np.asarray(truth, dtype=np.float64)[order]
    at = np.r_[np.flatnonzero(np.diff(scores)), len(truth) - 1]
    tps = np.cumsum(truth, dtype=np.float64)[at]
    return 1 + at.astype(np.float64) - tps, tps


def roc_curve(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) from (0, 0), without points collinear with their neighbours; both classes must be present."""
    fps, tps = _counts_at_thresholds(truth, scores)
    if len(fps) > 2:
        corner = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[corner], tps[corner]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1]


def precision_recall_curve(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall), recall decreasing, ending at (1, 0)."""
    fps, tps = _counts_at_thresholds(truth, scores)
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Counts, rows = actual, columns = predicted, in ``labels`` order."""
    return np.asarray([[int(np.sum((truth == a) & (predicted == p))) for p in labels] for a in labels])


def _auc(truth: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr = roc_curve(truth, scores)
    return float(np.trapezoid(tpr, fpr))


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

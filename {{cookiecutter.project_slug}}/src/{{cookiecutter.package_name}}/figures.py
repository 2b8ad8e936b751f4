"""PNG figures of the evaluation plots, for the report and the model card, drawn from the CSVs `evaluate` writes.

`report` draws them, outside `dvc repro`: matplotlib would cost `evaluate` more than all its metrics, and only the
report shows the pictures (`dvc plots show` renders the same CSVs itself).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import confusion_matrix, positive_label

FIGURES_DIR = Path("artifacts/figures")


class FigureError(Exception):
    """A plot's data file is missing or unreadable (run `dvc repro`)."""


def draw(plots: Path, out: Path, classes: Sequence[str] | None, positive: str | None) -> list[Path]:
    """Draw the PNGs of the task (classes None: regression) from the CSVs in ``plots`` into ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    if not classes:
        data = read_csv(plots / "predictions.csv")
        actual, predicted, residual = (data[c].astype(np.float64) for c in ("actual", "predicted", "residual"))
        return [_predicted_vs_actual(actual, predicted, out), _residuals(predicted, residual, out)]
    about = f"positive class {positive_label(classes, positive)}" if len(classes) == 2 else "micro-average"
    confusion = read_csv(plots / "confusion.csv")
    drawn = [_confusion(confusion["actual"], confusion["predicted"], classes, out / "confusion_matrix.png")]
    for name, (x, y, title) in {
        "roc": ("fpr", "tpr", "ROC curve"),
        "pr": ("recall", "precision", "Precision-recall curve"),
    }.items():
        curve = read_csv(plots / f"{name}.csv")
        fig, ax = _figure(figsize=(5, 4))
        ax.plot(curve[x].astype(np.float64), curve[y].astype(np.float64))
        ax.set(xlabel=x, ylabel=y, title=f"{title} ({about})", xlim=(0, 1), ylim=(0, 1.02))
        drawn.append(_save(fig, out / f"{name}.png"))
    return drawn


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """A CSV with a header as columns of text."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as err:
        raise FigureError(f"{path} cannot be read ({err.strerror}): run `dvc repro`") from None
    if not rows:
        raise FigureError(f"{path} is empty: run `dvc repro`")
    header, body = rows[0], rows[1:]
    return {name: np.asarray([row[i] for row in body], dtype=object) for i, name in enumerate(header)}


def _predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, out: Path) -> Path:
    fig, ax = _figure(figsize=(5, 5))
    ax.scatter(actual, predicted, s=12, alpha=0.7)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    return _save(fig, out / "predicted_vs_actual.png")


def _residuals(predicted: np.ndarray, residual: np.ndarray, out: Path) -> Path:
    fig, ax = _figure(figsize=(5, 4))
    ax.scatter(predicted, residual, s=12, alpha=0.7)
    ax.axhline(0, color="grey", linewidth=1)
    ax.set(xlabel="predicted", ylabel="residual (predicted - actual)", title="Residuals")
    return _save(fig, out / "residuals.png")


def _confusion(actual: np.ndarray, predicted: np.ndarray, classes: Sequence[str], path: Path) -> Path:
    matrix = confusion_matrix(actual, predicted, labels=list(classes))
    fig, ax = _figure(figsize=(4 + 0.4 * len(classes), 4 + 0.4 * len(classes)))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(classes))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=classes, yticklabels=classes)
    ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    return _save(fig, path, left=0.25)


def _figure(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure on an Agg canvas, without pyplot: no global state, no GUI backend, a faster import."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Any, path: Path, left: float = 0.16) -> Path:
    # Fixed margins rather than tight_layout, which measures every label and costs more than the drawing.
    fig.subplots_adjust(left=left, bottom=0.13, right=0.96, top=0.9)
    # No timestamp or version in the PNG: the bytes stay identical from run to run.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    return path

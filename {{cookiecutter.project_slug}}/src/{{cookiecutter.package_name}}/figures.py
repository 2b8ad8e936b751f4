"""The evaluation plots for the report, from the CSVs `evaluate` writes: PNGs, and Markdown a PR comment can show.

`report` draws them, outside `dvc repro`: matplotlib would cost `evaluate` more than all its metrics, and only the
report shows the pictures (`dvc plots show` renders the same CSVs itself). A PR comment cannot show a PNG from the
run's artifacts, so the report embeds the same plots as mermaid charts and a confusion table, which GitHub renders.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import confusion_matrix, positive_label

GRID = np.linspace(0.0, 1.0, 21)  # mermaid spaces a line's points evenly: curves are resampled on this grid
RESIDUAL_BINS = 10


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


def markdown(plots: Path, classes: Sequence[str] | None, positive: str | None) -> list[str]:
    """The plots as Markdown: ROC and precision-recall as mermaid line charts and the confusion matrix as a table
    (classification), or a histogram of the residuals (regression)."""
    if not classes:
        data = read_csv(plots / "predictions.csv")
        counts, edges = np.histogram(data["residual"].astype(np.float64), bins=RESIDUAL_BINS)
        centres = ", ".join(f"{(a + b) / 2:.3g}" for a, b in itertools.pairwise(edges))
        return _chart("Residuals (predicted - actual)", f'x-axis "residual" [{centres}]', "count", "bar", counts)
    about = f"positive class {positive_label(classes, positive)}" if len(classes) == 2 else "micro-average"
    roc, pr, confusion = (read_csv(plots / f"{n}.csv") for n in ("roc", "pr", "confusion"))
    matrix = confusion_matrix(confusion["actual"], confusion["predicted"], labels=list(classes))
    names = [c.replace("|", "\\|") for c in classes]  # a label must not end a table cell
    table = ["| actual \\ predicted | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    table += [f"| **{c}** | " + " | ".join(str(n) for n in row) + " |" for c, row in zip(names, matrix, strict=True)]
    return [
        *_chart(f"ROC curve ({about})", 'x-axis "fpr" 0 --> 1', "tpr", "line", roc_on_grid(roc)),
        "",
        *_chart(f"Precision-recall ({about})", 'x-axis "recall" 0 --> 1', "precision", "line", pr_on_grid(pr)),
        "",
        *table,
    ]


def roc_on_grid(roc: dict[str, np.ndarray]) -> np.ndarray:
    """True positive rate at each false positive rate of GRID: the best point reachable at or below it."""
    fpr, tpr = roc["fpr"].astype(np.float64), roc["tpr"].astype(np.float64)
    return np.asarray([tpr[fpr <= x + 1e-12].max(initial=0.0) for x in GRID])


def pr_on_grid(pr: dict[str, np.ndarray]) -> np.ndarray:
    """Interpolated precision at each recall of GRID: the best precision at that recall or more."""
    recall, precision = pr["recall"].astype(np.float64), pr["precision"].astype(np.float64)
    return np.asarray([precision[recall >= x - 1e-12].max(initial=0.0) for x in GRID])


def _chart(title: str, x_axis: str, y_title: str, kind: str, values: np.ndarray) -> list[str]:
    top = 1 if kind == "line" else int(values.max(initial=0)) or 1
    shown = ", ".join(f"{v:.3g}" if kind == "line" else str(int(v)) for v in values)
    return [
        "```mermaid",
        "xychart-beta",
        f'  title "{title.replace(chr(34), chr(39))}"',  # a label's double quote would end mermaid's string
        f"  {x_axis}",
        f'  y-axis "{y_title}" 0 --> {top}',
        f"  {kind} [{shown}]",
        "```",
    ]


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

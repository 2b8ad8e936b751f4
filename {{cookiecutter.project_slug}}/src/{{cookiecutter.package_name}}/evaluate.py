"""`evaluate`: score the trained artifact on the test split: metrics.json (overall and per slice) and plots."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .artifact import ArtifactError, Predictor, load_predictor
from .config import ModelConfig
from .data import DataError, allowed_values, check, format_table, label, read_frame, split, write_json
from .metrics import Scored, compute_all, positive_label, task_metrics

if TYPE_CHECKING:
    import pandas as pd

MODEL_DIR = Path("artifacts/model")
METRICS_FILE = Path("artifacts/metrics.json")
PLOTS_DIR = Path("artifacts/plots")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="artifact folder to evaluate")
    parser.add_argument("--out", type=Path, default=METRICS_FILE, help="metrics file to write")
    parser.add_argument("--plots", type=Path, default=PLOTS_DIR, help="folder for plot images and data")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        test = held_out_rows(config)
        predictor = load_predictor(config.path(args.model))
    except (ArtifactError, DataError) as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 1
    scored = score(config, predictor, test)
    document = {
        "task": config.model.task,
        "rows": len(test),
        "metrics": compute_all(task_metrics(config.model.task), scored),
        "slices": slice_metrics(config, scored, test),
        "model": {"estimator": predictor.metadata["estimator"], "version": predictor.metadata["version"]},
        "lineage": predictor.metadata["lineage"],
    }
    write_plots(config.path(args.plots), scored)
    write_json(config.path(args.out), document)
    shown = ", ".join(f"{k}={_fmt(document['metrics'][k])}" for k in config.evaluation.metrics)
    print(f"evaluate: {len(test)} test rows: {shown} ({time.perf_counter() - started:.1f}s)")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def held_out_rows(config: ModelConfig) -> pd.DataFrame:
    """The test split of the current data; DataError if the data breaks the contract (nothing is scored then)."""
    frame = read_frame(config)
    violations = check(config, frame)
    if violations:
        raise DataError(f"{config.data.path} breaks the data contract:\n{format_table(violations)}")
    _, test = split(config, frame)
    return test


def score(config: ModelConfig, predictor: Predictor, rows: pd.DataFrame) -> Scored:
    """Predict ``rows`` with ``predictor``; the truth comes from the current data, never from the artifact."""
    predictions, probabilities = predictor.predict_frame(rows)
    truth = rows[config.data.target]
    if config.model.task == "regression":
        return Scored(truth.to_numpy(dtype=np.float64), np.asarray(predictions, dtype=np.float64))
    classes = tuple(str(c) for c in predictor.classes or ())
    positive = config.data.positive_class
    return Scored(
        np.asarray([label(v) for v in truth], dtype=object),
        np.asarray([str(p) for p in predictions], dtype=object),
        probabilities,
        classes,
        positive_label(classes, None if positive is None else label(positive)),
    )


def slice_values(config: ModelConfig, rows: pd.DataFrame, name: str) -> list[tuple[str, np.ndarray]]:
    """(value, row indices) for every value the contract allows in the slice column, in contract order."""
    column = rows[name].astype(object).map(label, na_action="ignore").to_numpy()
    return [(value, np.flatnonzero(column == value)) for value in allowed_values(config.feature[name])]


def slice_metrics(config: ModelConfig, scored: Scored, rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in config.evaluation.slices:
        out[name] = {
            value: {"rows": len(index), **compute_all(task_metrics(config.model.task), scored.take(index))}
            for value, index in slice_values(config, rows, name)
        }
    return out


def write_plots(folder: Path, s: Scored) -> None:
    """PNG images (matplotlib's Agg canvas) and the CSV data DVC plots from (see dvc.yaml)."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    if not s.classes:
        residual = s.y_pred - s.y_true
        pd.DataFrame({"actual": s.y_true, "predicted": s.y_pred, "residual": residual}).to_csv(
            folder / "predictions.csv", index=False
        )
        fig, ax = _figure(figsize=(5, 5))
        ax.scatter(s.y_true, s.y_pred, s=12, alpha=0.7)
        low, high = float(min(s.y_true.min(), s.y_pred.min())), float(max(s.y_true.max(), s.y_pred.max()))
        ax.plot([low, high], [low, high], color="grey", linewidth=1)
        ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
        _save(fig, folder / "predicted_vs_actual.png")
        fig, ax = _figure(figsize=(5, 4))
        ax.scatter(s.y_pred, residual, s=12, alpha=0.7)
        ax.axhline(0, color="grey", linewidth=1)
        ax.set(xlabel="predicted", ylabel="residual (predicted - actual)", title="Residuals")
        _save(fig, folder / "residuals.png")
        return
    pd.DataFrame({"actual": s.y_true, "predicted": s.y_pred}).to_csv(folder / "confusion.csv", index=False)
    _confusion_png(s, folder / "confusion_matrix.png")
    curves = curve_data(s)
    pd.DataFrame({"fpr": curves["fpr"], "tpr": curves["tpr"]}).to_csv(folder / "roc.csv", index=False)
    pd.DataFrame({"recall": curves["recall"], "precision": curves["precision"]}).to_csv(folder / "pr.csv", index=False)
    for name, (x, y, title) in {
        "roc.png": ("fpr", "tpr", "ROC curve"),
        "pr.png": ("recall", "precision", "Precision-recall curve"),
    }.items():
        fig, ax = _figure(figsize=(5, 4))
        ax.plot(curves[x], curves[y])
        ax.set(xlabel=x, ylabel=y, title=f"{title} ({curves['about']})", xlim=(0, 1), ylim=(0, 1.02))
        _save(fig, folder / name)


def curve_data(s: Scored) -> dict[str, Any]:
    """ROC and PR points: of the positive class (binary), or micro-averaged over one-vs-rest (multiclass)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    assert s.proba is not None  # classification always has probabilities here
    if s.positive is not None:
        truth = s.y_true == s.positive
        scores = s.proba[:, list(s.classes).index(s.positive)]
        about = f"positive class {s.positive}"
    else:
        truth = (s.y_true[:, None] == np.asarray(s.classes, dtype=object)[None, :]).ravel()
        scores = s.proba.ravel()
        about = "micro-average"
    fpr, tpr, _ = roc_curve(truth, scores)
    precision, recall, _ = precision_recall_curve(truth, scores)
    return {"fpr": fpr, "tpr": tpr, "precision": precision, "recall": recall, "about": about}


def _confusion_png(s: Scored, path: Path) -> None:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(s.y_true, s.y_pred, labels=list(s.classes))
    fig, ax = _figure(figsize=(4 + 0.4 * len(s.classes), 4 + 0.4 * len(s.classes)))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(s.classes))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=s.classes, yticklabels=s.classes)
    ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    _save(fig, path, left=0.25)


def _figure(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure on an Agg canvas, without pyplot: no global state, no GUI backend, a faster import."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Any, path: Path, left: float = 0.16) -> None:
    # Fixed margins rather than tight_layout, which measures every label and costs more than the drawing.
    fig.subplots_adjust(left=left, bottom=0.13, right=0.96, top=0.9)
    # No timestamp or version in the PNG: the bytes stay identical from run to run.
    fig.savefig(path, dpi=100, metadata={"Software": None})

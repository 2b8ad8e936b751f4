"""`evaluate`: metrics.json (overall and per slice) and plot data of the trained artifact on the test split.

`train` scores the test rows with the artifact as saved (reloaded and sha256-verified) into test_scores.json, while
the model's libraries are loaded anyway; evaluate computes everything from those scores after checking that they
belong to this artifact and this data file, so it loads neither the model nor the data.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .artifact import METADATA, ArtifactError, Predictor, load_metadata, sha256_file
from .config import ModelConfig
from .data import DataError, allowed_values, file_md5, label, read_checked_frame, split, write_json
from .metrics import (
    Scored,
    compute_all,
    positive_label,
    precision_recall_curve,
    roc_curve,
    task_metrics,
)

if TYPE_CHECKING:
    import pandas as pd

MODEL_DIR = Path("artifacts/model")
METRICS_FILE = Path("artifacts/metrics.json")
PLOTS_DIR = Path("artifacts/plots")
SCORES_FILE = Path("artifacts/test_scores.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="artifact folder to evaluate")
    parser.add_argument("--scores", type=Path, default=SCORES_FILE, help="test-split scores train wrote")
    parser.add_argument("--out", type=Path, default=METRICS_FILE, help="metrics file to write")
    parser.add_argument("--plots", type=Path, default=PLOTS_DIR, help="folder for the plot data (CSV)")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        try:
            metadata, scored, columns = load_test_scores(config, config.path(args.scores), config.path(args.model))
        except ArtifactError:
            held_out_rows(config)  # data that breaks the contract explains it better: raises with its table
            raise
    except (ArtifactError, DataError) as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 1
    document = {
        "task": config.model.task,
        "rows": len(scored),
        "metrics": compute_all(task_metrics(config.model.task), scored),
        "slices": slice_metrics(config, scored, columns),
        "model": {"estimator": metadata["estimator"], "version": metadata["version"]},
        "lineage": metadata["lineage"],
    }
    write_plots(config.path(args.plots), scored)
    write_json(config.path(args.out), document)
    shown = ", ".join(f"{k}={_fmt(document['metrics'][k])}" for k in config.evaluation.metrics)
    print(f"evaluate: {len(scored)} test rows: {shown} ({time.perf_counter() - started:.1f}s)")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def held_out_rows(config: ModelConfig) -> pd.DataFrame:
    """The test split of the current data; DataError if the data breaks the contract (nothing is scored then)."""
    _, test = split(config, read_checked_frame(config))
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


def write_test_scores(
    config: ModelConfig, predictor: Predictor, model_dir: Path, rows: pd.DataFrame, path: Path
) -> None:
    """Score ``rows`` with ``predictor``, the artifact in ``model_dir`` as saved (reloaded, verified), and write what
    evaluate needs: truth, predictions, probabilities, the categorical columns (for slices), and which artifact and
    data made them."""
    scored = score(config, predictor, rows)
    document = {
        "model_metadata_sha256": sha256_file(model_dir / METADATA),
        "data_md5": file_md5(config.path(config.data.path)),
        "classes": list(scored.classes),
        "positive": scored.positive,
        "y_true": scored.y_true.tolist(),
        "y_pred": scored.y_pred.tolist(),
        "proba": None if scored.proba is None else scored.proba.tolist(),
        "columns": {
            f.name: [None if v != v else v for v in label_column(rows, f.name).tolist()]  # NaN (missing) -> null
            for f in config.data.features
            if f.is_categorical
        },
    }
    write_json(path, document)


def load_test_scores(
    config: ModelConfig, path: Path, model_dir: Path
) -> tuple[dict[str, Any], Scored, dict[str, np.ndarray]]:
    """(artifact metadata, scores, categorical columns) from ``path``; ArtifactError unless train wrote them from
    the artifact in ``model_dir`` (every file's sha256 checked) and the current data file."""
    metadata = load_metadata(model_dir)
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist: run train")
    document = json.loads(path.read_text())
    if document.get("model_metadata_sha256") != sha256_file(model_dir / METADATA):
        raise ArtifactError(f"{path} was not written for the artifact in {model_dir}: run train")
    if document.get("data_md5") != file_md5(config.path(config.data.path)):
        raise ArtifactError(f"{path} was written from another version of {config.data.path}: run train")
    if config.model.task == "regression":
        scored = Scored(np.asarray(document["y_true"], dtype=np.float64), np.asarray(document["y_pred"], np.float64))
    else:
        scored = Scored(
            np.asarray(document["y_true"], dtype=object),
            np.asarray(document["y_pred"], dtype=object),
            np.asarray(document["proba"], dtype=np.float64),
            tuple(document["classes"]),
            document["positive"],
        )
    columns = {name: np.asarray(values, dtype=object) for name, values in document["columns"].items()}
    return metadata, scored, columns


def label_column(rows: pd.DataFrame, name: str) -> np.ndarray:
    """A categorical column as labels (missing stays missing)."""
    return rows[name].astype(object).map(label, na_action="ignore").to_numpy()


def slice_values(config: ModelConfig, rows: pd.DataFrame, name: str) -> list[tuple[str, np.ndarray]]:
    """(value, row indices) for every value the contract allows in the slice column, in contract order."""
    return slice_index(config, name, label_column(rows, name))


def slice_index(config: ModelConfig, name: str, column: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [(value, np.flatnonzero(column == value)) for value in allowed_values(config.feature[name])]


def slice_metrics(config: ModelConfig, scored: Scored, columns: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in config.evaluation.slices:
        out[name] = {
            value: {"rows": len(index), **compute_all(task_metrics(config.model.task), scored.take(index))}
            for value, index in slice_index(config, name, columns[name])
        }
    return out


def write_plots(folder: Path, s: Scored) -> None:
    """The CSV data DVC plots from (see dvc.yaml); `report` draws the same plots as PNG (figures.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not s.classes:
        residual = s.y_pred - s.y_true
        write_csv(folder / "predictions.csv", {"actual": s.y_true, "predicted": s.y_pred, "residual": residual})
        return
    write_csv(folder / "confusion.csv", {"actual": s.y_true, "predicted": s.y_pred})
    curves = curve_data(s)
    write_csv(folder / "roc.csv", {"fpr": curves["fpr"], "tpr": curves["tpr"]})
    write_csv(folder / "pr.csv", {"recall": curves["recall"], "precision": curves["precision"]})


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Equal-length columns as CSV with a header (the csv module: pandas would cost an import for a few rows)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*(np.asarray(c).tolist() for c in columns.values()), strict=True))


def curve_data(s: Scored) -> dict[str, Any]:
    """ROC and PR points: of the positive class (binary), or micro-averaged over one-vs-rest (multiclass)."""
    assert s.proba is not None  # classification always has probabilities here
    if s.positive is not None:
        truth = s.y_true == s.positive
        scores = s.proba[:, list(s.classes).index(s.positive)]
    else:
        truth = (s.y_true[:, None] == np.asarray(s.classes, dtype=object)[None, :]).ravel()
        scores = s.proba.ravel()
    fpr, tpr = roc_curve(truth, scores)
    precision, recall = precision_recall_curve(truth, scores)
    return {"fpr": fpr, "tpr": tpr, "precision": precision, "recall": recall}

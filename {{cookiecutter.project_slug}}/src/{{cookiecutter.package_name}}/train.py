"""`train`: check the data contract, fit the estimator model.yaml names, save the artifact (skops / .keras), score
the test split with it and export the serving runtime from it, all in the one process that has the libraries loaded."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .artifact import load_predictor, save_artifact
from .config import ModelConfig
from .data import DataError, label, read_checked_frame, split
from .evaluate import SCORES_FILE, write_test_scores
from .export import RUNTIME_DIR, export_runtime
from .features import build_preprocessor, model_frame
from .lineage import lineage
from .profile import write_training_profile

if TYPE_CHECKING:
    import pandas as pd

MODEL_DIR = Path("artifacts/model")
HAS_RANDOM_STATE = frozenset(
    {
        "LogisticRegression",
        "RidgeClassifier",
        "RandomForestClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "Ridge",
        "RandomForestRegressor",
        "GradientBoostingRegressor",
        "HistGradientBoostingRegressor",
    }
)


def _ridge_classifier(**params: Any) -> Any:
    """RidgeClassifier has no predict_proba: calibrate its decision function (sigmoid, 5-fold, one final model)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import RidgeClassifier

    return CalibratedClassifierCV(RidgeClassifier(**params), method="sigmoid", cv=5, ensemble=False)


def _sklearn(module: str, name: str) -> Callable[..., Any]:
    def make(**params: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(**params)

    return make


# The allow-list, literally: an estimator name from model.yaml maps to one of these and nothing else.
SKLEARN_ESTIMATORS: Mapping[str, Callable[..., Any]] = {
    "LogisticRegression": _sklearn("sklearn.linear_model", "LogisticRegression"),
    "RidgeClassifier": _ridge_classifier,
    "RandomForestClassifier": _sklearn("sklearn.ensemble", "RandomForestClassifier"),
    "GradientBoostingClassifier": _sklearn("sklearn.ensemble", "GradientBoostingClassifier"),
    "HistGradientBoostingClassifier": _sklearn("sklearn.ensemble", "HistGradientBoostingClassifier"),
    "LinearRegression": _sklearn("sklearn.linear_model", "LinearRegression"),
    "Ridge": _sklearn("sklearn.linear_model", "Ridge"),
    "RandomForestRegressor": _sklearn("sklearn.ensemble", "RandomForestRegressor"),
    "GradientBoostingRegressor": _sklearn("sklearn.ensemble", "GradientBoostingRegressor"),
    "HistGradientBoostingRegressor": _sklearn("sklearn.ensemble", "HistGradientBoostingRegressor"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="artifact folder (replaced as a whole)")
    parser.add_argument("--scores", type=Path, default=SCORES_FILE, help="test-split scores of the saved artifact")
    parser.add_argument("--runtime", type=Path, default=RUNTIME_DIR, help="serving runtime exported from the artifact")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        frame = read_checked_frame(config)
    except DataError as err:
        print(f"train: refusing to train: {err}", file=sys.stderr)
        return 1
    train_rows, test_rows = split(config, frame)
    seed_everything(config.training.seed)
    m = config.model
    print(f"train: {m.framework} {m.estimator} ({m.task}) on {len(train_rows)} rows", flush=True)
    out = config.path(args.out)
    metadata = artifact_metadata(config, lineage(config))
    if m.framework == "sklearn":
        pipeline = fit_sklearn(config, train_rows)
        classes = [str(c) for c in pipeline.classes_] if m.task == "classification" else None
        save_artifact(out, metadata={**metadata, "classes": classes}, features=config.data.features, pipeline=pipeline)
    else:
        from .keras_model import fit_keras

        preprocess, keras_model, classes = fit_keras(config, train_rows)
        save_artifact(
            out,
            metadata={**metadata, "classes": classes},
            features=config.data.features,
            preprocess=preprocess,
            keras_model=keras_model,
        )
    saved = load_predictor(out)  # the artifact as written, every file's sha256 checked: what serving will load
    write_training_profile(config, saved, out, train_rows)  # the monitor's reference, versioned with the model
    # The libraries are loaded now: scoring the test rows and exporting the runtime here spares two more processes
    # importing them again (skops's trust list imports every scikit-learn estimator module; TensorFlow takes seconds).
    write_test_scores(config, saved, out, test_rows, config.path(args.scores))
    exported = export_runtime(config, out, config.path(args.runtime), shown=args.runtime)
    print(f"train: saved {args.out}, {args.scores} and {args.runtime} in {time.perf_counter() - started:.1f}s")
    return exported


def seed_everything(seed: int) -> None:
    """Python, numpy and (when loaded) TensorFlow from training.seed."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def build_estimator(config: ModelConfig) -> Any:
    params = dict(config.model.params)
    if config.model.estimator in HAS_RANDOM_STATE:
        params.setdefault("random_state", config.training.seed)
    return SKLEARN_ESTIMATORS[config.model.estimator](**params)


def fit_sklearn(config: ModelConfig, rows: pd.DataFrame) -> Any:
    """Pipeline(preprocess -> model) fitted on raw rows, so the saved artifact takes raw rows too."""
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline([("preprocess", build_preprocessor(config.data.features)), ("model", build_estimator(config))])
    pipeline.fit(model_frame(rows, config.data.features), target_values(config, rows))
    return pipeline


def target_values(config: ModelConfig, rows: pd.DataFrame) -> np.ndarray:
    column = rows[config.data.target]
    if config.model.task == "classification":
        return np.asarray([label(v) for v in column], dtype=object)
    return column.to_numpy(dtype=np.float64)


def artifact_metadata(config: ModelConfig, lineage_triple: Mapping[str, str]) -> dict[str, Any]:
    positive = config.data.positive_class
    return {
        "name": config.metadata.name,
        "version": config.metadata.version,
        "framework": config.model.framework,
        "task": config.model.task,
        "estimator": config.model.estimator,
        "target": config.data.target,
        "positive_class": None if positive is None else label(positive),
        "lineage": dict(lineage_triple),
    }

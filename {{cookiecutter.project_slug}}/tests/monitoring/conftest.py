"""Synthetic traffic for the monitoring tests: a small stand-in model, its reference profile and logged requests.

The monitor only sees logged features and predictions, so a quick scikit-learn fit stands in for the trained
model of either framework; the logs are written by the real PredictionLogger.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import ModelConfig
from {{ cookiecutter.package_name }}.prediction_log import PredictionLogger
from {{ cookiecutter.package_name }}.profile import build_profile, write_profile

Predict = Callable[[pd.DataFrame], tuple[list[Any], list[dict[str, float]] | None]]


@pytest.fixture(scope="session")
def data(config: ModelConfig) -> pd.DataFrame:
    return pd.read_csv(
        config.path(config.data.path), dtype={f.name: str for f in config.data.features if f.is_categorical}
    )


@pytest.fixture(scope="session")
def predict(config: ModelConfig, data: pd.DataFrame) -> Predict:
    """A linear model on the numeric features (the monitor does not care which model made the predictions)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    numeric = [f.name for f in config.data.features if not f.is_categorical]
    y = data[config.data.target]
    if config.model.task == "classification":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data[numeric], y)

        def classify(frame: pd.DataFrame) -> tuple[list[Any], list[dict[str, float]] | None]:
            proba = model.predict_proba(frame[numeric].astype(float).fillna(0.0))
            classes = [str(c) for c in model.classes_]
            return [classes[i] for i in proba.argmax(axis=1)], [dict(zip(classes, row, strict=True)) for row in proba]

        return classify
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(data[numeric], y)
    return lambda frame: (model.predict(frame[numeric].astype(float).fillna(0.0)).tolist(), None)


@pytest.fixture(scope="session")
def profile_path(
    config: ModelConfig, data: pd.DataFrame, predict: Predict, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    predictions, probabilities = predict(data)
    return write_profile(build_profile(config, data, predictions, probabilities), tmp_path_factory.mktemp("model"))


class Traffic:
    """Makes synthetic traffic and logs it through the real PredictionLogger."""

    def __init__(self, config: ModelConfig, data: pd.DataFrame, predict: Predict) -> None:
        self.config, self.data, self.predict = config, data, predict
        self.number = next(f.name for f in config.data.features if f.type in ("number", "integer"))
        self.category = next(f.name for f in config.data.features if f.type == "category")

    def sample(self, rows: int, seed: int) -> pd.DataFrame:
        """Traffic from the training distribution: rows drawn with replacement."""
        return self.data.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)

    def log(
        self, frame: pd.DataFrame, path: Path, batch: int = 5, config: ModelConfig | None = None
    ) -> list[tuple[str, int]]:
        """Send ``frame`` in requests of ``batch`` rows through the logger (rate 1.0); return (request_id, row) keys."""
        config = config or self.config
        fields = [f.name for f in config.data.features if not f.pii]
        logger = PredictionLogger(1.0, str(path), config.metadata.version, fields)
        keys = []
        with logger:
            for start in range(0, len(frame), batch):
                chunk = frame.iloc[start : start + batch]
                predictions, probabilities = self.predict(chunk)
                request_id = f"req-{start}"
                logger.log(request_id, self.columns(chunk), predictions, probabilities)
                keys += [(request_id, i) for i in range(len(chunk))]
        assert logger.dropped == 0
        return keys

    def labels(self, frame: pd.DataFrame, keys: list[tuple[str, int]], path: Path, noise: float = 0.0) -> Path:
        """Ground truth for logged rows as CSV; a ``noise`` share of it is wrong (flipped class, or another row's)."""
        truth = frame[self.config.data.target].to_numpy(copy=True)
        rng = np.random.default_rng(7)
        wrong = rng.random(len(truth)) < noise
        if self.config.model.task == "classification":
            classes = sorted(set(truth))
            truth[wrong] = [classes[1 - classes.index(t)] for t in truth[wrong]]
        else:
            truth[wrong] = rng.permutation(truth[wrong])
        out = pd.DataFrame(
            {"request_id": [k[0] for k in keys], "row": [k[1] for k in keys], self.config.data.target: truth}
        )
        out.to_csv(path, index=False)
        return path

    @staticmethod
    def columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
        """Columns as the server hands them to the logger: JSON values, missing as null."""
        rows = json.loads(frame.to_json(orient="records"))
        return {name: [row[name] for row in rows] for name in frame.columns}

    def shift(self, frame: pd.DataFrame, column: str, by_std: float) -> pd.DataFrame:
        out = frame.copy()
        out[column] = out[column] + by_std * self.data[column].std()
        return out

    def replace(self, frame: pd.DataFrame, column: str, share: float, value: Any) -> pd.DataFrame:
        """Set ``share`` of the rows of ``column`` to ``value`` (a new category, or None for nulls)."""
        out = frame.copy()
        picked = np.random.default_rng(3).random(len(out)) < share
        out[column] = out[column].astype(object)
        out.loc[picked, column] = value
        return out


@pytest.fixture(scope="session")
def traffic(config: ModelConfig, data: pd.DataFrame, predict: Predict) -> Traffic:
    return Traffic(config, data, predict)

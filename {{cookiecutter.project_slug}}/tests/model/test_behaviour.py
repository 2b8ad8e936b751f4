"""The trained model's behaviour: it beats a trivial baseline, ignores what it should, and moves the right way.

Uses the shipped model.yaml trained once per session on the shipped data (marked slow: it fits real models).
"""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.artifact import Predictor, load_predictor, save_artifact
from {{ cookiecutter.package_name }}.config import ESTIMATORS, ModelConfig, load_config
from {{ cookiecutter.package_name }}.data import read_frame, split
from {{ cookiecutter.package_name }}.features import model_frame
from {{ cookiecutter.package_name }}.lineage import lineage
from {{ cookiecutter.package_name }}.train import artifact_metadata, fit_sklearn

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
{%- if cookiecutter.task == 'classification' %}
# More concave nuclei -> more likely malignant (the positive class).
DIRECTIONAL_FEATURE = "concave_points_mean"
{%- else %}
# A higher body mass index -> more disease progression predicted.
DIRECTIONAL_FEATURE = "bmi"
{%- endif %}


@pytest.fixture(scope="module")
def trained(config: ModelConfig, artifacts: Path) -> tuple[ModelConfig, Predictor]:
    """The shipped model as `train` saved it (tests/conftest.py), loaded back."""
    return config, load_predictor(artifacts / "model")


@pytest.fixture(scope="module")
def held_out(trained: tuple[ModelConfig, Predictor]) -> pd.DataFrame:
    config, _ = trained
    return split(config, read_frame(config))[1]


def outputs(predictor: Predictor, frame: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (classification) or the prediction (regression)."""
    predictions, probabilities = predictor.predict_frame(frame)
    if probabilities is None:
        return predictions
    positive = predictor.metadata["positive_class"] or predictor.classes[-1]
    return probabilities[:, predictor.classes.index(positive)]


def test_beats_the_trivial_baseline(trained: tuple[ModelConfig, Predictor], held_out: pd.DataFrame) -> None:
    config, predictor = trained
    predictions, _ = predictor.predict_frame(held_out)
    truth = held_out[config.data.target].to_numpy()
    if config.model.task == "classification":
        majority = pd.Series(truth).value_counts(normalize=True).iloc[0]
        assert np.mean(predictions == truth) > majority + 0.1
    else:
        baseline = np.mean(np.abs(truth - truth.mean()))
        assert np.mean(np.abs(predictions - truth)) < 0.9 * baseline


def test_probabilities_are_distributions(trained: tuple[ModelConfig, Predictor], held_out: pd.DataFrame) -> None:
    _, predictor = trained
    _, probabilities = predictor.predict_frame(held_out)
    if probabilities is not None:
        assert probabilities.shape == (len(held_out), len(predictor.classes))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_row_order_and_batching_do_not_matter(trained: tuple[ModelConfig, Predictor], held_out: pd.DataFrame) -> None:
    _, predictor = trained
    whole = outputs(predictor, held_out)
    shuffled = held_out.sample(frac=1.0, random_state=0)
    np.testing.assert_allclose(
        outputs(predictor, shuffled), pd.Series(whole, index=held_out.index)[shuffled.index], rtol=1e-5
    )
    one_by_one = np.concatenate([outputs(predictor, held_out.iloc[[i]]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, whole[:5], rtol=1e-5)


def test_extra_columns_and_the_target_are_ignored(
    trained: tuple[ModelConfig, Predictor], held_out: pd.DataFrame
) -> None:
    config, predictor = trained
    noisy = held_out.assign(**{config.data.target: held_out[config.data.target].iloc[::-1].to_numpy(), "unused": 1})
    np.testing.assert_allclose(outputs(predictor, noisy), outputs(predictor, held_out), rtol=1e-6)


def test_unknown_category_and_missing_values_still_predict(
    trained: tuple[ModelConfig, Predictor], held_out: pd.DataFrame
) -> None:
    config, predictor = trained
    odd = held_out.head(3).copy()
    category = next(f.name for f in config.data.features if f.is_categorical)
    number = next(f.name for f in config.data.features if not f.is_categorical)
    odd[category] = ["never-seen", None, odd[category].iloc[2]]
    odd[number] = [np.nan, odd[number].iloc[1], np.nan]
    assert np.all(np.isfinite(outputs(predictor, odd)))


def test_directional_expectation(trained: tuple[ModelConfig, Predictor], held_out: pd.DataFrame) -> None:
    _, predictor = trained
    column = held_out[DIRECTIONAL_FEATURE]
    higher = held_out.assign(**{DIRECTIONAL_FEATURE: column + column.std()})
    assert np.mean(outputs(predictor, higher) - outputs(predictor, held_out)) > 0


@pytest.mark.parametrize("estimator", ESTIMATORS[("sklearn", "{{ cookiecutter.task }}")])
def test_every_allowed_estimator_trains_saves_and_loads_back(estimator: str, tmp_path: Path) -> None:
    """Each allow-listed sklearn estimator, with its defaults, round-trips through skops with the reviewed types."""
    config = load_config(ROOT / "model.yaml")
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, framework="sklearn", estimator=estimator, params={})
    )
    train_rows, test_rows = split(config, read_frame(config))
    pipeline = fit_sklearn(config, train_rows)
    classes = [str(c) for c in pipeline.classes_] if config.model.task == "classification" else None
    metadata = {**artifact_metadata(config, lineage(config)), "classes": classes}
    save_artifact(tmp_path / "model", metadata=metadata, features=config.data.features, pipeline=pipeline)
    predictor = load_predictor(tmp_path / "model")
    predictions, probabilities = predictor.predict_frame(test_rows)
    assert len(predictions) == len(test_rows)
    if classes is not None:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(predictions, pipeline.predict(model_frame(test_rows, config.data.features)))
{%- if cookiecutter.task == 'classification' %}


def test_multiclass_target_trains_and_scores(tmp_path: Path) -> None:
    """Three classes: probabilities over all three in model order, macro metrics, one-vs-rest roc_auc."""
    from {{ cookiecutter.package_name }}.metrics import Scored, compute_all

    config = load_config(ROOT / "model.yaml")
    frame = read_frame(config)
    target = config.data.target
    frame[target] = np.where(frame["area_mean"] > frame["area_mean"].median(), frame[target], "unsure")
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, positive_class=None),
        training=dataclasses.replace(config.training, epochs=min(config.training.epochs, 30)),
    )
    train_rows, test_rows = split(config, frame)
    metadata = artifact_metadata(config, lineage(config))
    if config.model.framework == "sklearn":
        pipeline = fit_sklearn(config, train_rows)
        classes = [str(c) for c in pipeline.classes_]
        save_artifact(
            tmp_path / "model",
            metadata={**metadata, "classes": classes},
            features=config.data.features,
            pipeline=pipeline,
        )
    else:
        from {{ cookiecutter.package_name }}.keras_model import fit_keras

        preprocess, model, classes = fit_keras(config, train_rows)
        save_artifact(
            tmp_path / "model",
            metadata={**metadata, "classes": classes},
            features=config.data.features,
            preprocess=preprocess,
            keras_model=model,
        )
    predictor = load_predictor(tmp_path / "model")
    labels, probabilities = predictor.predict_frame(test_rows)
    assert predictor.classes == ["benign", "malignant", "unsure"]
    assert probabilities.shape == (len(test_rows), 3)
    truth = np.asarray(test_rows[target], dtype=object)
    values = compute_all(
        ["accuracy", "f1", "roc_auc", "log_loss"], Scored(truth, labels, probabilities, tuple(classes))
    )
    assert all(value is not None for value in values.values())
    assert values["roc_auc"] > 0.8
{%- endif %}

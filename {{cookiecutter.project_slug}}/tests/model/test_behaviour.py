"""The trained model's behaviour: it beats a trivial baseline, ignores what it should, and moves the right way.

Trains the shipped model.yaml once per module on the shipped data (marked slow: it fits a real model).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.artifact import Predictor, load_predictor
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ModelConfig, load_config
from {{ cookiecutter.package_name }}.data import read_frame, split

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
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelConfig, Predictor]:
    import shutil

    scratch = tmp_path_factory.mktemp("model")
    for part in ("model.yaml", "schemas", "data"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, scratch / part, ignore=shutil.ignore_patterns("*.dvc", ".gitignore"))
        else:
            shutil.copy(source, scratch / part)
    assert main(["--config", str(scratch / "model.yaml"), "train"]) == 0
    return load_config(scratch / "model.yaml"), load_predictor(scratch / "artifacts/model")


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

"""The reference profile: histograms, frequencies and null shares of the training data, and PSI on them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.profile import (
    ProfileError,
    bin_counts,
    build_profile,
    load_profile,
    psi,
    quantile_edges,
    write_profile,
)


def test_bins_are_closed_on_the_right_and_cover_everything() -> None:
    assert bin_counts([1.0, 2.0], np.array([0.5, 1.0, 1.5, 2.0, 9.0])) == [2, 2, 1]
    assert quantile_edges(np.array([1, 1, 1, 2, 2, 3], dtype=float), 4) == [1.0, 1.5, 2.0]


def test_psi_is_zero_for_equal_shares_and_matches_the_formula() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    expected = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.5 - 0.75) * math.log(0.5 / 0.75)
    assert psi([25, 75], [50, 50]) == pytest.approx(expected)
    assert math.isfinite(psi([10, 0], [5, 5]))  # an empty reference bin is floored, not infinite


def test_profile_describes_every_feature_and_the_predictions(config, data, predict, tmp_path: Path) -> None:
    predictions, probabilities = predict(data)
    profile = load_profile(write_profile(build_profile(config, data, predictions, probabilities), tmp_path))
    assert profile["rows"] == len(data)
    assert profile["model_version"] == config.metadata.version
    assert set(profile["features"]) == set(config.data.feature_names)
    for feature in config.data.features:
        entry = profile["features"][feature.name]
        assert entry["null_rate"] == pytest.approx(data[feature.name].isna().mean())
        assert (
            sum(entry["counts"].values() if feature.is_categorical else entry["counts"])
            == data[feature.name].notna().sum()
        )
        if feature.is_categorical:
            assert set(entry["frequencies"]) <= set(feature.values)
            assert sum(entry["frequencies"].values()) == pytest.approx(1.0)
        else:
            assert entry["edges"] == sorted(entry["edges"])
            assert entry["mean"] == pytest.approx(data[feature.name].mean())
    prediction = profile["prediction"]
    if config.model.task == "classification":
        assert prediction["kind"] == "class"
        assert prediction["positive_class"] == config.data.positive_class
        assert sum(prediction["probability"]["counts"]) == len(data)
    else:
        assert prediction["kind"] == "number"
        assert sum(prediction["counts"]) == len(data)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the reference profile"), ("{", "is not JSON"), (json.dumps({"format": 0}), "format-1")],
)
def test_a_bad_profile_is_refused_with_its_path(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


@pytest.mark.slow
def test_train_writes_the_profile_beside_the_model(config, artifacts: Path) -> None:
    profile = load_profile(artifacts / "model/profile.json")
    metadata = json.loads((artifacts / "model/metadata.json").read_text())
    assert set(profile["features"]) == {f.name for f in config.data.features if not f.pii}
    assert profile["model_version"] == metadata["version"] == config.metadata.version
    predictions = profile["prediction"]
    if config.model.task == "classification":
        assert set(predictions["counts"]) <= set(metadata["classes"])
        assert sum(predictions["probability"]["counts"]) == profile["rows"]
    else:
        assert sum(predictions["counts"]) == profile["rows"]

"""The artifact contract: what is saved is what loads; a changed file or another library version is refused."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from {{ cookiecutter.package_name }}.artifact import (
    ArtifactError,
    check_library_versions,
    load_metadata,
    load_predictor,
    save_artifact,
)
from {{ cookiecutter.package_name }}.config import Feature
from {{ cookiecutter.package_name }}.features import build_preprocessor, model_frame

FEATURES = (Feature("size", "number", min=0), Feature("colour", "category", values=("red", "blue", "green")))


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.uniform(0, 10, 60), "colour": rng.choice(["red", "blue"], 60)})
    y = np.where(frame["size"] > 5, "big", "small")
    pipeline = Pipeline([("preprocess", build_preprocessor(FEATURES)), ("model", LogisticRegression())])
    pipeline.fit(model_frame(frame, FEATURES), y)
    metadata = {
        "name": "toy",
        "version": "1.0.0",
        "framework": "sklearn",
        "task": "classification",
        "estimator": "LogisticRegression",
        "target": "label",
        "classes": [str(c) for c in pipeline.classes_],
        "positive_class": "big",
        "lineage": {"git_sha": "unknown", "data_md5": "0" * 32, "model_yaml_sha256": "0" * 64},
    }
    save_artifact(tmp_path / "model", metadata=metadata, features=FEATURES, pipeline=pipeline)
    return tmp_path / "model"


def test_metadata_follows_the_contract(artifact: Path) -> None:
    metadata = load_metadata(artifact)
    assert metadata["format"] == 1
    assert set(metadata["files"]) == {"model.skops"}
    assert metadata["features"][1] == {
        "name": "colour",
        "type": "category",
        "min": None,
        "max": None,
        "values": ["red", "blue", "green"],
        "nullable": False,
        "pii": False,
    }
    assert {"python", "numpy", "scikit-learn", "skops"} <= set(metadata["library_versions"])


def test_predictor_takes_raw_rows_and_unseen_categories(artifact: Path) -> None:
    predictor = load_predictor(artifact)
    rows = pd.DataFrame({"size": [9.0, 1.0, np.nan], "colour": ["green", "red", None]})
    labels, probabilities = predictor.predict_frame(rows)
    assert predictor.classes == ["big", "small"]
    assert list(labels[:2]) == ["big", "small"]
    assert probabilities.shape == (3, 2)


def test_a_changed_file_is_refused(artifact: Path) -> None:
    with (artifact / "model.skops").open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(ArtifactError, match=r"sha256 differs from metadata\.json"):
        load_metadata(artifact)


def test_a_missing_artifact_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"no metadata\.json"):
        load_metadata(tmp_path)


def test_another_library_version_is_refused_naming_both(artifact: Path) -> None:
    metadata = json.loads((artifact / "metadata.json").read_text())
    here = metadata["library_versions"]["scikit-learn"]
    metadata["library_versions"]["scikit-learn"] = "0.1.0"
    with pytest.raises(ArtifactError, match=re.escape(f"made with scikit-learn 0.1.0, this environment has {here}")):
        check_library_versions(metadata)
    check_library_versions(metadata, only=["numpy"])


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    import skops.io as sio

    from {{ cookiecutter.package_name }}.artifact import load_skops

    path = tmp_path / "evil.skops"
    sio.dump({"f": np.random.default_rng}, path)
    with pytest.raises(ArtifactError, match="refuses to load unreviewed types"):
        load_skops(path)

"""A small trainer writing exactly the artifact layout `train` writes (artifacts/model/), for the serving tests.

It follows the artifact contract (metadata.json + model.skops, or preprocess.skops + model.keras) so the server
is tested against the same files the real pipeline produces, in seconds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MISSING = "__missing__"


def read_frame(config: Any) -> pd.DataFrame:
    dtypes = {f.name: str for f in config.data.features if f.type == "category"}
    return pd.read_csv(config.path(config.data.path), dtype=dtypes)


def column_transformer(config: Any) -> ColumnTransformer:
    numeric = [f.name for f in config.data.features if not f.is_categorical]
    categorical = [f for f in config.data.features if f.is_categorical]
    return ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
                        (
                            "onehot",
                            OneHotEncoder(
                                categories=[list(f.values) for f in categorical],
                                handle_unknown="ignore",
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                [f.name for f in categorical],
            ),
        ]
    )


def train(config: Any, out: Path, estimator: Any = None) -> Path:
    frame = read_frame(config)
    x, y = frame[list(config.data.feature_names)], frame[config.data.target]
    classification = config.model.task == "classification"
    files: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)
    libraries = {"python": platform.python_version()}
    for lib in ("numpy", "scikit-learn", "skops"):
        libraries[lib] = importlib.metadata.version(lib)
    if config.model.framework == "sklearn":
        model = estimator or (LogisticRegression(max_iter=1000) if classification else Ridge())
        pipeline = Pipeline([("preprocess", column_transformer(config)), ("model", model)]).fit(x, y)
        classes = pipeline.classes_.tolist() if classification else None
        files["model.skops"] = out / "model.skops"
        sio.dump(pipeline, files["model.skops"])
    else:
        import keras

        keras.utils.set_random_seed(0)
        preprocess = column_transformer(config).fit(x)
        matrix = preprocess.transform(x).astype(np.float32)
        classes = sorted(y.unique().tolist()) if classification else None
        layers = [keras.Input((matrix.shape[1],)), keras.layers.Dense(8, activation="relu")]
        if classification:
            target = np.array([classes.index(v) for v in y])
            layers.append(keras.layers.Dense(len(classes), activation="softmax"))
            loss = "sparse_categorical_crossentropy"
        else:
            target = y.to_numpy(dtype=np.float32)
            layers.append(keras.layers.Dense(1))
            loss = "mse"
        model = keras.Sequential(layers)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
        model.fit(matrix, target, epochs=5, batch_size=64, verbose=0)
        files["preprocess.skops"] = out / "preprocess.skops"
        files["model.keras"] = out / "model.keras"
        sio.dump(preprocess, files["preprocess.skops"])
        model.save(files["model.keras"])
        libraries["tensorflow"] = importlib.metadata.version("tensorflow-cpu")
        libraries["keras"] = importlib.metadata.version("keras")
    metadata = {
        "format": 1,
        "name": config.metadata.name,
        "version": config.metadata.version,
        "framework": config.model.framework,
        "task": config.model.task,
        "estimator": config.model.estimator,
        "target": config.data.target,
        "features": [_contract(f) for f in config.data.features],
        "classes": classes,
        "positive_class": config.data.positive_class,
        "library_versions": libraries,
        "lineage": {
            "git_sha": "0123456789abcdef0123456789abcdef01234567",
            "data_md5": hashlib.md5(config.path(config.data.path).read_bytes()).hexdigest(),  # noqa: S324 - DVC's hash
            "model_yaml_sha256": config.source_sha256,
        },
        "files": {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()},
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
    return out


def _contract(feature: Any) -> dict[str, Any]:
    return {
        "name": feature.name,
        "type": feature.type,
        "min": feature.min,
        "max": feature.max,
        "values": list(feature.values) or None,
        "nullable": feature.nullable,
        "pii": feature.pii,
    }


if __name__ == "__main__":  # python tests/serving/standin.py [model.yaml] [out]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from importlib import import_module

    package = next(p.name for p in (Path(__file__).resolve().parents[2] / "src").iterdir() if p.is_dir())
    load_config = import_module(f"{package}.config").load_config
    cfg = load_config(sys.argv[1] if len(sys.argv) > 1 else "model.yaml")
    print(train(cfg, cfg.path(sys.argv[2] if len(sys.argv) > 2 else "artifacts/model")))

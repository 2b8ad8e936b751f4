"""`export`: write the fast serving runtime (artifacts/runtime/) from the trained artifact, with a parity check.

`train` calls it right after saving the model (one DVC stage, one process); the verb re-exports a saved model.

The runtime is served (serving.runtime: auto) only when its predictions on the training data plus edge rows
(every numeric feature missing in turn, unseen categories) match the trained model's within a tolerance.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import sha256_file
from .config import ModelConfig
from .runtime import (
    MANIFEST,
    RUNTIME_FORMAT,
    TREES_FILE,
    ModelLoadError,
    Predictor,
    _load_skops,
    exported_predictor,
    read_verified,
)

MODEL_DIR = Path("artifacts/model")
RUNTIME_DIR = Path("artifacts/runtime")
LINEAR = {
    "LogisticRegression": "logistic",
    "RidgeClassifier": "ridge_classifier",
    "LinearRegression": "regression",
    "Ridge": "regression",
}
# Tree ensembles exported as node arrays (TreeEnsemble); the family decides the input dtype and how trees combine.
TREE_ENSEMBLES = {
    "RandomForestClassifier": "forest",
    "RandomForestRegressor": "forest",
    "GradientBoostingClassifier": "gradient_boosting",
    "GradientBoostingRegressor": "gradient_boosting",
    "HistGradientBoostingClassifier": "hist_gradient_boosting",
    "HistGradientBoostingRegressor": "hist_gradient_boosting",
}
# scikit-learn's loss links by class name -> TreeEnsemble's inverse link (runtime.LINKS).
TREE_LINKS = {
    "IdentityLink": "identity",
    "LogLink": "exp",
    "LogitLink": "sigmoid",
    "HalfLogitLink": "half_sigmoid",
    "MultinomialLogit": "softmax",
}
# max |runtime - model| / (1 + |model|): float64 paths are exact up to rounding; TFLite computes in float32.
TOLERANCE = {"linear": 1e-9, "trees": 1e-9, "sklearn": 1e-9, "tflite": 1e-5}


class ExportUnsupported(Exception):
    """The fitted preprocessing uses a step the numpy replica does not implement; serve the native model."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR, help="trained artifact (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RUNTIME_DIR, help="runtime folder to write (default: %(default)s)")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    return export_runtime(config, config.path(args.model_dir), config.path(args.out), shown=args.out)


def export_runtime(config: ModelConfig, model_dir: Path, out: Path, shown: Path) -> int:
    """`export` with its one-line verdict: 0 when the runtime is written and passed its parity check, else 1."""
    try:
        manifest = export(config, model_dir, out)
    except (ModelLoadError, ExportUnsupported) as err:
        print(f"export: {err}", file=sys.stderr)
        return 1
    if "why" in manifest["estimator"]:
        print(f"export: {manifest['estimator']['why']}; the runtime feeds numpy to the fitted model", file=sys.stderr)
    parity = manifest["parity"]
    verdict = "passed" if parity["passed"] else "FAILED (serving.runtime auto will serve the native model)"
    print(
        f"export: {manifest['estimator']['kind']} runtime in {shown}; parity on {parity['rows']} rows {verdict}: "
        f"max relative difference {parity['max_difference']:.3g} (tolerance {parity['tolerance']:g}), "
        f"{parity['label_mismatches']} label mismatches"
    )
    return 0 if parity["passed"] else 1


def export(config: ModelConfig, model_dir: Path, out: Path) -> dict[str, Any]:
    """Write the runtime into `out` atomically and return its manifest."""
    metadata = read_verified(model_dir, "metadata.json")
    framework, task = metadata["framework"], metadata["task"]
    staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=out.parent if out.parent.exists() else None))
    try:
        if framework == "sklearn":
            pipeline = _load_skops(model_dir / "model.skops")
            preprocess, estimator = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
            spec, libraries = _sklearn_estimator(estimator, metadata["estimator"], staging)
            reference = _sklearn_reference(pipeline, task)
        else:
            preprocess = _load_skops(model_dir / "preprocess.skops")
            keras_model = _load_keras(model_dir / "model.keras")
            (staging / "model.tflite").write_bytes(_to_tflite(keras_model))
            spec, libraries = {"kind": "tflite", "file": "model.tflite"}, ["ai-edge-litert"]
            reference = _keras_reference(preprocess, keras_model, task, metadata.get("classes"))
        manifest: dict[str, Any] = {
            "format": RUNTIME_FORMAT,
            "name": metadata["name"],
            "version": metadata["version"],
            "task": task,
            "classes": metadata.get("classes"),
            "preprocess": describe_column_transformer(preprocess),
            "estimator": spec,
            "library_versions": {lib: importlib.metadata.version(lib) for lib in ["numpy", *libraries]},
            "model_metadata_sha256": sha256_file(model_dir / "metadata.json"),
        }
        manifest["files"] = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
        (staging / MANIFEST).write_text(json.dumps({**manifest, "parity": {"passed": True}}, indent=1) + "\n")
        columns, rows = parity_rows(config, metadata["features"])
        candidate = exported_predictor(staging, model_dir, task)
        manifest["parity"] = parity(reference, candidate, columns, rows, TOLERANCE[_tolerance_kind(spec)])
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _tolerance_kind(spec: Mapping[str, Any]) -> str:
    return spec["kind"] if spec["kind"] in TOLERANCE else "linear"


def describe_column_transformer(transformer: Any) -> list[dict[str, Any]]:
    """The fitted ColumnTransformer as numbers: blocks in output order (numeric impute+scale, categorical one-hot)."""
    blocks: list[dict[str, Any]] = []
    for name, step, columns in transformer.transformers_:
        if step == "drop" or len(columns) == 0:
            continue
        if step == "passthrough":
            raise ExportUnsupported(f"preprocess transformer {name!r} is passthrough; expected impute + scale/one-hot")
        steps = [s for _, s in step.steps] if hasattr(step, "steps") else [step]
        kinds = [type(s).__name__ for s in steps]
        columns = [str(c) for c in columns]
        if kinds in (["SimpleImputer", "StandardScaler"], ["SimpleImputer"]):
            imputer = steps[0]
            if imputer.strategy not in ("median", "mean", "constant") or not _nan_marker(imputer.missing_values):
                raise ExportUnsupported(f"preprocess transformer {name!r}: imputer {imputer!r} is not supported")
            scaler = steps[1] if len(steps) == 2 else None
            blocks.append(
                {
                    "kind": "numeric",
                    "columns": columns,
                    "fill": np.asarray(imputer.statistics_, dtype=np.float64).tolist(),
                    "mean": None if scaler is None or scaler.mean_ is None else scaler.mean_.tolist(),
                    "scale": None if scaler is None or scaler.scale_ is None else scaler.scale_.tolist(),
                }
            )
        elif kinds == ["SimpleImputer", "OneHotEncoder"]:
            imputer, encoder = steps
            if imputer.strategy != "constant" or encoder.handle_unknown != "ignore" or encoder.drop is not None:
                raise ExportUnsupported(f"preprocess transformer {name!r}: expected constant impute + one-hot (ignore)")
            if any(getattr(encoder, "_infrequent_enabled", False) for _ in [0]):
                raise ExportUnsupported(f"preprocess transformer {name!r}: infrequent categories are not supported")
            blocks.append(
                {
                    "kind": "categorical",
                    "columns": columns,
                    "fill": [str(imputer.fill_value)] * len(columns),
                    "categories": [[str(c) for c in cats.tolist()] for cats in encoder.categories_],
                }
            )
        else:
            raise ExportUnsupported(f"preprocess transformer {name!r} is {' -> '.join(kinds)}; not supported")
    return blocks


def _nan_marker(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sklearn_estimator(estimator: Any, name: str, staging: Path) -> tuple[dict[str, Any], list[str]]:
    if type(estimator).__name__ in TREE_ENSEMBLES:
        try:
            return _tree_ensemble(estimator, name, staging), []
        except ExportUnsupported as err:  # raised before trees.npz is written; served as the fitted estimator
            return {"kind": "sklearn", "estimator": name, "why": str(err)}, ["scikit-learn", "skops"]
    kind = LINEAR.get(type(estimator).__name__)
    if kind is None:  # anything else: the fitted estimator itself, fed numpy
        return {"kind": "sklearn", "estimator": name}, ["scikit-learn", "skops"]
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    spec = {
        "kind": kind,
        "estimator": name,
        "coef": coef.tolist(),
        "intercept": np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64)).tolist(),
    }
    return spec, []


# One tree: left, right (-1 at leaves), feature, threshold, missing_go_to_left, is_leaf, value (nodes, outputs).
Tree = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _tree_ensemble(estimator: Any, name: str, staging: Path) -> dict[str, Any]:
    """A fitted forest or boosting model as one set of node arrays (runtime.TreeEnsemble) in `staging`/trees.npz."""
    family = TREE_ENSEMBLES[type(estimator).__name__]
    classifier = hasattr(estimator, "classes_")
    try:
        if family == "forest":
            if estimator.n_outputs_ != 1:
                raise ExportUnsupported(f"{name}: {estimator.n_outputs_} outputs; one is supported")
            outputs = int(estimator.n_classes_) if classifier else 1
            trees = [_decision_tree(e.tree_, lambda v: v[:, 0, :outputs], 0, outputs) for e in estimator.estimators_]
            base, link = np.zeros(outputs), "identity"
        elif family == "gradient_boosting":
            trees, base = _gradient_boosting(estimator, name)
            link = _tree_link(estimator, name) if classifier else "identity"  # a regressor returns its raw sum
        else:
            trees, base = _hist_gradient_boosting(estimator, name)
            link = _tree_link(estimator, name)
    except (AttributeError, KeyError, TypeError, ValueError) as err:  # fitted internals unlike the ones read here
        raise ExportUnsupported(f"{name}: cannot read the fitted trees ({err})") from None
    arrays = _concatenate_trees(trees, np.asarray(base, dtype=np.float64))
    if arrays["feature"].size and int(arrays["feature"].max()) >= estimator.n_features_in_:
        raise ExportUnsupported(f"{name}: a node splits on a feature the model was not fitted on")
    np.savez(staging / TREES_FILE, **arrays)
    return {
        "kind": "trees",
        "estimator": name,
        "file": TREES_FILE,
        "family": family,
        "trees": len(trees),
        "nodes": int(arrays["feature"].size),
        "depth": _depth(arrays["children"], arrays["roots"]),
        "float32": family != "hist_gradient_boosting",  # decision trees compare float32-cast features
        "average": family == "forest",
        "link": link,
    }


def _decision_tree(tree: Any, values: Any, column: int, outputs: int) -> Tree:
    """A fitted sklearn.tree Tree: (left, right, feature, threshold, missing_go_to_left, is_leaf, value (nodes,
    outputs)); `values` picks the leaf values from tree.value, placed from output `column` on."""
    picked = np.asarray(values(tree.value), dtype=np.float64).reshape(tree.node_count, -1)
    value = np.zeros((tree.node_count, outputs))
    value[:, column : column + picked.shape[1]] = picked
    return (
        np.asarray(tree.children_left),
        np.asarray(tree.children_right),
        np.asarray(tree.feature),
        np.asarray(tree.threshold, dtype=np.float64),
        np.asarray(tree.missing_go_to_left, dtype=bool),
        np.asarray(tree.children_left) == -1,
        value,
    )


def _gradient_boosting(estimator: Any, name: str) -> tuple[list[Tree], np.ndarray]:
    """GradientBoosting: trees stage by stage (one per output in a stage), leaf values times the learning rate."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = estimator.init_
    if not (isinstance(init, str) and init == "zero") and type(init) not in (DummyClassifier, DummyRegressor):
        raise ExportUnsupported(f"{name}: init estimator {init!r} is not a constant (zero or dummy)")
    stages = np.asarray(estimator.estimators_, dtype=object)
    outputs = stages.shape[1]
    rate = float(estimator.learning_rate)
    trees = [
        _decision_tree(stage[k].tree_, lambda v: rate * v[:, 0, 0], k, outputs)
        for stage in stages
        for k in range(outputs)
    ]
    base = estimator._raw_predict_init(np.zeros((1, estimator.n_features_in_)))[0]
    return trees, np.asarray(base, dtype=np.float64)


def _hist_gradient_boosting(estimator: Any, name: str) -> tuple[list[Tree], np.ndarray]:
    """HistGradientBoosting: its TreePredictors' nodes (numeric splits only), iteration by iteration."""
    if estimator.is_categorical_ is not None and bool(np.any(estimator.is_categorical_)):
        raise ExportUnsupported(f"{name}: native categorical features are not supported")
    outputs = int(estimator.n_trees_per_iteration_)
    trees: list[Tree] = []
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if bool(np.any(nodes["is_categorical"])):
                raise ExportUnsupported(f"{name}: a categorical split is not supported")
            value = np.zeros((len(nodes), outputs))
            value[:, k] = nodes["value"]
            leaf = nodes["is_leaf"].astype(bool)
            trees.append(
                (
                    np.where(leaf, -1, nodes["left"].astype(np.int64)),
                    np.where(leaf, -1, nodes["right"].astype(np.int64)),
                    nodes["feature_idx"].astype(np.int64),
                    nodes["num_threshold"].astype(np.float64),
                    nodes["missing_go_to_left"].astype(bool),
                    leaf,
                    value,
                )
            )
    return trees, np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)


def _tree_link(estimator: Any, name: str) -> str:
    link = TREE_LINKS.get(type(estimator._loss.link).__name__)
    if link is None:
        raise ExportUnsupported(f"{name}: loss {type(estimator._loss).__name__} has no exported inverse link")
    return link


def _concatenate_trees(trees: Sequence[Tree], base: np.ndarray) -> dict[str, np.ndarray]:
    """One node array per field over all trees, after a one-leaf tree holding the baseline `base`; a leaf is its own
    child (feature 0), so walking on from a leaf stays there."""
    if not trees:
        raise ExportUnsupported("the ensemble has no trees")
    no = np.zeros(1, dtype=np.int64)
    baseline: Tree = (no - 1, no - 1, no, np.zeros(1), np.zeros(1, dtype=bool), np.ones(1, dtype=bool), base[None, :])
    children: list[np.ndarray] = []
    feature: list[np.ndarray] = []
    threshold: list[np.ndarray] = []
    missing_right: list[np.ndarray] = []
    value: list[np.ndarray] = []
    roots: list[int] = []
    start = 0
    for left, right, feat, thresh, missing_left, leaf, val in [baseline, *trees]:
        own = np.arange(start, start + len(leaf), dtype=np.int64)
        left = np.where(leaf, own, np.asarray(left, dtype=np.int64) + start)
        right = np.where(leaf, own, np.asarray(right, dtype=np.int64) + start)
        children.append(np.column_stack([left, right]).ravel())
        feature.append(np.where(leaf, 0, feat).astype(np.int64))
        threshold.append(np.where(leaf, 0.0, thresh))
        missing_right.append(np.where(leaf, 0, ~missing_left).astype(np.uint8))
        value.append(val)
        roots.append(start)
        start += len(leaf)
    return {
        "children": np.concatenate(children),
        "feature": np.concatenate(feature),
        "threshold": np.concatenate(threshold),
        "missing_right": np.concatenate(missing_right),
        "value": np.concatenate(value),
        "roots": np.asarray(roots, dtype=np.int64),
    }


def _depth(children: np.ndarray, roots: np.ndarray) -> int:
    """Levels to walk until every tree is at a leaf (a leaf is its own child)."""
    node, depth = roots, 0
    while True:
        nxt = children[np.concatenate([2 * node, 2 * node + 1])]
        moving = nxt != np.concatenate([node, node])
        if not moving.any():
            return depth
        node = np.unique(nxt[moving])
        depth += 1


def _load_keras(path: Path) -> Any:
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _to_tflite(model: Any) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        return converter.convert()


def _frame(columns: Mapping[str, Sequence[Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame({k: [np.nan if v is None else v for v in col] for k, col in columns.items()})


def _sklearn_reference(pipeline: Any, task: str) -> Any:
    def predict(columns: Mapping[str, Sequence[Any]], rows: int) -> tuple[list[Any], np.ndarray | None]:
        del rows
        frame = _frame(columns)
        if task == "classification" and hasattr(pipeline, "predict_proba"):
            return pipeline.predict(frame).tolist(), np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
        return np.asarray(pipeline.predict(frame)).tolist(), None

    return predict


def _keras_reference(preprocess: Any, model: Any, task: str, classes: list[Any] | None) -> Any:
    def predict(columns: Mapping[str, Sequence[Any]], rows: int) -> tuple[list[Any], np.ndarray | None]:
        del rows
        x = np.asarray(preprocess.transform(_frame(columns)), dtype=np.float32)
        y = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
        if task == "regression" or classes is None:
            return y.reshape(-1).tolist(), None
        return [classes[i] for i in y.argmax(axis=1).tolist()], y

    return predict


def parity_rows(config: ModelConfig, features: Sequence[Mapping[str, Any]]) -> tuple[dict[str, list[Any]], int]:
    """The data file's feature columns (typed by the contract), then edge rows: each numeric feature missing in
    turn, and every category unseen."""
    columns: dict[str, list[Any]] = {f["name"]: [] for f in features}
    with config.path(config.data.path).open(newline="") as handle:
        for record in csv.DictReader(handle):
            for feature in features:
                columns[feature["name"]].append(_typed(record.get(feature["name"], ""), feature["type"]))
    rows = len(next(iter(columns.values())))
    first = {name: col[0] for name, col in columns.items()}
    edge_rows = []
    for feature in features:
        if feature["type"] in ("number", "integer"):
            edge_rows.append({**first, feature["name"]: None})
    edge_rows.append({**first, **{f["name"]: "__unseen__" for f in features if f["type"] == "category"}})
    for edge in edge_rows:
        for name, value in edge.items():
            columns[name].append(value)
    return columns, rows + len(edge_rows)


def _typed(text: str, kind: str) -> Any:
    if text == "":
        return None
    if kind in ("number", "integer"):
        return float(text)
    if kind == "boolean":
        return text.strip().lower() in ("true", "1", "yes")
    return text


def parity(reference: Any, candidate: Predictor, columns: Mapping[str, Any], rows: int, tol: float) -> dict[str, Any]:
    """Compare probabilities (classification) or values (regression) row by row; labels may differ only on ties."""
    want_labels, want_proba = reference(columns, rows)
    got_labels, got_proba = candidate.predict_columns(columns, rows)
    if want_proba is not None and got_proba is not None:
        want, got = want_proba, got_proba
    elif candidate.classes is None:
        want, got = np.asarray(want_labels, dtype=np.float64), np.asarray(got_labels, dtype=np.float64)
    else:
        want = got = np.zeros(1)
    difference = float(np.max(np.abs(got - want) / (1.0 + np.abs(want)))) if want.size else 0.0
    mismatches = 0
    if candidate.classes is not None:
        for i, (a, b) in enumerate(zip(want_labels, got_labels, strict=True)):
            tie = want_proba is not None and float(np.ptp(np.sort(want_proba[i])[-2:])) <= tol
            mismatches += a != b and not tie
    passed = difference <= tol and mismatches == 0 and not math.isnan(difference)
    return {
        "rows": rows,
        "max_difference": difference,
        "tolerance": tol,
        "label_mismatches": mismatches,
        "passed": passed,
    }

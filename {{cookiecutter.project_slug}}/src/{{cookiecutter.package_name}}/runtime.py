"""The fast inference path: validated columns -> numpy matrix -> estimator, without pandas or sklearn's checks.

`export` writes an exported runtime (artifacts/runtime/) next to the trained artifact (artifacts/model/): the
preprocessing as plain numbers (a numpy replica of the fitted ColumnTransformer, bitwise equal to it), and the
estimator as coefficients (linear models), as flat node arrays (random forests and gradient boosting), as the
fitted sklearn estimator fed numpy (anything else) or as TFLite (Keras). It is served only when its export-time parity
check against the trained model passed.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import artifact
from .artifact import sha256_file

log = logging.getLogger(__name__)

RUNTIME_FORMAT = 1
MANIFEST = "runtime.json"


class ModelLoadError(Exception):
    """The model cannot be served (missing, corrupt or unexported artifact); the server stays up, not ready."""


class VersionMismatch(Exception):
    """A library differs from the one the artifact was made with; the server refuses to start."""


def read_verified(directory: Path, manifest_name: str, allow_empty: bool = False) -> dict[str, Any]:
    """A JSON manifest whose `files` ({name: sha256}) all exist in `directory` with those hashes."""
    path = directory / manifest_name
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing (train and export the model first)") from None
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path} is not readable JSON ({err})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not (files or allow_empty):
        raise ModelLoadError(f"{path}: `files` is missing; expected an object of filename: sha256")
    for name, expected in sorted(files.items()):
        file = directory / name
        if not file.is_file():
            raise ModelLoadError(f"{file} is missing (listed in {manifest_name})")
        actual = sha256_file(file)
        if actual != expected:
            raise ModelLoadError(f"{file}: sha256 {actual} differs from {expected} recorded in {manifest_name}")
    return manifest


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_versions(recorded: Mapping[str, str], where: str) -> None:
    """Refuse to serve with a library other than the recorded one (pickled-state formats are version-bound)."""
    for distribution, wanted in sorted(recorded.items()):
        have = installed_version(distribution)
        if have != wanted:
            have_text = "not installed" if have is None else have
            raise VersionMismatch(
                f"{distribution} {have_text} is installed but {where} was made with {distribution} {wanted}; "
                "install the locked requirements (requirements/serve.txt) or retrain"
            )


# ---- preprocessing -------------------------------------------------------------------------------------------


class Preprocessor:
    """A numpy replica of the fitted ColumnTransformer: median impute + scale, constant impute + one-hot.

    `blocks` come from export.describe_column_transformer, in the ColumnTransformer's output order.
    """

    def __init__(self, blocks: Sequence[Mapping[str, Any]]) -> None:
        self.blocks = [dict(b) for b in blocks]
        self.width = 0
        for block in self.blocks:
            if block["kind"] == "numeric":
                block["fill_"] = np.asarray(block["fill"], dtype=np.float64)
                block["mean_"] = None if block["mean"] is None else np.asarray(block["mean"], dtype=np.float64)
                block["scale_"] = None if block["scale"] is None else np.asarray(block["scale"], dtype=np.float64)
                block["offset"] = self.width
                self.width += len(block["columns"])
            else:
                lookups, offsets = [], []
                for categories in block["categories"]:
                    offsets.append(self.width)
                    lookups.append({_key(c): i for i, c in enumerate(categories)})
                    self.width += len(categories)
                block["lookups"], block["offsets"] = lookups, offsets

    def transform(self, columns: Mapping[str, Sequence[Any]], rows: int) -> np.ndarray:
        out = np.zeros((rows, self.width), dtype=np.float64)
        for block in self.blocks:
            if block["kind"] == "numeric":
                start = block["offset"]
                stop = start + len(block["columns"])
                x = np.array([columns[c] for c in block["columns"]], dtype=np.float64).T
                missing = np.isnan(x)
                if missing.any():
                    x = np.where(missing, block["fill_"], x)
                if block["mean_"] is not None:
                    x -= block["mean_"]
                if block["scale_"] is not None:
                    x /= block["scale_"]
                out[:, start:stop] = x
            else:
                for name, fill, lookup, offset in zip(
                    block["columns"], block["fill"], block["lookups"], block["offsets"], strict=True
                ):
                    for row, value in enumerate(columns[name]):
                        index = lookup.get(value)  # validated strings hit at once; others go through _key
                        if index is None:
                            index = lookup.get(_key(fill if value is None else value))
                        if index is not None:  # unknown category: all zeros, as handle_unknown='ignore'
                            out[row, offset + index] = 1.0
        return out


def _key(value: Any) -> Any:
    """Categories compare as strings, so that True, 'True' and a JSON string agree with the fitted encoder."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return str(value)


# ---- estimators ------------------------------------------------------------------------------------------------

Output = tuple[np.ndarray, np.ndarray | None]  # (class indices or values, probabilities or None)


def _softmax(raw: np.ndarray) -> np.ndarray:
    """sklearn.utils.extmath.softmax, step for step."""
    shifted = raw - raw.max(axis=1).reshape(-1, 1)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1).reshape(-1, 1)


# Inverse links (scikit-learn's loss.link.inverse); "identity" also stands for a forest's averaged probabilities.
LINKS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda raw: raw,
    "exp": np.exp,
    "sigmoid": lambda raw: 1.0 / (1.0 + np.exp(-raw)),
    "half_sigmoid": lambda raw: 1.0 / (1.0 + np.exp(-2 * raw)),
    "softmax": _softmax,
}


def _binary(positive: np.ndarray) -> np.ndarray:
    """(rows, 2) probabilities from the positive class's: [1 - p, p]."""
    return np.column_stack([1.0 - positive, positive])


class LinearEstimator:
    """LogisticRegression, RidgeClassifier, LinearRegression and Ridge as their coefficients."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.kind = spec["kind"]
        self.coef = np.asarray(spec["coef"], dtype=np.float64)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float64)
        self.classes = spec.get("classes")

    def __call__(self, x: np.ndarray) -> Output:
        scores = x @ self.coef.T + self.intercept
        if self.kind == "regression":
            return scores.ravel(), None
        if scores.shape[1] == 1:  # binary: one decision column, positive = classes[1]
            positive = scores[:, 0]
            if self.kind == "logistic":
                return (positive > 0).astype(np.intp), _binary(LINKS["sigmoid"](positive))
            return (positive > 0).astype(np.intp), None
        if self.kind == "logistic":
            return scores.argmax(axis=1), _softmax(scores)
        return scores.argmax(axis=1), None


TREES_FILE = "trees.npz"


class TreeEnsemble:
    """RandomForest, GradientBoosting and HistGradientBoosting as flat node arrays, scikit-learn's arithmetic in numpy.

    Every tree of the ensemble lives in one set of node arrays (`roots` marks where each starts; a leaf is its own
    child). The first root is a one-leaf tree holding the ensemble's baseline (zeros for forests, the init
    estimator's or baseline raw prediction for boosting). All trees walk all rows at once, one numpy step per depth
    level: a call costs O(depth) numpy operations, not O(trees x depth). As scikit-learn does: decision trees
    (forests, GradientBoosting) compare float32-cast features, HistGradientBoosting float64 ones; `x <= threshold`
    goes left, NaN goes where the node sends missing values. Leaf values are summed tree by tree in scikit-learn's
    order, then averaged (forests) or passed through the loss's inverse link (boosting).
    """

    def __init__(self, path: Path, spec: Mapping[str, Any], task: str) -> None:
        with np.load(path, allow_pickle=False) as arrays:
            children = np.asarray(arrays["children"], dtype=np.intp).reshape(-1, 2)  # left, right
            feature = np.asarray(arrays["feature"], dtype=np.intp)
            threshold = np.asarray(arrays["threshold"], dtype=np.float64)
            missing_right = np.asarray(arrays["missing_right"], dtype=bool)
            value = np.asarray(arrays["value"], dtype=np.float64)  # (nodes, outputs)
            roots = np.asarray(arrays["roots"], dtype=np.intp)
        # Walked with doubled node ids: node 2n's right child is at 2n + 1, so one step is next[node + goes_right].
        self.next = np.ascontiguousarray(2 * children).ravel()
        self.feature = np.repeat(feature, 2)
        self.threshold = np.repeat(threshold, 2)
        self.missing_right = np.repeat(missing_right, 2)
        self.outputs = value.shape[1]
        if self.outputs == 1:  # a second, zero column: numpy then adds the trees in order (see raw)
            value = np.column_stack([value, np.zeros(len(value))])
        self.value = np.repeat(value, 2, axis=0)
        self.roots = 2 * roots
        self.trees = len(roots) - 1  # without the baseline
        self.depth = int(spec["depth"])
        self.float32 = bool(spec["float32"])
        self.average = bool(spec["average"])
        self.link = str(spec["link"])
        self.task = task
        if self.link not in LINKS:
            raise ModelLoadError(f"exported trees: link {self.link!r} is not one of {sorted(LINKS)}")

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's raw prediction, (rows, outputs): baseline + the trees' leaf values (averaged for forests)."""
        if self.float32:
            x = x.astype(np.float32).astype(np.float64)
        rows, width = x.shape
        flat = np.ascontiguousarray(x).ravel()
        offsets = np.arange(rows, dtype=np.intp) * width  # row r, feature f: flat[r * width + f]
        node = self.roots[:, None].repeat(rows, axis=1)  # (trees, rows)
        nan = bool(np.isnan(flat).any())
        for _ in range(self.depth):  # ndarray.take: the method skips np.take's Python wrapper (per-call cost)
            values = flat.take(offsets + self.feature.take(node))
            right = self.threshold.take(node) < values  # not (x <= threshold); NaN compares False
            if nan:
                right = np.where(np.isnan(values), self.missing_right.take(node), right)
            node = self.next.take(node + right)
        # Summed over the trees axis with more than one value per tree, numpy adds tree after tree (0, 1, 2, ...)
        # as scikit-learn does; a single value per tree would be summed pairwise instead.
        total = np.add.reduce(self.value.take(node, axis=0), axis=0)[:, : self.outputs]
        return total / self.trees if self.average else total

    def __call__(self, x: np.ndarray) -> Output:
        raw = self.raw(x)
        if self.task == "regression":
            return LINKS[self.link](raw[:, 0]), None
        if self.link in ("sigmoid", "half_sigmoid"):  # binary: one raw column, the positive class
            proba = _binary(LINKS[self.link](raw[:, 0]))
        else:
            proba = LINKS[self.link](raw)
        return proba.argmax(axis=1), proba


class SklearnEstimator:
    """Any other fitted sklearn estimator, fed the numpy matrix (skipping the DataFrame and ColumnTransformer)."""

    def __init__(self, estimator: Any, task: str) -> None:
        self.estimator = estimator
        self.task = task
        self.has_proba = hasattr(estimator, "predict_proba")

    def __call__(self, x: np.ndarray) -> Output:
        if self.task == "regression":
            return np.asarray(self.estimator.predict(x), dtype=np.float64).ravel(), None
        if self.has_proba:
            proba = np.asarray(self.estimator.predict_proba(x), dtype=np.float64)
            return proba.argmax(axis=1), proba
        labels = self.estimator.predict(x)
        index = {c: i for i, c in enumerate(self.estimator.classes_.tolist())}
        return np.array([index[v] for v in labels.tolist()], dtype=np.intp), None


class TFLiteEstimator:
    """The Keras model converted to TFLite at export time, on ai-edge-litert (no TensorFlow at serving time)."""

    def __init__(self, path: Path, task: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.task = task
        self.rows = -1

    def __call__(self, x: np.ndarray) -> Output:
        if x.shape[0] != self.rows:  # resizing re-plans the graph: only when the batch size changes
            self.interpreter.resize_tensor_input(self.input, list(x.shape), strict=False)
            self.interpreter.allocate_tensors()
            self.rows = x.shape[0]
        self.interpreter.set_tensor(self.input, x.astype(np.float32))
        self.interpreter.invoke()
        y = np.asarray(self.interpreter.get_tensor(self.output), dtype=np.float64)
        if self.task == "regression":
            return y.reshape(-1), None
        return y.argmax(axis=1), y


# ---- predictors ------------------------------------------------------------------------------------------------


@dataclass
class Predictor:
    """What the server calls: columns of validated values in, (predictions, probabilities) out."""

    kind: str  # "exported:<estimator kind>" or "native"
    classes: list[Any] | None
    predict_columns: Callable[[Mapping[str, Sequence[Any]], int], tuple[list[Any], np.ndarray | None]]


def exported_predictor(runtime_dir: Path, model_dir: Path, task: str) -> Predictor:
    """Load an exported runtime; ModelLoadError when it is missing, corrupt or failed its parity check."""
    manifest = read_verified(runtime_dir, MANIFEST, allow_empty=True)
    if manifest.get("format") != RUNTIME_FORMAT:
        raise ModelLoadError(f"{runtime_dir / MANIFEST}: format {manifest.get('format')!r}; expected {RUNTIME_FORMAT}")
    parity = manifest.get("parity", {})
    if not parity.get("passed"):
        raise ModelLoadError(f"{runtime_dir / MANIFEST}: the export-time parity check did not pass ({parity})")
    check_versions(manifest.get("library_versions", {}), f"the exported runtime in {runtime_dir}")
    preprocess = Preprocessor(manifest["preprocess"])
    kind = manifest["estimator"]["kind"]
    estimator: Callable[[np.ndarray], Output]
    if kind == "tflite":
        estimator = TFLiteEstimator(runtime_dir / manifest["estimator"]["file"], task)
    elif kind == "trees":
        estimator = TreeEnsemble(runtime_dir / manifest["estimator"]["file"], manifest["estimator"], task)
    elif kind == "sklearn":
        estimator = SklearnEstimator(_load_skops(model_dir / "model.skops").named_steps["model"], task)
    else:
        estimator = LinearEstimator(manifest["estimator"])
    classes = manifest.get("classes")

    def predict_columns(columns: Mapping[str, Sequence[Any]], rows: int) -> tuple[list[Any], np.ndarray | None]:
        index, proba = estimator(preprocess.transform(columns, rows))
        if classes is None:
            return index.tolist(), None
        return [classes[i] for i in index.tolist()], proba

    return Predictor(f"exported:{kind}", classes, predict_columns)


def native_predictor(model_dir: Path) -> Predictor:
    """The trained model itself, through artifact.load_predictor (needs pandas and the training libraries)."""
    try:
        pandas = importlib.import_module("pandas")
    except ImportError as err:
        raise ModelLoadError(f"serving.runtime native needs {err.name} (the training extras), not installed") from None
    _check_artifact_versions(model_dir)
    try:
        native = artifact.load_predictor(model_dir)
    except artifact.ArtifactError as err:
        raise ModelLoadError(str(err)) from None

    def predict_columns(columns: Mapping[str, Sequence[Any]], rows: int) -> tuple[list[Any], np.ndarray | None]:
        del rows
        predictions, proba = native.predict_frame(pandas.DataFrame(columns))
        return np.asarray(predictions).tolist(), None if proba is None else np.asarray(proba, dtype=np.float64)

    classes = None if native.classes is None else list(native.classes)
    return Predictor("native", classes, predict_columns)


# Predictors whose per-call cost dwarfs their per-row cost: concurrent requests share one call (MicroBatcher).
BATCHED_KINDS = frozenset({"exported:trees", "exported:sklearn", "native"})


class MicroBatcher:
    """Adaptive micro-batching: requests that arrive together share one model call.

    No timer: a request queues its rows and schedules a flush for the event loop's next turn, so the flush runs
    right after every request already waiting has queued too ("flush when the queue is empty"). One request alone
    pays nothing extra; a burst of 16 pays one model call instead of 16.
    """

    def __init__(self, predictor: Predictor, max_rows: int) -> None:
        self.predictor = predictor
        self.max_rows = max_rows
        self.pending: list[tuple[Mapping[str, Sequence[Any]], int, asyncio.Future[Any]]] = []
        self.calls = 0

    async def predict_columns(
        self, columns: Mapping[str, Sequence[Any]], rows: int
    ) -> tuple[list[Any], np.ndarray | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append((columns, rows, future))
        return await future

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        batch: list[tuple[Mapping[str, Sequence[Any]], int, asyncio.Future[Any]]] = []
        size = 0
        for item in pending:
            if batch and size + item[1] > self.max_rows:
                self._run(batch, size)
                batch, size = [], 0
            batch.append(item)
            size += item[1]
        if batch:
            self._run(batch, size)

    def _run(self, batch: list[tuple[Mapping[str, Sequence[Any]], int, asyncio.Future[Any]]], size: int) -> None:
        names = list(batch[0][0])
        merged = {name: [v for columns, _, _ in batch for v in columns[name]] for name in names}
        self.calls += 1
        try:
            predictions, proba = self.predictor.predict_columns(merged, size)
        except Exception as err:  # every waiting request gets the error; the server turns it into a 500
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        start = 0
        for _, rows, future in batch:
            if not future.done():  # the client may have gone away
                part = None if proba is None else proba[start : start + rows]
                future.set_result((predictions[start : start + rows], part))
            start += rows


def _load_skops(path: Path) -> Any:
    """A skops file through the artifact's loader: only reviewed types are constructed."""
    return artifact.load_skops(path)


def load_predictor(model_dir: Path, runtime_dir: Path, mode: str, task: str) -> tuple[Predictor, str]:
    """The predictor to serve and why: the exported runtime when allowed and valid, else the native model."""
    if mode == "auto":
        try:
            return exported_predictor(runtime_dir, model_dir, task), "exported runtime passed its parity check"
        except ModelLoadError as err:
            reason = f"exported runtime not used: {err}"
            log.warning("%s; serving the native model", reason)
    else:
        reason = "serving.runtime is native"
    return native_predictor(model_dir), reason


def _check_artifact_versions(model_dir: Path) -> None:
    """The trained artifact's own checks: files (ModelLoadError), then library versions (VersionMismatch)."""
    try:
        metadata = artifact.load_metadata(model_dir)
    except artifact.ArtifactError as err:
        raise ModelLoadError(str(err)) from None
    try:
        artifact.check_library_versions(metadata)
    except artifact.ArtifactError as err:
        raise VersionMismatch(f"{err}; install the locked requirements or retrain") from None

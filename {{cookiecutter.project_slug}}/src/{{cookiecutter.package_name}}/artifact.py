"""The model artifact: a folder with metadata.json and the model files, written whole or not at all.

Contract (serving codes against it):
- metadata.json: format, name, version, framework, task, estimator, target, features (the contract), classes (in
  model output order) or null, positive_class, library_versions, lineage, files ({name: sha256}).
- sklearn: model.skops, the whole Pipeline ("preprocess" ColumnTransformer -> "model" estimator) on raw rows.
- tensorflow: preprocess.skops (the fitted ColumnTransformer) + model.keras (input: the preprocessed float32
  matrix; classification: softmax over the classes; regression: the target in its own units).
Nothing is unpickled: skops loads only the reviewed types below, Keras loads in safe mode.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from .config import Feature

FORMAT = 1
METADATA = "metadata.json"
SKLEARN_MODEL = "model.skops"
PREPROCESS = "preprocess.skops"
KERAS_MODEL = "model.keras"
LIBRARIES = {
    "sklearn": ("numpy", "scikit-learn", "skops"),
    "tensorflow": ("numpy", "scikit-learn", "skops", "tensorflow", "keras"),
}

# Types beyond skops' own default trust (which covers sklearn's estimators and transformers) that the allow-listed
# estimators need, reviewed: plain data holders, no callables. Any other type in a file makes loading fail.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    }
)


class ArtifactError(Exception):
    """The artifact is missing, altered, or made with other library versions; the message is one line."""


def library_versions(framework: str) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES[framework]:
        versions[name] = _installed(name) or "not installed"
    return versions


def _installed(name: str) -> str | None:
    try:
        return importlib_metadata.version("tensorflow-cpu" if name == "tensorflow" else name)
    except importlib_metadata.PackageNotFoundError:
        try:
            return importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_artifact(
    directory: Path,
    *,
    metadata: Mapping[str, Any],
    features: Iterable[Feature],
    pipeline: Any = None,
    preprocess: Any = None,
    keras_model: Any = None,
) -> dict[str, Any]:
    """Write the model files and metadata.json into a fresh folder, then swap it in place of ``directory``.

    sklearn: pass ``pipeline``; tensorflow: ``preprocess`` and ``keras_model``. ``metadata`` supplies name, version,
    framework, task, estimator, target, classes, positive_class and lineage; files and versions are added here.
    """
    import skops.io as sio

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        if pipeline is not None:
            sio.dump(pipeline, staging / SKLEARN_MODEL)
        if preprocess is not None:
            sio.dump(preprocess, staging / PREPROCESS)
        if keras_model is not None:
            from .keras_model import keras_numpy_quiet

            with keras_numpy_quiet():
                keras_model.save(staging / KERAS_MODEL)
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
        document = {
            "format": FORMAT,
            **metadata,
            "features": [_feature_dict(f) for f in features],
            "library_versions": library_versions(metadata["framework"]),
            "files": files,
        }
        (staging / METADATA).write_text(json.dumps(document, indent=2, default=_plain) + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return document


def _feature_dict(feature: Feature) -> dict[str, Any]:
    from .data import allowed_values

    out = asdict(feature)
    out["values"] = list(allowed_values(feature)) if feature.is_categorical else None
    return {key: out[key] for key in ("name", "type", "min", "max", "values", "nullable", "pii")}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_metadata(directory: Path) -> dict[str, Any]:
    """metadata.json, after checking that every file it lists is present and has its recorded sha256."""
    directory = Path(directory)
    try:
        document = json.loads((directory / METADATA).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: no {METADATA} (train a model first: `dvc repro`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{directory / METADATA}: not valid JSON ({err})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArtifactError(f"{directory / METADATA}: format {document.get('format')!r}; expected {FORMAT}")
    for name, expected in document.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path}: missing; metadata.json lists it")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{path}: sha256 differs from metadata.json; the file was changed after training")
    return document


def check_library_versions(metadata: Mapping[str, Any], only: Iterable[str] | None = None) -> None:
    """Refuse a library version other than the one the artifact was made with (python: major.minor)."""
    recorded: Mapping[str, str] = metadata.get("library_versions", {})
    names = list(only) if only is not None else [n for n in recorded if n != "python"]
    for name in names:
        made_with = recorded.get(name)
        if made_with is None:
            continue
        here = platform.python_version() if name == "python" else _installed(name)
        if here is None:
            raise ArtifactError(f"artifact was made with {name} {made_with}, this environment does not have {name}")
        if name == "python":
            made_with, here = ".".join(made_with.split(".")[:2]), ".".join(here.split(".")[:2])
        if here != made_with:
            raise ArtifactError(f"artifact was made with {name} {made_with}, this environment has {here}")


def load_skops(path: Path) -> Any:
    """Load a skops file, constructing only reviewed types."""
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(file=path))
    unexpected = sorted(untrusted - TRUSTED_TYPES)
    if unexpected:
        raise ArtifactError(f"{path}: refuses to load unreviewed types: {', '.join(unexpected)}")
    return sio.load(path, trusted=sorted(untrusted))


class Predictor:
    """Raw rows in, predictions out: ``predict_frame(df) -> (predictions, probabilities or None)``."""

    def __init__(self, metadata: Mapping[str, Any], pipeline: Any = None, preprocess: Any = None, keras: Any = None):
        self.metadata = metadata
        self.classes: list[Any] | None = metadata.get("classes")
        self._pipeline, self._preprocess, self._keras = pipeline, preprocess, keras
        self._features = [_contract_feature(f) for f in metadata["features"]]

    @property
    def task(self) -> str:
        return str(self.metadata["task"])

    def predict_frame(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        from .features import model_frame

        rows = model_frame(frame, self._features)
        if self._pipeline is not None:
            if self.task == "regression":
                return np.asarray(self._pipeline.predict(rows), dtype=np.float64), None
            probabilities = np.asarray(self._pipeline.predict_proba(rows), dtype=np.float64)
        else:
            matrix = np.asarray(self._preprocess.transform(rows), dtype=np.float32)
            output = np.asarray(self._keras(matrix, training=False), dtype=np.float64)
            if self.task == "regression":
                return output.reshape(-1), None
            probabilities = output
        labels = np.asarray(self.classes, dtype=object)[probabilities.argmax(axis=1)]
        return labels, probabilities


def _contract_feature(entry: Mapping[str, Any]) -> Feature:
    values = tuple(entry.get("values") or ()) if entry["type"] == "category" else ()
    return Feature(name=entry["name"], type=entry["type"], values=values, nullable=bool(entry.get("nullable")))


def load_predictor(directory: Path, check_versions: bool = True) -> Predictor:
    """The artifact in ``directory``, verified (sha256, library versions) and ready to predict."""
    directory = Path(directory)
    metadata = load_metadata(directory)
    if check_versions:
        check_library_versions(metadata)
    if metadata["framework"] == "sklearn":
        return Predictor(metadata, pipeline=load_skops(directory / SKLEARN_MODEL))
    from .keras_model import quiet_tensorflow

    quiet_tensorflow()
    import keras

    model = keras.models.load_model(directory / KERAS_MODEL, safe_mode=True, compile=False)
    return Predictor(metadata, preprocess=load_skops(directory / PREPROCESS), keras=model)
